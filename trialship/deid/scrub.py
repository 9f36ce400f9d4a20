"""Cleaning free text (the C action on descriptors, structured content and graphics).

A cleaned value keeps its length and wording; each identifying span becomes a run of 'X'. Spans
are the instance's own identifiers (name parts, IDs, birth date, address, institution) plus
anything that looks like a date, a phone number or an ID (5+ digits in a row).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Any

from trialship.deid.identifiers import Identifiers
from trialship.deid.matching import (
    kind_patterns,
    longest_word,
    spaced_ids,
    spaced_pattern,
    without_separators,
    word_pattern,
    years,
)

_MONTH = (
    r"(?<![a-z])(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)(?![a-z])\.?"
)
_GENERIC = (
    # 20240131, 2024-01-31, 2024/01/31, 2024.01.31
    r"(?<!\d)(?:19|20)\d{2}[-/.]?(?:0[1-9]|1[0-2])[-/.]?(?:0[1-9]|[12]\d|3[01])(?!\d)",
    # 31/01/2024, 1.1.24, 01-31-2024
    r"(?<!\d)\d{1,2}[-/.]\d{1,2}[-/.](?:19|20)?\d{2}(?!\d)",
    # 28 Feb 2024, 4-JUL-1951, 3rd March 2024; February 28, 2024, Jul. 4 1951
    rf"(?<!\d)\d{{1,2}}(?:st|nd|rd|th)?[\s-]{_MONTH}[\s,-]+(?:19|20)?\d{{2}}(?!\d)",
    rf"{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+(?:19|20)\d{{2}}(?!\d)",
    # phone numbers: +41 44 123 45 67, (555) 123-4567
    r"(?<![\w+])\+?\(?\d{2,4}\)?(?:[\s.-]\d{2,4}){2,4}(?!\w)",
    # ID-like digit runs
    r"\d{5,}",
)


_CACHED = 1024
_GENERIC_REGEX = re.compile("|".join(f"(?:{part})" for part in _GENERIC), re.IGNORECASE)


class _Kind:
    """One kind of identifier's pattern, compiled the first time a text holds one of its tokens:
    a match needs one of them in the lower-cased text (with `compact`, once the separators
    `spaced_pattern` allows are taken out). A patient's descriptions seldom hold their birth date
    (1.4 ms to compile its 49 spellings) or an ID written with spaces: most never are."""

    def __init__(
        self, tokens: Iterable[str], pattern: str | None, *, compact: bool = False
    ) -> None:
        self.tokens = tuple(sorted({token for token in tokens if token}))
        self.pattern = pattern
        self.compact = compact
        # A token beyond ASCII may match other characters without case (the long s, U+017F,
        # matches "s"): such a kind is tried on every text.
        self.always = not all(token.isascii() for token in self.tokens)
        self._regex: re.Pattern[str] | None = None

    def regex_for(self, lowered: str, compacted: str, *, every: bool) -> re.Pattern[str] | None:
        """The compiled pattern when the text may match it (`every`: do not look at tokens)."""
        if self.pattern is None:
            return None
        subject = compacted if self.compact else lowered
        if not (every or self.always or any(token in subject for token in self.tokens)):
            return None
        if self._regex is None:
            # (re's own cache gives the leak check's `IdentifierPatterns` the same object)
            self._regex = re.compile(self.pattern, re.IGNORECASE)
        return self._regex


class Scrubber:
    """Redacts identifying spans from free text; built once per patient (`scrubber_for`)."""

    def __init__(self, identifiers: Identifiers) -> None:
        # A regex per kind, each compiled when a text first needs it, and the generic patterns
        # compiled once per process: one alternation of them all was compiled anew for each
        # patient in each worker, 5 ms (the generic part 1.4, a birth date's spellings 1.4).
        kinds = kind_patterns(identifiers)
        self._kinds = (
            _Kind(identifiers.name_parts, word_pattern(identifiers.name_parts)),
            _Kind(identifiers.ids, kinds["id"]),
            _Kind(years(identifiers.dates), kinds["birth_date"]),  # (each spelling holds one)
            _Kind(identifiers.addresses, kinds["address"]),
            _Kind(map(longest_word, identifiers.institutions), kinds["institution"]),
            *(
                _Kind([without_separators(value)], spaced_pattern(value), compact=True)
                for value in spaced_ids(identifiers.ids)
            ),
        )
        self._finds: dict[str, bool] = {}
        self._scrubbed: dict[str, tuple[str, int]] = {}

    def _regexes(self, text: str) -> list[re.Pattern[str]]:
        """The patterns that may match `text`: a kind whose tokens it lacks cannot."""
        every = not text.isascii()  # (case beyond ASCII: `lower` is not what re folds)
        lowered = text.lower()
        compacted = without_separators(lowered)
        found = []
        for kind in self._kinds:
            regex = kind.regex_for(lowered, compacted, every=every)
            if regex is not None:
                found.append(regex)
        found.append(_GENERIC_REGEX)
        return found

    def finds(self, text: str) -> bool:
        """True when `scrub` would redact something in `text`."""
        found = self._finds.get(text)
        if found is None:
            found = any(regex.search(text) is not None for regex in self._regexes(text))
            self._remember(self._finds, text, found)
        return found

    def scrub(self, text: str) -> tuple[str, int]:
        """The text with identifying spans replaced by 'X' runs, and how many spans there were."""
        done = self._scrubbed.get(text)
        if done is None:
            done = self._scrub(text)
            self._remember(self._scrubbed, text, done)
        return done

    @staticmethod
    def _remember(cache: dict[str, Any], text: str, result: Any) -> None:
        # Instances of one patient repeat their descriptions: both answers are pure functions of
        # the text, so they are kept (a bounded number; the cache goes with the scrubber).
        if len(cache) >= _CACHED:
            cache.clear()
        cache[text] = result

    def _scrub(self, text: str) -> tuple[str, int]:
        spans = sorted(
            match.span()
            for regex in self._regexes(text)
            for match in regex.finditer(text)
            if match.end() > match.start()
        )
        merged: list[list[int]] = []
        for start, end in spans:  # (overlapping finds of two kinds are one span)
            if merged and start < merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        pieces: list[str] = []
        last = 0
        for start, end in merged:
            pieces += (text[last:start], _REDACTABLE.sub("X", text[start:end]))
            last = end
        pieces.append(text[last:])
        return "".join(pieces), len(merged)


_REDACTABLE = re.compile(r"[^\s^]")
"""What a redacted span turns into 'X': all but spaces and person name separators."""


@functools.lru_cache(maxsize=64)
def scrubber_for(identifiers: Identifiers) -> Scrubber:
    """The scrubber for these identifiers, built once: instances of one patient share it (a
    Scrubber holds only its compiled pattern, so sharing it is safe, across threads too).

    As many as the identifiers remembered (`identifiers._COLLECTED_SIZE`): a folder sorted by
    modality meets each of a few dozen patients several times, and a pattern costs a millisecond
    to compile (with 16, 25 patients in turn rebuilt every one of them each time)."""
    return Scrubber(identifiers)
