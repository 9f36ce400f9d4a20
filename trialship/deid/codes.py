"""The meanings the standard gives its codes (PS3.16, as pydicom ships them): how the leak check
tells a code's own vocabulary from a name typed into its meaning."""

from __future__ import annotations

import functools
import re


def standard_meaning(scheme: str, code: str) -> str:
    """The standard's meanings of `code` in `scheme` (SRT codes through their SCT
    equivalents), one per line (a code may have several: "Chest" and "Thoracic structure"),
    or "" for a code it does not define (a local scheme's, or a typo)."""
    if scheme == "SRT":
        scheme, code = "SCT", _srt_to_sct().get(code, "")
    return _meanings().get((scheme, code), "")


@functools.cache
def _meanings() -> dict[tuple[str, str], str]:
    # Imported on first need: 15,000 concepts take a quarter of a second, and most outputs
    # never have a name in a code meaning.
    from pydicom.sr._concepts_dict import concepts

    by_scheme: dict[str, dict[str, dict[str, tuple[str, list[int]]]]] = concepts  # type: ignore[assignment]
    meanings: dict[tuple[str, str], str] = {}
    for scheme, names in by_scheme.items():
        for name, codes in names.items():
            for code, (meaning, _) in codes.items():
                # The concept's keyword ("Chest") is a meaning of it too, beside the full one.
                words = " ".join(re.findall(r"[A-Z][a-z]*|[a-z]+|[0-9]+", name))
                known = meanings.get((scheme, code))
                meanings[(scheme, code)] = "\n".join(filter(None, (known, meaning, words)))
    return meanings


@functools.cache
def _srt_to_sct() -> dict[str, str]:
    from pydicom.sr._snomed_dict import mapping

    return {srt: sct for sct, srt in mapping["SCT"].items()}
