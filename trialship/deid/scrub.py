"""Cleaning free text (the C action on descriptors, structured content and graphics).

A cleaned value keeps its length and wording; each identifying span becomes a run of 'X'. Spans
are the instance's own identifiers (name parts, IDs, birth date, address, institution) plus
anything that looks like a date, a phone number or an ID (5+ digits in a row).
"""

from __future__ import annotations

import functools
import re

from trialship.deid.identifiers import Identifiers
from trialship.deid.matching import IdentifierPatterns

_GENERIC = (
    # 20240131, 2024-01-31, 2024/01/31, 2024.01.31
    r"(?<!\d)(?:19|20)\d{2}[-/.]?(?:0[1-9]|1[0-2])[-/.]?(?:0[1-9]|[12]\d|3[01])(?!\d)",
    # 31/01/2024, 1.1.24, 01-31-2024
    r"(?<!\d)\d{1,2}[-/.]\d{1,2}[-/.](?:19|20)?\d{2}(?!\d)",
    # phone numbers: +41 44 123 45 67, (555) 123-4567
    r"(?<![\w+])\+?\(?\d{2,4}\)?(?:[\s.-]\d{2,4}){2,4}(?!\w)",
    # ID-like digit runs
    r"\d{5,}",
)


class Scrubber:
    """Redacts identifying spans from free text; built once per instance."""

    def __init__(self, identifiers: Identifiers) -> None:
        patterns = IdentifierPatterns(identifiers)
        parts = [patterns.names.pattern] if patterns.names else []
        parts += [regex.pattern for regex in patterns.kinds.values() if regex]
        parts += list(_GENERIC)
        self._regex = re.compile("|".join(f"(?:{part})" for part in parts), re.IGNORECASE)

    def finds(self, text: str) -> bool:
        """True when `scrub` would redact something in `text`."""
        return self._regex.search(text) is not None

    def scrub(self, text: str) -> tuple[str, int]:
        """The text with identifying spans replaced by 'X' runs, and how many spans there were."""
        count = 0

        def redact(match: re.Match[str]) -> str:
            nonlocal count
            count += 1
            return re.sub(r"[^\s^]", "X", match.group(0))

        return self._regex.sub(redact, text), count


@functools.lru_cache(maxsize=16)
def scrubber_for(identifiers: Identifiers) -> Scrubber:
    """The scrubber for these identifiers, built once: instances of one patient share it (a
    Scrubber holds only its compiled pattern, so sharing it is safe, across threads too)."""
    return Scrubber(identifiers)
