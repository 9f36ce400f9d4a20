"""Dummy values for the D action, one per VR (PS3.15 E.1.1: non-zero length, consistent with VR)."""

from __future__ import annotations

from typing import Any

DUMMY_TEXT = "ANONYMIZED"
# Neutral dummies: the DICOM epoch-like 1900-01-01 at midnight. No real exam carries it, so a
# reader sees at once that the value is not a real date.
DUMMY_DATE = "19000101"
DUMMY_TIME = "000000"
DUMMY_DATETIME = DUMMY_DATE + DUMMY_TIME

_DUMMIES: dict[str, Any] = {
    "AE": DUMMY_TEXT,
    "AS": "000D",
    "CS": DUMMY_TEXT,
    "DA": DUMMY_DATE,
    "DS": "0",
    "DT": DUMMY_DATETIME,
    "IS": "0",
    "LO": DUMMY_TEXT,
    "LT": DUMMY_TEXT,
    "PN": DUMMY_TEXT,
    "SH": DUMMY_TEXT,
    "ST": DUMMY_TEXT,
    "TM": DUMMY_TIME,
    "UC": DUMMY_TEXT,
    "UR": "urn:anonymized",
    "UT": DUMMY_TEXT,
    "AT": 0,
    "FD": 0.0,
    "FL": 0.0,
    "SL": 0,
    "SS": 0,
    "SV": 0,
    "UL": 0,
    "US": 0,
    "UV": 0,
    # Binary: 8 zero bytes are a valid length for OB, OW, OF (4-byte) and OD/OV (8-byte) alike.
    "OB": b"\0" * 8,
    "OD": b"\0" * 8,
    "OF": b"\0" * 8,
    "OL": b"\0" * 8,
    "OV": b"\0" * 8,
    "OW": b"\0" * 8,
    "UN": b"\0" * 8,
}


def dummy_value(vr: str) -> Any:
    """The dummy for a VR; text for an unknown VR (it is the most forgiving)."""
    return _DUMMIES.get(vr, DUMMY_TEXT)
