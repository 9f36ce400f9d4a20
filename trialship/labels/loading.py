"""Read label templates from TOML and check every key, naming the file and key on error."""

from __future__ import annotations

import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from reportlab.pdfbase.pdfmetrics import standardFonts

from trialship.labels.content import field_keys
from trialship.labels.errors import LabelError
from trialship.labels.reader import Table
from trialship.labels.template import (
    PT_PER_MM,
    Align,
    Arc,
    FieldSpec,
    LabelTemplate,
    Overflow,
    QrSpec,
    Shape,
    Slot,
)
from trialship.resources import data_dir

NAMED_PAGES = {"A4": (210.0, 297.0), "LETTER": (215.9, 279.4)}
_ALIGNS: tuple[Align, ...] = ("left", "center", "right")
_OVERFLOWS: tuple[Overflow, ...] = ("error", "ellipsize")


def shipped_dir() -> Path:
    return data_dir("label_templates")


def list_templates() -> tuple[str, ...]:
    """Names of the shipped templates (the file names without `.toml`)."""
    return tuple(sorted(p.stem for p in shipped_dir().glob("*.toml")))


def load_template(name_or_path: str | Path) -> LabelTemplate:
    """Load a shipped template by name (`cd_face`) or any template file by path."""
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or text.endswith(".toml") or "/" in text:
        path = Path(name_or_path)
    else:
        path = shipped_dir() / f"{text}.toml"
        if not path.is_file():
            known = ", ".join(list_templates())
            raise LabelError(f"no label template named {text!r} (shipped: {known})")
    return parse_template(_read_merged(path, seen=()), source=str(path), name=path.stem)


def _read_merged(path: Path, *, seen: tuple[Path, ...]) -> dict[str, object]:
    """The file's tables over those of the template it `extends` (whole tables are replaced)."""
    try:
        data: dict[str, object] = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise LabelError(f"{path}: cannot read the template: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise LabelError(f"{path}: not valid TOML: {exc}") from exc
    base_name = data.pop("extends", None)
    if base_name is None:
        return data
    if not isinstance(base_name, str):
        raise LabelError(f"{path}: extends: must be a template name")
    base = next(
        (
            p
            for p in (path.parent / f"{base_name}.toml", shipped_dir() / f"{base_name}.toml")
            if p.is_file()
        ),
        None,
    )
    if base is None:
        raise LabelError(f"{path}: extends: no template named {base_name!r}")
    if base.resolve() in seen:
        raise LabelError(f"{path}: extends: {base_name!r} extends itself")
    merged = _read_merged(base, seen=(*seen, path.resolve(), base.resolve()))
    merged.pop("title", None)  # a title describes one file; inheriting it would mislead
    merged.pop("stock", None)
    merged.update(data)
    return merged


def parse_template(data: Mapping[str, object], *, source: str, name: str) -> LabelTemplate:
    """Build a template from TOML data; `source` names the file in every error."""
    root = Table(source, "", data)
    title = root.text("title", name)
    stock = root.text("stock", "")
    page = root.table("page")
    guides = page.boolean("guides", True)
    page_w, page_h = _page(page)
    label = root.table("label")
    shape = _shape(label)
    defaults = _FieldDefaults(
        font=_font(label, "font", "Helvetica"),
        font_size=label.number("font_size", 9.0, positive=True),
        min_font_size=label.number("min_font_size", 6.0, positive=True),
        leading=label.number("leading", 1.2, positive=True),
    )
    overflow = cast(Overflow, label.choice("overflow", _OVERFLOWS, "error"))
    label.finish()
    slots = tuple(_slot(t, shape, page_w, page_h) for t in root.tables("slots", required=True))
    specs = tuple(_field(t, i, defaults, shape) for i, t in enumerate(root.tables("fields")))
    qr_table = root.optional_table("qr")
    qr = _qr(qr_table, shape) if qr_table is not None else None
    root.finish()
    return LabelTemplate(
        name=name,
        title=title,
        stock=stock,
        source=source,
        page_width_mm=page_w,
        page_height_mm=page_h,
        shape=shape,
        guides=guides,
        overflow=overflow,
        slots=slots,
        fields=specs,
        qr=qr,
    )


@dataclass(frozen=True)
class _FieldDefaults:
    font: str
    font_size: float
    min_font_size: float
    leading: float


def _page(t: Table) -> tuple[float, float]:
    size = t.optional_text("size")
    if size is not None:
        if size.upper() not in NAMED_PAGES:
            raise t.error("size", "must be A4 or Letter (or give width_mm and height_mm)")
        t.finish()
        return NAMED_PAGES[size.upper()]
    width, height = t.number("width_mm", positive=True), t.number("height_mm", positive=True)
    t.finish()
    return width, height


def _shape(t: Table) -> Shape:
    kind = t.choice("shape", ("disc", "rect"))
    if kind == "disc":
        outer = t.number("outer_diameter_mm", positive=True)
        hub = t.number("hub_diameter_mm", 0.0)
        if not 0 <= hub < outer:
            raise t.error("hub_diameter_mm", "must be at least 0 and less than the outer diameter")
        return Shape("disc", outer_diameter_mm=outer, hub_diameter_mm=hub)
    width = t.number("width_mm", positive=True)
    return Shape("rect", width_mm=width, height_mm=t.number("height_mm", positive=True))


def _font(t: Table, key: str, default: str) -> str:
    font = t.text(key, default)
    if font not in standardFonts:
        raise t.error(key, f"unknown font {font!r}; use one of {', '.join(standardFonts)}")
    return font


def _slot(t: Table, shape: Shape, page_w: float, page_h: float) -> Slot:
    slot = Slot(t.number("x_mm"), t.number("y_mm"))
    t.finish()
    x0, y0, x1, y1 = shape.extent()
    if (
        slot.x_mm + x0 < 0
        or slot.y_mm + y0 < 0
        or slot.x_mm + x1 > page_w
        or slot.y_mm + y1 > page_h
    ):
        raise t.error("x_mm", "the label does not fit on the page at this position")
    return slot


def _field(t: Table, index: int, defaults: _FieldDefaults, shape: Shape) -> FieldSpec:
    sources = [k for k in ("key", "text", "lines") if k in t.data]
    if len(sources) != 1:
        raise t.error("key", "give exactly one of key, text or lines")
    if sources[0] == "key":
        lines: tuple[str, ...] = ("{" + t.text("key") + "}",)
    elif sources[0] == "text":
        lines = (t.text("text"),)
    else:
        lines = t.text_list("lines")
    keys = frozenset(k for line in lines for k in _references(t, sources[0], line))
    name = t.text("name", lines[0].strip("{}") if sources[0] == "key" else f"fields[{index}]")
    arc_table = t.optional_table("arc")
    arc = None
    if arc_table is not None:
        arc = Arc(
            arc_table.number("radius_mm", positive=True),
            arc_table.number("start_deg"),
            arc_table.number("end_deg"),
        )
        if arc.start_deg == arc.end_deg:
            raise arc_table.error("end_deg", "must differ from start_deg")
        arc_table.finish()
    spec = FieldSpec(
        name=name,
        lines=lines,
        keys=keys,
        x_mm=t.number("x_mm", 0.0),
        y_mm=t.number("y_mm", 0.0),
        max_width_mm=t.number("max_width_mm", arc.length_mm if arc else None, positive=True),
        font=_font(t, "font", defaults.font),
        font_size=t.number("font_size", defaults.font_size, positive=True),
        min_font_size=t.number("min_font_size", defaults.min_font_size, positive=True),
        max_lines=t.integer("max_lines", len(lines), minimum=1),
        leading=t.number("leading", defaults.leading, positive=True),
        align=cast(Align, t.choice("align", _ALIGNS, "center" if arc else "left")),
        arc=arc,
    )
    if spec.min_font_size > spec.font_size:
        raise t.error("min_font_size", "must not exceed font_size")
    if arc is not None and (len(lines) != 1 or spec.max_lines != 1):
        raise t.error("arc", "arc text is one line: use key or text, and max_lines = 1")
    t.finish()
    if arc is None:
        problem = shape.box_problem(_field_box(spec))
        if problem:
            raise t.error("x_mm", f"field {name!r} {problem}")
    return spec


def _references(t: Table, key: str, line: str) -> list[str]:
    known = field_keys()
    try:
        names = [n for _, n, spec, conv in string.Formatter().parse(line) if n is not None]
    except ValueError as exc:
        raise t.error(key, f"bad placeholder in {line!r}: {exc}") from exc
    for n in names:
        if n not in known:
            raise t.error(key, f"unknown content key {n!r}; known: {', '.join(sorted(known))}")
    return names


def _field_box(spec: FieldSpec) -> tuple[float, float, float, float]:
    """The area a field may cover: full width, first line's cap height to last's descent."""
    size_mm = spec.font_size / PT_PER_MM
    x0 = {"left": 0.0, "center": 0.5, "right": 1.0}[spec.align] * -spec.max_width_mm + spec.x_mm
    bottom = spec.y_mm - (spec.max_lines - 1) * size_mm * spec.leading - 0.25 * size_mm
    return (x0, bottom, x0 + spec.max_width_mm, spec.y_mm + 0.75 * size_mm)


def _qr(t: Table, shape: Shape) -> QrSpec:
    qr = QrSpec(t.number("x_mm"), t.number("y_mm"), t.number("size_mm", positive=True))
    t.finish()
    problem = shape.box_problem((qr.x_mm, qr.y_mm, qr.x_mm + qr.size_mm, qr.y_mm + qr.size_mm))
    if problem:
        raise t.error("x_mm", f"the QR code {problem}")
    return qr
