"""Deterministic UID remapping: the same secret and UID always give the same 2.25 UID."""

from __future__ import annotations

import functools
import hmac
import uuid

# PS3.5 B.2: a 2.25 UID is the decimal form of a UUID. The HMAC's first 128 bits get the RFC 9562
# version 8 ("custom") and variant bits so the integer is a well-formed UUID; 122 bits of HMAC
# remain, far beyond any collision risk for a trial. "2.25." + at most 39 digits = 44 characters,
# well under the 64 allowed.
_VERSION_MASK = ~(0xF << 76)
_VARIANT_MASK = ~(0x3 << 62)


@functools.lru_cache(maxsize=8192)
def remap_uid(secret: bytes, uid: str) -> str:
    """The trial's UID for an original UID: HMAC-SHA256(secret, uid) as a 2.25 UID.

    Parameters
    ----------
    secret
        The trial's UID secret. Different trials get unrelated UIDs for the same original.
    uid
        The original UID; trailing padding (NUL or space) is ignored.
    """
    # Cached: the instances of a series share most of their UIDs (a pure function of its input).
    original = uid.strip("\0 ")
    if not original:
        return ""
    # One C call (an HMAC object per UID costs three times as much; the digest is the same).
    digest = hmac.digest(secret, original.encode("ascii", "replace"), "sha256")
    number = int.from_bytes(digest[:16], "big")
    number = (number & _VERSION_MASK) | (0x8 << 76)
    number = (number & _VARIANT_MASK) | (0x2 << 62)
    return f"2.25.{number}"


# trialship's Implementation Class UID (PS3.7 D.3.3.2): fixed, derived from a name-based UUID so it
# never changes between releases and needs no registered root.
IMPLEMENTATION_CLASS_UID = (
    f"2.25.{uuid.uuid5(uuid.NAMESPACE_URL, 'urn:trialship:implementation').int}"
)
IMPLEMENTATION_VERSION_NAME = "TRIALSHIP_0"
