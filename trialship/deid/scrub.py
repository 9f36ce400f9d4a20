"""Cleaning free text (the C action on descriptors, structured content and graphics).

A cleaned value keeps its length and wording; each identifying span becomes a run of 'X'. Spans
are the instance's own identifiers (name parts, IDs, birth date, address, institution) plus
anything that looks like a date, a phone number or an ID (5+ digits in a row).
"""

from __future__ import annotations

import functools
import re
from typing import Any

from trialship.deid.identifiers import Identifiers
from trialship.deid.matching import kind_patterns, word_pattern

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
_SPACED = 6
"""IDs this long are also found written with spaces, dots or dashes inside ("MRN 123 4567")."""


def _spaced(value: str) -> str:
    chars = [re.escape(char) for char in value if not char.isspace()]
    return r"(?<![0-9a-z])" + r"[\s.-]?".join(chars) + r"(?![0-9a-z])"


class Scrubber:
    """Redacts identifying spans from free text; built once per instance."""

    def __init__(self, identifiers: Identifiers) -> None:
        # The patterns' text only: compiling each on its own first would double the cost (a
        # millisecond per patient, in every worker).
        names = word_pattern(identifiers.name_parts)
        parts = [names] if names is not None else []
        parts += [pattern for pattern in kind_patterns(identifiers).values() if pattern is not None]
        parts += [_spaced(value) for value in sorted(identifiers.ids) if len(value) >= _SPACED]
        parts += list(_GENERIC)
        self._regex = re.compile("|".join(f"(?:{part})" for part in parts), re.IGNORECASE)
        self._finds: dict[str, bool] = {}
        self._scrubbed: dict[str, tuple[str, int]] = {}

    def finds(self, text: str) -> bool:
        """True when `scrub` would redact something in `text`."""
        found = self._finds.get(text)
        if found is None:
            found = self._regex.search(text) is not None
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
        count = 0

        def redact(match: re.Match[str]) -> str:
            nonlocal count
            count += 1
            return re.sub(r"[^\s^]", "X", match.group(0))

        return self._regex.sub(redact, text), count


@functools.lru_cache(maxsize=64)
def scrubber_for(identifiers: Identifiers) -> Scrubber:
    """The scrubber for these identifiers, built once: instances of one patient share it (a
    Scrubber holds only its compiled pattern, so sharing it is safe, across threads too).

    As many as the identifiers remembered (`identifiers._COLLECTED_SIZE`): a folder sorted by
    modality meets each of a few dozen patients several times, and a pattern costs a millisecond
    to compile (with 16, 25 patients in turn rebuilt every one of them each time)."""
    return Scrubber(identifiers)
