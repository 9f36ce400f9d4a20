"""The recursive walk that applies Table E.1-1 to every element at every depth.

The files of one subject repeat most of their values. What the walk did to a raw element (or
a whole raw sequence) is a pure function of its bytes, where it is and the walk's
configuration, so it is remembered (`outcome_memo`) and done again from memory: the same
replacement element, the same report entries, the same UIDs remapped, and for a sequence its
walked items as encoded bytes (`raw_encode.EncodedSequence`). The rules stay here, once.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

from pydicom.dataelem import RawDataElement, empty_value_for_VR
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.valuerep import PersonName

from trialship.deid.dates import shift_da, shift_dt
from trialship.deid.elements import (
    BINARY_VRS,
    BULK_TAGS,
    CODE_KEYWORDS,
    TEXT_VRS,
    keyword_of,
    new_element,
    raw_values,
    vr_for,
    vr_of,
)
from trialship.deid.options import Option
from trialship.deid.profile import PrivateTags
from trialship.deid.raw_encode import encode_items, encoded_sequence
from trialship.deid.raw_parse import as_if_sequence_converted, sequence_element
from trialship.deid.report import ReportAction, ReportBuilder, ReportEntry, tag_text
from trialship.deid.rules import Action, Decision, RuleSet
from trialship.deid.safe_private import is_safe_private
from trialship.deid.uids import remap_uid
from trialship.deid.values import dummy_value

# VRs `vr_for` may resolve to SQ: SQ itself, and none or UN (looked up in the dictionary).
_MAYBE_SEQUENCE = frozenset({"SQ", "UN", None})

# What the walk did to one raw element: the element left in its place (`_KEEP`: the original,
# `_DELETE`: none, else a raw replacement), its report entries and the UIDs it remapped.
_KEEP = object()
_DELETE = object()
_UNSEEN: Any = object()
_BULK: Any = object()
_PRIVATE: Any = object()
_DROP: Any = object()
_OVERLAY: Any = object()
_SEEN_TAGS = 1 << 16
Outcome = tuple[Any, tuple[ReportEntry, ...], tuple[tuple[str, str], ...]]
OutcomeMemo = dict[tuple[Any, ...], Outcome]
_MEMO_VALUE = 1024
"""Longer values are walked each time: they rarely repeat and would fill the memo."""
_MEMO_SIZE = 4096
_MEMO_SEQUENCE = 4096
"""Bytes; with `_MEMO_SIZE`, what bounds the memory the memo takes (a few tens of MB at most)."""
_PIXEL_GROUP = 0x7FE00000
"""Elements from here on may follow the pixel data: pydicom writes those (`encode_trailing`)."""
_MEMOS: dict[tuple[int, int, bytes, int, PrivateTags], tuple[object, object, OutcomeMemo]] = {}
_MEMO_COUNT = 64
"""Configurations remembered at once: one per patient (the scrubber is), as many patients as
`scrubber_for` keeps; a folder sorted by modality comes back to each patient several times."""
_MEMO_TOTAL = 16 * _MEMO_SIZE
"""Entries in all memos together: the memory bound of 16 full memos, however many there are."""


def outcome_memo(
    rules: RuleSet,
    scrubber: object,
    uid_secret: bytes,
    shift_days: int,
    private_tags: PrivateTags,
) -> OutcomeMemo:
    """The memo of element outcomes for one configuration of the walk: everything a `Walker`
    is built with but its report (the scrubber stands for `scrub` and `finds`).

    An element's outcome is a pure function of its tag, VR and bytes, where it is (path, mode)
    and this configuration: the files of one subject repeat most of their values, so each is
    walked once per run. The memo holds original values: `forget_outcomes` drops it.
    """
    key = (id(rules), id(scrubber), uid_secret, shift_days, private_tags)
    found = _MEMOS.get(key)
    if found is None:
        if len(_MEMOS) >= _MEMO_COUNT or sum(len(m[2]) for m in _MEMOS.values()) >= _MEMO_TOTAL:
            _MEMOS.clear()
        # The rules and scrubber are held so that their ids stay theirs while the memo lives.
        found = _MEMOS[key] = (rules, scrubber, {})
    return found[2]


def forget_outcomes() -> None:
    _MEMOS.clear()


class Mode(enum.Enum):
    """How unlisted text inside a sequence is treated (a code covers a sequence's contents)."""

    NORMAL = "normal"
    CLEAN = "clean"
    """Inside a C sequence: free text is cleaned."""
    DUMMY = "dummy"
    """Inside a D sequence: free text is replaced by dummies; coded concepts stay."""


class Walker:
    """Applies one compiled rule set to a dataset in place, recording each step."""

    def __init__(
        self,
        *,
        rules: RuleSet,
        uid_secret: bytes,
        shift_days: int,
        private_tags: PrivateTags,
        scrub: Callable[[str], tuple[str, int]],
        report: ReportBuilder,
        finds: Callable[[str], bool] | None = None,
        memo: OutcomeMemo | None = None,
        encode_sequences: bool = True,
    ) -> None:
        self.rules = rules
        self._scope = rules
        """The rules where the walk is: `rules` at the top, `RuleSet.child` inside sequences."""
        self.secret = uid_secret
        self.shift_days = shift_days
        self.private_tags = private_tags
        self.scrub = scrub
        self.finds = finds
        """A cheap "does `scrub` redact anything in this text": lets raw values stay raw."""
        self.report = report
        self.uid_map: dict[str, str] = {}
        self.memo = memo
        """Outcomes of raw elements walked before under the same configuration (`outcome_memo`)."""
        self.encode_sequences = encode_sequences
        """False when the dataset's text will be re-encoded: sequences are kept parsed."""
        self._remapped: list[tuple[str, str]] | None = None
        self._top: Dataset | None = None
        self._encoded: list[tuple[Dataset, Any, Any, str, Mode, RuleSet]] = []
        """Where the walk put back a sequence as bytes: (dataset, key, raw element, path, mode,
        the rules where the sequence is)."""

    # -- entry -------------------------------------------------------------------------------

    def walk(self, ds: Dataset, prefix: str = "", mode: Mode = Mode.NORMAL) -> None:
        if not prefix:
            self._top = ds
        # The element dict is read and written directly: Dataset.__getitem__/__setitem__ convert
        # tags and values on every call, which cost more than the rules. Standard, non-pixel
        # tags need none of their bookkeeping (private creators and pixel caches).
        elems = ds._dict
        rules = self._scope
        decision_for = rules.decision_for
        seen = rules.seen
        if len(seen) > _SEEN_TAGS:
            seen.clear()
        normal = mode is Mode.NORMAL
        memo = self.memo
        # The mode's value in memo keys: an enum member hashes (and .value reads) in Python.
        mode_key = mode._value_
        replay = self.report.entries.extend
        has_private = False
        overlays: list[Any] | None = None
        for key, elem in list(elems.items()):
            # By the dataset's own key: parsed datasets share one key object per tag, found by
            # identity (an int would be compared with it by BaseTag.__eq__, in Python).
            decision = seen.get(key, _UNSEEN)
            if decision is _UNSEEN:
                decision = seen[key] = _classify(int(key), decision_for)
            if decision is None:
                if normal and elem.VR not in _MAYBE_SEQUENCE:
                    continue  # unlisted, not a sequence, not inside a C or D sequence: kept
            elif decision.__class__ is not Decision:
                if decision is _PRIVATE:
                    has_private = True
                elif decision is _DROP:
                    del elems[key]
                elif decision is _OVERLAY:
                    if overlays is None:
                        overlays = []
                    overlays.append(key)
                continue  # (or pixel data: never touched)
            if memo is not None and elem.__class__ is RawDataElement:
                # The memo key; None when the outcome may depend on more than the bytes: a
                # possible sequence (its items are walked), or a value the character set
                # decodes (non-ASCII, ISO 2022 escapes) or too long to keep. A removed
                # element's value is not read.
                if decision is not None and decision.action is Action.X:
                    mkey: tuple[Any, ...] | None = (key, prefix, mode_key)
                else:
                    value = elem.value
                    vr = elem.VR
                    if (
                        vr in _MAYBE_SEQUENCE
                        or value.__class__ is not bytes
                        or len(value) > _MEMO_VALUE
                        or not value.isascii()
                        or b"\x1b" in value
                    ):
                        mkey = None
                    else:
                        mkey = (key, vr, value, elem.length, prefix, mode_key)
                if mkey is not None:
                    # A repeated element gets the outcome recorded the first time (raw
                    # replacements and report entries are immutable, so they are shared).
                    found = memo.get(mkey)
                    if found is None:
                        self._record(ds, key, elem, int(key), decision, prefix, mode, mkey, memo)
                        continue
                    left, entries, remapped = found
                    if left is _DELETE:
                        del elems[key]
                    elif left is not _KEEP:
                        elems[key] = left
                    replay(entries)
                    if remapped:
                        self._remapped_again(remapped)
                    continue
            self._element(ds, key, elem, int(key), decision, prefix, mode)
        if overlays:
            self._overlays(ds, overlays, rules, prefix, mode)
        if has_private:
            self._private(ds, prefix, mode)

    def _element(
        self,
        ds: Dataset,
        key: Any,
        elem: Any,
        tag: int,
        decision: Decision | None,
        prefix: str,
        mode: Mode,
    ) -> None:
        keyword = keyword_of(tag)
        path = prefix + (keyword or tag_text(tag))
        if decision is None:
            self._unlisted(ds, key, elem, keyword, path, mode)
        else:
            self._apply(ds, key, elem, decision.action, decision, keyword, path, mode)

    def _record(
        self,
        ds: Dataset,
        key: Any,
        elem: Any,
        tag: int,
        decision: Decision | None,
        prefix: str,
        mode: Mode,
        mkey: tuple[Any, ...],
        memo: OutcomeMemo,
    ) -> None:
        """`_element`, its outcome recorded in the memo under `mkey`."""
        elems = ds._dict
        entries_so_far = self.report.entries
        start = len(entries_so_far)
        outer, self._remapped = self._remapped, []
        try:
            self._element(ds, key, elem, tag, decision, prefix, mode)
        finally:
            remapped = self._stop_recording(outer)
        after = elems.get(key)
        if after is None:
            left = _DELETE
        elif after is elem:
            left = _KEEP
        elif after.__class__ is RawDataElement:
            left = after
        else:
            left = _as_written(after)
            if left is None:
                return  # converted, and not plain text: walked again next time
        if len(memo) >= _MEMO_SIZE:
            memo.clear()
        memo[mkey] = (left, tuple(entries_so_far[start:]), remapped)

    def _replay(
        self, entries: tuple[ReportEntry, ...], remapped: tuple[tuple[str, str], ...]
    ) -> None:
        self.report.entries.extend(entries)
        if remapped:
            self._remapped_again(remapped)

    def _remapped_again(self, remapped: tuple[tuple[str, str], ...]) -> None:
        """The UIDs an outcome from memory remapped, remapped in this walk too."""
        for original, new in remapped:
            self.uid_map.setdefault(original, new)
        if self._remapped is not None:
            self._remapped.extend(remapped)  # inside an outcome being recorded: part of it

    def _stop_recording(self, outer: list[tuple[str, str]] | None) -> tuple[tuple[str, str], ...]:
        """End the recording of the UIDs remapped since `self._remapped` was set to a new list
        (`outer` was the enclosing recording: they are part of it too); they are returned."""
        mine = tuple(self._remapped or ())
        self._remapped = outer
        if outer is not None:
            outer.extend(mine)
        return mine

    # -- listed attributes ---------------------------------------------------------------------

    def _apply(
        self,
        ds: Dataset,
        key: Any,
        elem: Any,
        action: Action,
        decision: Decision,
        keyword: str,
        path: str,
        mode: Mode,
    ) -> None:
        add = self.report.add
        tag = int(key)
        why = f"override: {decision.override}" if decision.override else decision.why
        if action is Action.X:
            del ds._dict[key]
            add(tag, keyword, path, ReportAction.REMOVED, why)
            return
        vr = vr_for(elem, tag)
        if action is Action.K:
            if vr == "SQ":
                self._items(ds, key, path, mode)
            add(tag, keyword, path, ReportAction.KEPT, why)
        elif action is Action.Z:
            # Replaced, not converted: the old value is never decoded.
            _replace(ds, key, new_element(tag, vr, [] if vr == "SQ" else empty_value_for_VR(vr)))
            add(tag, keyword, path, ReportAction.EMPTIED, why)
        elif action is Action.U or (action is Action.D and vr == "UI"):
            if vr == "SQ":
                self._items(ds, key, path, mode)
            else:
                self._remap(ds, key, elem, vr)
            add(tag, keyword, path, ReportAction.REMAPPED, why)
        elif action is Action.D:
            if vr == "SQ":
                self._items(ds, key, path, Mode.DUMMY)
                add(tag, keyword, path, ReportAction.REPLACED, why + "; dummy content")
            else:
                _replace(ds, key, new_element(tag, vr, dummy_value(vr)))
                add(tag, keyword, path, ReportAction.REPLACED, why + "; dummy value")
        else:
            self._clean(ds, key, elem, vr, decision, keyword, path)

    def _clean(
        self,
        ds: Dataset,
        key: Any,
        elem: Any,
        vr: str,
        decision: Decision,
        keyword: str,
        path: str,
    ) -> None:
        add = self.report.add
        tag = int(key)
        why = decision.why
        dated = decision.source is Option.RETAIN_LONGITUDINAL_MODIFIED_DATES
        if vr in {"DA", "DT"} and dated:
            self._shift(ds, key, elem, vr, keyword, path, why)
        elif vr == "TM" and dated:
            add(tag, keyword, path, ReportAction.KEPT, why + "; time kept (whole-day shift)")
        elif dated or vr in BINARY_VRS:
            # Modified Dates says nothing about non-date rows; binary values cannot be cleaned.
            # Both fall back to the Basic Profile action.
            fallback = "; not a date: basic action" if dated else "; binary: basic action"
            basic = Decision(decision.basic, decision.code, None, keyword, decision.basic)
            self._apply(ds, key, elem, decision.basic, basic, keyword, path, Mode.NORMAL)
            self.report.amend_last(why + fallback)
        elif vr == "SQ":
            self._items(ds, key, path, Mode.CLEAN)
            add(tag, keyword, path, ReportAction.CLEANED, why + "; content cleaned")
        elif vr in TEXT_VRS:
            count = self._scrub(ds, key, elem, vr)
            add(tag, keyword, path, ReportAction.CLEANED, why + f"; {count} span(s) redacted")
        else:
            add(tag, keyword, path, ReportAction.KEPT, why + "; coded or numeric value kept")

    # -- unlisted attributes -------------------------------------------------------------------

    def _unlisted(
        self, ds: Dataset, key: Any, elem: Any, keyword: str, path: str, mode: Mode
    ) -> None:
        tag = int(key)
        vr = vr_for(elem, tag)
        if vr == "SQ":
            self._items(ds, key, path, mode)
        elif mode is Mode.NORMAL or vr not in TEXT_VRS or keyword in CODE_KEYWORDS:
            return
        elif mode is Mode.CLEAN:
            count = self._scrub(ds, key, elem, vr)
            if count:
                self.report.add(
                    tag, keyword, path, ReportAction.CLEANED, f"{count} span(s) redacted"
                )
        elif self._has_value(ds, key, elem):
            _replace(ds, key, new_element(tag, vr, dummy_value(vr)))
            self.report.add(tag, keyword, path, ReportAction.REPLACED, "text in a D sequence")

    # -- helpers -------------------------------------------------------------------------------

    def _items(self, ds: Dataset, key: Any, path: str, mode: Mode) -> None:
        if ds is self._top and int(key) >= _PIXEL_GROUP:
            # After the pixel data, pydicom writes the element (`encode_trailing`): every
            # sequence inside it stays parsed.
            encode, self.encode_sequences = self.encode_sequences, False
            try:
                self._walk_items(ds, key, path, mode)
            finally:
                self.encode_sequences = encode
            return
        memo = self.memo if self.encode_sequences else None
        mkey = None if memo is None else self._sequence_key(ds, key, path, mode)
        if memo is None or mkey is None:
            self._walk_items(ds, key, path, mode)
            return
        found = memo.get(mkey)
        if found is not None:
            encoded, entries, remapped = found
            self._encoded.append((ds, key, ds._dict[key], path, mode, self._scope))
            ds._dict[key] = encoded
            as_if_sequence_converted(ds)
            self._replay(entries, remapped)
            return
        raw: Any = ds._dict[key]  # a RawDataElement (see the key)
        value_tell = raw.value_tell
        entries_so_far = self.report.entries
        start = len(entries_so_far)
        outer, self._remapped = self._remapped, []
        try:
            items = self._walk_items(ds, key, path, mode)
        finally:
            remapped_here = self._stop_recording(outer)
        data = encode_items(items)
        if data is None:
            return  # an item holds what only pydicom encodes: walked again next time
        if len(memo) >= _MEMO_SIZE:
            memo.clear()
        encoded = encoded_sequence(int(key), data, value_tell)
        memo[mkey] = (encoded, tuple(entries_so_far[start:]), tuple(remapped_here))

    def decode_sequences(self) -> None:
        """Walk the sequences put back as bytes (`EncodedSequence`) as parsed items again.

        For a dataset whose character set changed after the walk: pydicom re-encodes all of it
        and writes each sequence as it was read (lengths defined or not), which only the
        parsed items say. Their outcome is the one already reported.
        """
        encoded, self._encoded = self._encoded, []
        memo, report = self.memo, self.report
        self.memo, self.report = None, ReportBuilder()
        try:
            for ds, key, original, path, mode, scope in encoded:
                ds._dict[key] = original
                self._scope = scope
                self._walk_items(ds, key, path, mode)
        finally:
            self.memo, self.report = memo, report
            self._scope = self.rules

    def _walk_items(self, ds: Dataset, key: Any, path: str, mode: Mode) -> Any:
        items = sequence_element(ds, key).value or ()
        # Types (so combined codes) depend on where an attribute is: the items get the rules
        # of their sequence path (cached in the rule set, so one dict lookup per sequence).
        outer = self._scope
        self._scope = outer.child(int(key))
        try:
            for index, item in enumerate(items):
                self.walk(item, f"{path}[{index}].", mode)
        finally:
            self._scope = outer
        return items

    def _sequence_key(self, ds: Dataset, key: Any, path: str, mode: Mode) -> Any:
        """The memo key of a raw Explicit VR Little Endian sequence of defined length, standard
        and before the pixel data (written by `raw_encode`), or None: walked as it comes."""
        elem = ds._dict[key]
        tag = int(key)
        value = elem.value
        if (
            elem.__class__ is not RawDataElement
            or elem.VR != "SQ"
            or value.__class__ is not bytes
            or not 0 < len(value) <= _MEMO_SEQUENCE
            or elem.length != len(value)
            or elem.is_implicit_VR
            or not elem.is_little_endian
            or tag >> 16 & 1
        ):
            return None
        # The items are decoded in the dataset's character set: part of what they become.
        encodings = ds.original_character_set or ds._character_set
        charset = tuple(encodings) if isinstance(encodings, list) else encodings
        return ("SQ", tag, value, path, mode._value_, charset)

    def _values(self, ds: Dataset, key: Any, elem: Any, vr: str) -> list[Any]:
        """The element's values: decoded from raw ASCII bytes when possible (cheap), else
        converted by pydicom."""
        raw = raw_values(elem, vr)
        if raw is not None:
            return raw
        value = ds[key].value
        if isinstance(value, MultiValue | list):
            return list(value)
        return [] if value is None or value == "" else [value]

    def _has_value(self, ds: Dataset, key: Any, elem: Any) -> bool:
        if elem.is_raw and elem.value is not None:
            return bool(elem.value and bytes(elem.value).strip(b" \0"))
        return bool(ds[key].value)

    def _remap(self, ds: Dataset, key: Any, elem: Any, vr: str) -> None:
        values = self._values(ds, key, elem, vr)
        tag = int(key)
        if len(values) > 1:
            _replace(ds, key, new_element(tag, "UI", [self.remap(str(uid)) for uid in values]))
        elif values and str(values[0]).strip("\0 "):
            _replace(ds, key, new_element(tag, "UI", self.remap(str(values[0]))))

    def remap(self, uid: str) -> str:
        original = uid.strip("\0 ")
        new = self.uid_map.get(original)
        if new is None:
            new = self.uid_map[original] = remap_uid(self.secret, original)
        if self._remapped is not None:
            self._remapped.append((original, new))
        return new

    def _shift(
        self, ds: Dataset, key: Any, elem: Any, vr: str, keyword: str, path: str, why: str
    ) -> None:
        tag = int(key)
        shift = shift_da if vr == "DA" else shift_dt
        values = self._values(ds, key, elem, vr) or [""]
        shifted = [shift(str(value), self.shift_days) if value else "" for value in values]
        if any(value is None for value in shifted):
            del ds._dict[key]
            self.report.add(tag, keyword, path, ReportAction.REMOVED, why + "; malformed date")
            return
        _replace(ds, key, new_element(tag, vr, shifted if len(shifted) > 1 else shifted[0]))
        self.report.add(
            tag, keyword, path, ReportAction.SHIFTED, why + f"; {self.shift_days:+d} days"
        )

    def _scrub(self, ds: Dataset, key: Any, elem: Any, vr: str) -> int:
        if self.finds is not None:
            raw = raw_values(elem, vr)
            if raw is not None and not any(self.finds(text) for text in raw):
                return 0
        converted = ds[key]
        values = (
            converted.value if isinstance(converted.value, MultiValue | list) else [converted.value]
        )
        total = 0
        cleaned: list[str] = []
        for value in values:
            text, count = self.scrub(str(value) if value is not None else "")
            cleaned.append(text)
            total += count
        if total:
            converted.value = cleaned if len(cleaned) > 1 else cleaned[0]
        return total

    # -- overlay groups ----------------------------------------------------------------------

    def _overlays(
        self, ds: Dataset, keys: list[Any], rules: RuleSet, prefix: str, mode: Mode
    ) -> None:
        """Apply the Overlay Data (or Curve Data) rule; where it removed the data, remove its
        whole group.

        The Overlay Plane module (PS3.3 C.9.2) requires Overlay Data (Type 1): the rest of a
        group without it is a non-conformant module (and says where the overlay was). A curve's
        dimensions and labels without its data are half a curve likewise."""
        elems = ds._dict
        for key in keys:
            tag = int(key)
            decision = rules.decision_for(tag)
            self._element(ds, key, elems[key], tag, decision, prefix, mode)
            if key in elems or decision is None:
                continue
            group = tag >> 16
            reason = f"override: {decision.override}" if decision.override else decision.why
            data = "Overlay Data" if group & 0xFF01 == 0x6000 else "Curve Data"
            why = f"{reason}; the group of the removed {data}"
            for other in [k for k in elems if k >> 16 == group]:
                del elems[other]
                keyword = keyword_of(int(other))
                path = prefix + (keyword or tag_text(int(other)))
                self.report.add(int(other), keyword, path, ReportAction.REMOVED, why)

    # -- private attributes --------------------------------------------------------------------

    def _private(self, ds: Dataset, prefix: str, mode: Mode) -> None:
        tags = [tag for tag in list(ds.keys()) if tag >> 16 & 1]  # keys: no value conversion
        policy = self.private_tags
        creators: dict[tuple[int, int], str] = {}
        if policy is PrivateTags.RETAIN_SAFE:
            for tag in tags:
                if 0x10 <= tag & 0xFFFF <= 0xFF:
                    creators[(tag >> 16, tag & 0xFF)] = str(ds[tag].value or "")
        used_blocks: set[tuple[int, int]] = set()
        for tag in tags:
            element = tag & 0xFFFF
            path = prefix + tag_text(tag)
            if 0x10 <= element <= 0xFF:
                continue  # creators are decided once their data elements are
            block = (tag >> 16, element >> 8)
            creator = creators.get(block, "")
            keep = policy is PrivateTags.KEEP or (
                policy is PrivateTags.RETAIN_SAFE
                and element > 0xFF
                and is_safe_private(tag >> 16, creator, element)
            )
            if not keep:
                del ds[tag]
                self.report.add(tag, "", path, ReportAction.REMOVED, f"private ({policy.value})")
                continue
            used_blocks.add(block)
            if vr_of(ds, tag) == "SQ":
                self._items(ds, tag, path, mode)
            self.report.add(tag, "", path, ReportAction.KEPT, f"private ({policy.value})")
        for tag in tags:
            element = tag & 0xFFFF
            unused = 0x10 <= element <= 0xFF and (tag >> 16, element) not in used_blocks
            if unused and policy is not PrivateTags.KEEP:
                del ds[tag]


def _classify(tag: int, decision_for: Callable[[int], Decision | None]) -> Any:
    """What the walk does with a tag: `_BULK` (pixel data: never touched), `_PRIVATE` (decided
    by the private tags policy), `_DROP` (group lengths are retired and go stale; group 2
    belongs in the file meta), `_OVERLAY` (Overlay Data: its group goes with it, see
    `Walker._overlays`), else its decision (None: the table does not list it)."""
    if tag in BULK_TAGS:
        return _BULK
    if tag >> 16 & 1:
        return _PRIVATE
    if tag & 0xFFFF == 0 or tag >> 16 == 0x0002:
        return _DROP
    if tag >> 16 & 0xFF01 in (0x6000, 0x5000) and tag & 0xFFFF == 0x3000:
        return _OVERLAY  # (or Curve Data, retired, whose group goes with it likewise)
    return decision_for(tag)


def _as_written(elem: Any) -> Any:
    """A converted (cleaned) text element as the raw element of the bytes the writer writes for
    it (`raw_encode.plain_value`), which reads back as the same value; None when that is not
    plain ASCII text (a DataElement is mutable: it is not shared)."""
    value = elem.value
    if isinstance(value, PersonName):
        value = str(value)
    elif isinstance(value, MultiValue):
        value = list(value)
    if not isinstance(value, str | list):
        return None
    raw = new_element(int(elem.tag), elem.VR, value)
    return raw if raw.__class__ is RawDataElement else None


def _replace(ds: Dataset, key: Any, elem: Any) -> None:
    """Put a new element where `key` was (same place in the dict, no conversion)."""
    if elem.VR == "SQ":
        ds[key] = elem  # __setitem__ wraps the list in a Sequence
    else:
        ds._dict[key] = elem
