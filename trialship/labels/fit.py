"""Fitting text into a width: shrink first, then wrap, never clip without saying so."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from reportlab.pdfbase.pdfmetrics import stringWidth

ELLIPSIS = "\u2026"  # in WinAnsi, so the standard fonts draw it
_STEP = 0.5  # points; finer steps change nothing a reader can see


@dataclass(frozen=True)
class Line:
    text: str
    size: float


@dataclass(frozen=True)
class Fitted:
    lines: tuple[Line, ...]
    ellipsized: bool = False


class NoFit(Exception):
    """The text cannot fit; carries the text that failed so the caller can name it."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def sizes(size: float, min_size: float) -> list[float]:
    """Candidate font sizes from `size` down to `min_size`, both included."""
    found = [size]
    while found[-1] - _STEP > min_size:
        found.append(found[-1] - _STEP)
    if found[-1] != min_size:
        found.append(min_size)
    return found


def width(text: str, font: str, size: float) -> float:
    return float(stringWidth(text, font, size))


def fit_lines(
    texts: Sequence[str],
    *,
    font: str,
    size: float,
    min_size: float,
    max_width: float,
    max_lines: int,
    ellipsize: bool,
) -> Fitted:
    """Lay out `texts` (one per line) in at most `max_lines` lines of `max_width` points.

    Each text keeps the largest size at which it fits on one line; failing that, it wraps at
    the largest size that fits within the lines still free (each later text keeps one line).
    """
    out: list[Line] = []
    cut = False
    for i, text in enumerate(texts):
        free = max_lines - len(out) - (len(texts) - i - 1)
        if free < 1:
            if not ellipsize:
                raise NoFit(text)
            cut = True
            break
        placed = _fit_one(text, font, size, min_size, max_width, free)
        if placed is None:
            if not ellipsize:
                raise NoFit(text)
            placed = _ellipsized(text, font, min_size, max_width, free)
            cut = True
        out.extend(placed)
    return Fitted(tuple(out), cut)


def fit_arc(
    text: str, *, font: str, size: float, min_size: float, length: float, ellipsize: bool
) -> Fitted:
    """One line along an arc of `length` points: shrink only (wrapping off a curve reads badly)."""
    placed = _fit_one(text, font, size, min_size, length, 1)
    if placed is not None:
        return Fitted(tuple(placed))
    if not ellipsize:
        raise NoFit(text)
    return Fitted(tuple(_ellipsized(text, font, min_size, length, 1)), True)


def _fit_one(
    text: str, font: str, size: float, min_size: float, max_width: float, free: int
) -> list[Line] | None:
    candidates = sizes(size, min_size)
    for s in candidates:
        if width(text, font, s) <= max_width:
            return [Line(text, s)]
    for s in candidates:
        wrapped = wrap(text, font, s, max_width)
        if len(wrapped) <= free:
            return [Line(part, s) for part in wrapped]
    return None


def _ellipsized(text: str, font: str, size: float, max_width: float, free: int) -> list[Line]:
    wrapped = wrap(text, font, size, max_width)[:free]
    last = wrapped[-1]
    while last and width(last + ELLIPSIS, font, size) > max_width:
        last = last[:-1]
    wrapped[-1] = last.rstrip() + ELLIPSIS
    return [Line(part, size) for part in wrapped]


def wrap(text: str, font: str, size: float, max_width: float) -> list[str]:
    """Greedy word wrap; a word wider than the line (a long ID) is broken between characters."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        trial = f"{current} {word}" if current else word
        if width(trial, font, size) <= max_width:
            current = trial
            continue
        if width(word, font, size) <= max_width:
            if current:
                lines.append(current)
            current = word
            continue
        # Longer than any line: break it, starting on the current line so no space is wasted.
        current = f"{current} " if current else ""
        for char in word:
            if current.strip() and width(current + char, font, size) > max_width:
                lines.append(current.rstrip())
                current = ""
            current += char
    if current:
        lines.append(current)
    return lines
