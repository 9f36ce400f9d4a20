"""Regular expressions built from an instance's identifiers, shared by the leak check and the
text cleaner so both look for the same things in the same way."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

from trialship.deid.identifiers import Identifiers

# Shorter "UIDs" ("0", "1.2") are placeholders in test data, not identifiers of anything.
MIN_UID = 8


def _alternation(values: Iterable[str]) -> str:
    # Longest first, so "anna-lena" wins over "anna".
    return "|".join(re.escape(value) for value in sorted(set(values), key=lambda v: (-len(v), v)))


def _digit_bounded(value: str) -> str:
    # Numeric edges must not touch other digits: an MRN inside a 2.25 UID is chance, not a leak.
    pattern = re.escape(value)
    if value[:1].isdigit():
        pattern = r"(?<!\d)" + pattern
    if value[-1:].isdigit():
        pattern += r"(?!\d)"
    return pattern


def word_pattern(values: Iterable[str]) -> str | None:
    """Whole-word match (no letter or digit on either side); compile it case-insensitive."""
    alternation = _alternation(values)
    if not alternation:
        return None
    return rf"(?<![0-9a-z])(?:{alternation})(?![0-9a-z])"


def token_pattern(values: Iterable[str]) -> str | None:
    """Substring match with digit-bounded numeric edges; compile it case-insensitive."""
    ordered = sorted(set(values), key=lambda v: (-len(v), v))
    if not ordered:
        return None
    return "|".join(_digit_bounded(value) for value in ordered)


SPACED_ID = 6
"""IDs this long are also found written with spaces, dots or dashes inside ("MRN 123 4567")."""


def spaced_ids(ids: Iterable[str]) -> list[str]:
    """The IDs also looked for with separators inside (`spaced_pattern`), in order."""
    return sorted(value for value in ids if len(value) >= SPACED_ID)


def spaced_pattern(value: str) -> str:
    """An ID with a space, dot or dash allowed between any two of its characters, as a whole
    word; compile it case-insensitive. (Not for UIDs, dates or numbers: "4711001" is in
    "2.25.4.7.1.1.0.0.1" this way.)"""
    chars = [re.escape(char) for char in value if not char.isspace()]
    return r"(?<![0-9a-z])" + r"[\s.-]?".join(chars) + r"(?![0-9a-z])"


_SEPARATORS = re.compile(r"[\s.-]")


_ASCII_SEPARATORS = {code: None for code in range(128) if _SEPARATORS.match(chr(code))}
"""The ASCII characters `_SEPARATORS` matches (its \\s takes \\x1c-\\x1f too), as a table that
deletes them: `str.translate` is 30 times faster than the regex on a file's few kilobytes."""


def without_separators(text: str) -> str:
    """`text` without what `spaced_pattern` lets stand between an ID's characters: a text
    that matches an ID's pattern holds the ID (lower-cased) once they are taken out."""
    if text.isascii():
        return text.translate(_ASCII_SEPARATORS)
    return _SEPARATORS.sub("", text)


def _compiled(pattern: str | None) -> re.Pattern[str] | None:
    return None if pattern is None else re.compile(pattern, re.IGNORECASE)


def word_regex(values: Iterable[str]) -> re.Pattern[str] | None:
    """`word_pattern`, compiled case-insensitive."""
    return _compiled(word_pattern(values))


def token_regex(values: Iterable[str]) -> re.Pattern[str] | None:
    """`token_pattern`, compiled case-insensitive."""
    return _compiled(token_pattern(values))


def kind_patterns(identifiers: Identifiers) -> dict[str, str | None]:
    """The pattern of each identifier kind but names (the leak check's kinds, in its order)."""
    return {
        "id": token_pattern(identifiers.ids),
        "birth_date": token_pattern(identifiers.dates),
        "address": token_pattern(identifiers.addresses),
        "institution": word_pattern(identifiers.institutions),
    }


class IdentifierPatterns:
    """Compiled patterns per identifier kind; `kinds` maps each to its regex."""

    def __init__(self, identifiers: Identifiers) -> None:
        self.identifiers = identifiers
        self.names = word_regex(identifiers.name_parts)
        # Binary blobs hold random bytes: 3-letter names would match by chance, 4+ rarely do.
        self.long_names = word_regex(part for part in identifiers.name_parts if len(part) >= 4)
        # IDs under 4 characters ("1", "A2") only count as a whole value: inside text or UIDs
        # they are chance.
        self.short_ids = identifiers.short_ids
        self.kinds: dict[str, re.Pattern[str] | None] = {
            kind: _compiled(pattern) for kind, pattern in kind_patterns(identifiers).items()
        }
        # Original UIDs differ per instance, so a compiled regex would be rebuilt every time;
        # plain substring tests on a small set are cheaper (see `has_uid`).
        self.uids = tuple(uid for uid in identifiers.uids if len(uid) >= MIN_UID)
        self.allowed = token_regex(identifiers.allowed)
        # "MRN 471 1001" for MRN4711001, in text (the cleaner redacts it the same way).
        spaced = "|".join(map(spaced_pattern, spaced_ids(identifiers.ids)))
        self.spaced_ids = _compiled(spaced or None)

    def has_uid(self, text: str) -> bool:
        """An original UID anywhere in the text (also as the root of a longer, derived UID)."""
        return any(uid in text for uid in self.uids)

    def mask_allowed(self, text: str) -> str:
        """Blank out the trial's own values so a site named after a street is not a leak."""
        if self.allowed is None:
            return text
        return self.allowed.sub(lambda match: " " * len(match.group(0)), text)


def longest_word(value: str) -> str:
    return max(value.split() or [value], key=len)


class Prefilter:
    """A superset test for every rule of the leak check, as plain lower-case substrings.

    Each exact rule needs one of these substrings in the (lower-cased) text: a name part or an ID
    itself, the longest word of an institution (masking the trial's values only turns characters
    into spaces, so each word of a masked match is in the original), or a phone number's digits in
    order, or a long ID's characters in order once spaces, dots and dashes are taken out
    (`spaced_pattern`). Non-ASCII text always passes through: case folding beyond ASCII is the
    exact rules' job.
    """

    def __init__(self, identifiers: Identifiers) -> None:
        # A patient's tokens are the same in each of their files, their UIDs differ: the first
        # are kept (`_patient_tokens`). The order of the tokens does not change the answer.
        patient, everything = _patient_tokens(
            identifiers.name_parts,
            identifiers.ids,
            identifiers.short_ids,
            identifiers.dates,
            identifiers.addresses,
            identifiers.institutions,
        )
        uids = tuple({uid.lower() for uid in identifiers.uids} - {""})
        self.everything = everything or any(not uid.isascii() for uid in uids)
        self.tokens = patient + uids
        self.phones = tuple(identifiers.phones)
        self.spaced_ids = _spaced_tokens(identifiers.ids)

    def maybe(self, text: str) -> bool:
        if self.everything or not text.isascii():
            return True
        lowered = text.lower()
        for token in self.tokens:
            if token in lowered:
                return True
        if self.spaced_ids:
            compact = without_separators(lowered)
            if any(token in compact for token in self.spaced_ids):
                return True
        if self.phones:
            # ASCII here (checked above): deleting the bytes that are not 0-9 is what r"\D"
            # removes, at C speed (the regex costs a match per character).
            digits = text.encode("ascii").translate(None, _NON_DIGIT_BYTES).decode("ascii")
            return any(phone in digits for phone in self.phones)
        return False


@functools.lru_cache(maxsize=64)
def _spaced_tokens(ids: frozenset[str]) -> tuple[str, ...]:
    """What a text holds, once `without_separators`, when an ID's `spaced_pattern` matches it
    (a patient's IDs are the same in each of their files: kept)."""
    return tuple(sorted(map(without_separators, spaced_ids(ids))))


def years(dates: frozenset[str]) -> frozenset[str]:
    """Every spelling of a date holds its year (the longest run of digits in each): a text
    without it holds none of the spellings, and one token is checked instead of thirty."""
    return frozenset(max(re.findall(r"\d+", form), key=len) for form in dates)


_NON_DIGIT_BYTES = bytes(byte for byte in range(256) if not 0x30 <= byte <= 0x39)


def _patient_tokens(*groups: frozenset[str]) -> tuple[tuple[str, ...], bool]:
    """`Prefilter`'s tokens for these identifiers (dates fourth, as their years; institutions
    last, as their longest word), shortest first, without any that holds another (a text
    holding it holds the other); and whether any of them is not ASCII (`Prefilter.everything`)."""
    found = _PATIENT_TOKENS.get(groups)
    if found is None:
        *plain, dates, addresses, institutions = groups
        tokens = set().union(*plain, years(dates), addresses)
        tokens |= {longest_word(value) for value in institutions}
        tokens.discard("")
        ordered = sorted(tokens, key=len)
        kept = tuple(
            token
            for index, token in enumerate(ordered)
            if not any(shorter in token for shorter in ordered[:index])
        )
        found = (kept, any(not token.isascii() for token in tokens))
        if len(_PATIENT_TOKENS) >= _PATIENT_TOKENS_SIZE:
            _PATIENT_TOKENS.clear()
        _PATIENT_TOKENS[groups] = found
    return found


_PATIENT_TOKENS: dict[tuple[frozenset[str], ...], tuple[tuple[str, ...], bool]] = {}
"""Identifiers (PHI): forgotten with the engine's other caches (`forget_patient_tokens`)."""
_PATIENT_TOKENS_SIZE = 64


def forget_patient_tokens() -> None:
    _PATIENT_TOKENS.clear()
    _spaced_tokens.cache_clear()
