"""The PS3.15 Table E.1-1 rule table (packaged CSV) and the effective action of each attribute.

A combined code resolves by the attribute's Type in the instance's IOD, which depends on where
the attribute is (`iod_types`): the compiled rules are those of the top level, and
`RuleSet.child` gives the rules inside a sequence's items, built once per sequence path.
"""

from __future__ import annotations

import csv
import enum
import functools
import io
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import Any

from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword

from trialship.deid.iod_types import COMMON_TYPES, IodTypes, SeqPath
from trialship.deid.options import Option


class Action(enum.Enum):
    """An Annex E action code (PS3.15 E.1.1); the combined ones resolve to a single letter."""

    D = "D"
    """Replace with a non-zero-length dummy value consistent with the VR."""
    Z = "Z"
    """Replace with a zero-length value."""
    X = "X"
    """Remove."""
    K = "K"
    """Keep; for a sequence, apply the rules to each item."""
    C = "C"
    """Clean: keep a non-identifying value of similar meaning."""
    U = "U"
    """Replace with a UID that is consistent within the set of instances."""
    X_Z = "X/Z"
    X_D = "X/D"
    Z_D = "Z/D"
    X_Z_D = "X/Z/D"
    X_Z_U = "X/Z/U*"

    @property
    def is_combined(self) -> bool:
        return "/" in self.value


@dataclass(frozen=True)
class Rule:
    """One row of Table E.1-1. `tag` is None for the repeating-group and private rows."""

    pattern: str
    tag: int | None
    keyword: str
    name: str
    basic: Action
    by_option: tuple[tuple[Option, Action], ...]


@dataclass(frozen=True)
class Decision:
    """What the engine does with an attribute: a single-letter action and why."""

    action: Action
    code: Action
    """The code as written in the table (possibly combined), or K/X for per-trial overrides."""
    source: Option | None
    """The option whose column decided the action, or None for the Basic Profile."""
    keyword: str
    basic: Action
    """The single-letter Basic Profile action (what applies without any option)."""
    override: str | None = None
    """'keep' or 'remove' when a per-trial list decided, else None."""

    @functools.cached_property
    def why(self) -> str:
        """The report's reason: the code as written and the column that gave it."""
        source = self.source.value if self.source else "basic"
        return f"{self.code.value} ({source})"


# Options give only K or C; K keeps more than C, so K wins. Ties go to the first option in
# declaration order, which keeps the choice deterministic. One exception: a date Modified Dates
# shifts (C) is shifted even where another option keeps it (Retain Device Identity keeps the
# calibration dates): one real date beside the shifted ones would undo the shift for them all.
_RETENTION = {Action.K: 2, Action.C: 1}


def _parse_tag(text: str) -> int | None:
    hexdigits = text.strip().strip('"')[1:10].replace(",", "")
    try:
        return int(hexdigits, 16)
    except ValueError:
        return None


@functools.cache
def load_table() -> tuple[Rule, ...]:
    """All rows of the packaged table, read once per process."""
    raw = resources.files("trialship.deid").joinpath("annex_e.csv").read_text(encoding="utf-8")
    reader = csv.DictReader(io.StringIO(raw))
    # The option columns looked up once, not for each of the 647 rows (each worker process of a
    # run reads the table before its first file: about 10 ms, now 5.6).
    columns = [(option, option.column) for option in Option if option.column]
    rules: list[Rule] = []
    for row in reader:
        by_option = tuple(
            (option, Action(row[column])) for option, column in columns if row.get(column)
        )
        rules.append(
            Rule(
                pattern=row["tag"],
                tag=_parse_tag(row["tag"]),
                keyword=row["keyword"],
                name=row["name"],
                basic=Action(row["basic_action"]),
                by_option=by_option,
            )
        )
    return tuple(rules)


def resolve_combined(code: Action, attribute_type: str) -> Action:
    """The single letter of a combined code: the first, unless the attribute's Type needs more."""
    if not code.is_combined:
        return code
    letters = [Action(letter) for letter in code.value.rstrip("*").split("/")]
    if attribute_type == "1":
        return letters[-1]
    if attribute_type == "2":
        # Type 2 may be empty: Z if the code offers it, else the non-empty replacement.
        return Action.Z if Action.Z in letters else letters[-1]
    return letters[0]


def decide(rule: Rule, options: Iterable[Option], attribute_type: str) -> Decision:
    """The effective action for one row, for an attribute of Type `attribute_type` ('1', '2'
    or '3') where it is: an option's column overrides the Basic Profile."""
    enabled = set(options)
    chosen: tuple[Option, Action] | None = None
    for option, action in rule.by_option:
        if option in enabled and (chosen is None or _RETENTION[action] > _RETENTION[chosen[1]]):
            chosen = (option, action)
    shifted = (Option.RETAIN_LONGITUDINAL_MODIFIED_DATES, Action.C)
    if Option.RETAIN_LONGITUDINAL_MODIFIED_DATES in enabled and shifted in rule.by_option:
        chosen = shifted
    basic = resolve_combined(rule.basic, attribute_type)
    if chosen is not None:
        return Decision(chosen[1], chosen[1], chosen[0], rule.keyword, basic)
    return Decision(basic, rule.basic, None, rule.keyword, basic)


@dataclass(frozen=True)
class RuleSet:
    """The compiled lookup for one set of options and per-trial keep/remove lists, in one
    place of an instance of one IOD (the top level, or the items of a sequence path)."""

    by_tag: Mapping[int, Decision]
    curve: Decision
    overlay_data: Decision
    overlay_comments: Decision
    private: Decision
    seen: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)
    """What the walk does with each tag met so far (`walker._classify`: `decision_for` or why
    the rules do not apply), by the datasets' own keys: one dict lookup per element."""
    path: SeqPath = ()
    """The sequence keywords whose items these rules are for (see `iod_types.IodTypes`)."""
    spawn: Callable[[SeqPath], RuleSet] | None = field(default=None, compare=False, repr=False)
    """Builds the rules for a deeper path; None where they are the same at every depth."""
    children: dict[int, RuleSet] = field(default_factory=dict, compare=False, repr=False)
    unlisted_dates: Decision | None = None
    """Under Modified Dates, for a date (DA, DT) the table does not list (newer attributes,
    such as StudyUpdateDateTime): shifted like the listed ones, or it would give the real date
    away beside them."""

    def decision_for(self, tag: int) -> Decision | None:
        """The decision for a standard tag, or None when the table does not list it (keep)."""
        found = self.by_tag.get(tag)
        if found is not None:
            return found
        group = tag >> 16
        if group & 0xFF01 == 0x5000:
            return self.curve
        if group & 0xFF01 == 0x6000:
            element = tag & 0xFFFF
            if element == 0x3000:
                return self.overlay_data
            if element == 0x4000:
                return self.overlay_comments
        if self.unlisted_dates is not None and _dictionary_vr(tag) in ("DA", "DT"):
            return replace(self.unlisted_dates, keyword=keyword_for_tag(tag))
        return None

    def child(self, tag: int) -> RuleSet:
        """The rules for the items of the sequence `tag` found here (built once per path)."""
        found = self.children.get(tag)
        if found is None:
            found = self if self.spawn is None else self.spawn((*self.path, keyword_for_tag(tag)))
            self.children[tag] = found
        return found


@dataclass(frozen=True)
class _Compiled:
    """What does not depend on the Types: every decision but the combined codes'."""

    options: frozenset[Option]
    by_tag: dict[int, Decision]
    combined: tuple[tuple[int, Rule], ...]
    """The rows with a combined code and a tag that no per-trial list overrides, by tag."""
    special: dict[str, Decision]


@functools.lru_cache(maxsize=64)
def _compile(options: frozenset[Option], keep: frozenset[str], remove: frozenset[str]) -> _Compiled:
    by_tag: dict[int, Decision] = {}
    special: dict[str, Decision] = {}
    combined: list[tuple[int, Rule]] = []
    for rule in load_table():
        if rule.tag is None:
            special[rule.pattern.lower()[:11]] = decide(rule, options, "3")
        elif rule.basic.is_combined:
            combined.append((rule.tag, rule))
        else:
            by_tag[rule.tag] = decide(rule, options, "3")
    for keyword in sorted(keep):
        tag = tag_for_keyword(keyword)
        if tag is not None:
            by_tag[tag] = Decision(Action.K, Action.K, None, keyword, Action.K, "keep")
    for keyword in sorted(remove):
        tag = tag_for_keyword(keyword)
        if tag is not None:
            by_tag[tag] = Decision(Action.X, Action.X, None, keyword, Action.X, "remove")
    overridden = {tag_for_keyword(keyword) for keyword in keep | remove}
    kept = tuple((tag, rule) for tag, rule in combined if tag not in overridden)
    return _Compiled(options, by_tag, kept, special)


def _scoped(
    compiled: _Compiled,
    types: IodTypes,
    where: SeqPath | None,
    spawn: Callable[[SeqPath], RuleSet] | None,
) -> RuleSet:
    """The rules at `where` (None: below everything the Types table lists, all Type 3)."""
    by_tag = dict(compiled.by_tag)
    for tag, rule in compiled.combined:
        kind = "3" if where is None else types.type_of(where, rule.keyword)
        by_tag[tag] = decide(rule, compiled.options, kind)
    special = compiled.special
    shifted = Option.RETAIN_LONGITUDINAL_MODIFIED_DATES
    return RuleSet(
        by_tag=by_tag,
        curve=special["(50xx,xxxx)"],
        overlay_data=special["(60xx,3000)"],
        overlay_comments=special["(60xx,4000)"],
        private=special["(gggg,eeee)"],
        path=where or (),
        spawn=spawn,
        unlisted_dates=(
            Decision(Action.C, Action.C, shifted, "", Action.K)
            if shifted in compiled.options
            else None
        ),
    )


def _dictionary_vr(tag: int) -> str:
    try:
        return str(dictionary_VR(tag))
    except KeyError:
        return ""


@functools.lru_cache(maxsize=64)
def compile_rules(
    options: frozenset[Option],
    keep: frozenset[str] = frozenset(),
    remove: frozenset[str] = frozenset(),
    types: IodTypes = COMMON_TYPES,
) -> RuleSet:
    """The top level's tag -> decision lookup, once per distinct profile and IOD Types table
    (`iod_types.types_for`; cached). `RuleSet.child` gives the rules inside sequences."""
    compiled = _compile(options, keep, remove)
    scopes: dict[SeqPath | None, RuleSet] = {}

    def scope(path: SeqPath) -> RuleSet:
        where = types.scope_of(path)
        found = scopes.get(where)
        if found is None:
            # Below the table (None) every attribute is Type 3, and a flat table has the same
            # Types at every depth: their rules are their own children.
            deeper = None if where is None or types.flat else scope
            found = scopes[where] = _scoped(compiled, types, where, deeper)
        return found

    return scope(())
