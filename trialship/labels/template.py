"""The parsed form of a label template: frozen values, in millimetres and points.

Coordinates follow PDF: x to the right, y upwards. Page positions are measured from the
page's lower-left corner; everything inside a label is measured from the slot's origin, the
centre of a disc or the lower-left corner of a rectangle, so one label design serves any sheet.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

PT_PER_MM = 72 / 25.4

Align = Literal["left", "center", "right"]
Overflow = Literal["error", "ellipsize"]
ShapeKind = Literal["disc", "rect"]


@dataclass(frozen=True)
class Arc:
    """Text along a circle around the slot origin.

    From `start_deg` to `end_deg` (0 = right, 90 = up). Clockwise (start > end) reads along the
    top with letters standing outwards; counter-clockwise (start < end) reads along the bottom
    with letters standing inwards. `radius_mm` is the baseline.
    """

    radius_mm: float
    start_deg: float
    end_deg: float

    @property
    def clockwise(self) -> bool:
        return self.start_deg > self.end_deg

    @property
    def length_mm(self) -> float:
        return self.radius_mm * math.radians(abs(self.start_deg - self.end_deg))


@dataclass(frozen=True)
class FieldSpec:
    """One text element: lines of `{key}` templates, placed, measured and fitted together.

    A line that references an empty value is left out (so one layout serves trial and research
    contents); a line without references is static text.
    """

    name: str
    lines: tuple[str, ...]
    keys: frozenset[str]
    x_mm: float
    y_mm: float
    max_width_mm: float
    font: str
    font_size: float
    min_font_size: float
    max_lines: int
    leading: float
    align: Align
    arc: Arc | None = None


@dataclass(frozen=True)
class QrSpec:
    """The QR code's square: lower-left corner and side, relative to the slot origin."""

    x_mm: float
    y_mm: float
    size_mm: float


@dataclass(frozen=True)
class Shape:
    """The label's outline: a disc (outer and hub diameters) or a rectangle."""

    kind: ShapeKind
    outer_diameter_mm: float = 0.0
    hub_diameter_mm: float = 0.0
    width_mm: float = 0.0
    height_mm: float = 0.0

    def extent(self) -> tuple[float, float, float, float]:
        """Bounding box (x0, y0, x1, y1) around the slot origin."""
        if self.kind == "disc":
            r = self.outer_diameter_mm / 2
            return (-r, -r, r, r)
        return (0.0, 0.0, self.width_mm, self.height_mm)

    def box_problem(self, box: tuple[float, float, float, float]) -> str | None:
        """Why a box (x0, y0, x1, y1) would be cut by the label's edge or hub, or None."""
        x0, y0, x1, y1 = box
        if self.kind == "rect":
            inside = x0 >= 0 and y0 >= 0 and x1 <= self.width_mm and y1 <= self.height_mm
            return None if inside else "reaches outside the label"
        outer = self.outer_diameter_mm / 2
        if max(math.hypot(x, y) for x in (x0, x1) for y in (y0, y1)) > outer:
            return "reaches outside the disc"
        # Distance from the centre to the nearest point of the box.
        near = math.hypot(min(max(0.0, x0), x1), min(max(0.0, y0), y1))
        if near < self.hub_diameter_mm / 2:
            return "overlaps the hub"
        return None


@dataclass(frozen=True)
class Slot:
    """Where one label sits on the page (its origin, from the page's lower-left corner)."""

    x_mm: float
    y_mm: float


@dataclass(frozen=True)
class LabelTemplate:
    """A whole template: the page, the label slots on it and the one design drawn in each."""

    name: str
    title: str
    stock: str
    source: str
    page_width_mm: float
    page_height_mm: float
    shape: Shape
    guides: bool
    overflow: Overflow
    slots: tuple[Slot, ...]
    fields: tuple[FieldSpec, ...]
    qr: QrSpec | None

    @property
    def keys(self) -> frozenset[str]:
        """Every content key the template references (the QR code's are implied)."""
        found: set[str] = set()
        for spec in self.fields:
            found |= spec.keys
        if self.qr is not None:
            found |= {"disc_id", "manifest_sha256"}
        return frozenset(found)
