"""Secrets at rest (Fernet), keyed hashes for matching, password and token hashing."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from cryptography.fernet import Fernet, InvalidToken

from trialship.errors import TrialshipError

# scrypt with n=2**15, r=8 costs ~32 MiB and ~0.1 s: slow for guessing, fine for one login.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**15, 8, 1
_SCRYPT_MAXMEM = 64 * 1024 * 1024


class Vault:
    """Encrypts values at rest and hashes identifiers with a key that never leaves the instance."""

    def __init__(self, fernet_key: str, secret_key: str) -> None:
        self._fernet = Fernet(fernet_key.encode("ascii"))
        self._hash_key = hmac.new(
            secret_key.encode("utf-8"), b"trialship identifier hash v1", hashlib.sha256
        ).digest()

    def encrypt(self, text: str) -> bytes:
        return self._fernet.encrypt(text.encode("utf-8"))

    def decrypt(self, token: bytes) -> str:
        try:
            return self._fernet.decrypt(token).decode("utf-8")
        except InvalidToken as exc:
            raise TrialshipError(
                "an encrypted value cannot be read with this instance's key"
            ) from exc

    def keyed_hash(self, value: str) -> str:
        """HMAC-SHA256 of a normalised identifier: match without decrypting."""
        normalised = value.strip().upper()
        return hmac.new(self._hash_key, normalised.encode("utf-8"), hashlib.sha256).hexdigest()


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=_SCRYPT_N,
        r=_SCRYPT_R,
        p=_SCRYPT_P,
        maxmem=_SCRYPT_MAXMEM,
    )
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${salt.hex()}${digest.hex()}"


def check_password(stored: str, password: str) -> bool:
    try:
        scheme, n, r, p, salt, expected = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    digest = hashlib.scrypt(
        password.encode("utf-8"),
        salt=bytes.fromhex(salt),
        n=int(n),
        r=int(r),
        p=int(p),
        maxmem=_SCRYPT_MAXMEM,
    )
    return hmac.compare_digest(digest.hex(), expected)


def new_api_token() -> str:
    return "ts_" + secrets.token_urlsafe(32)


def hash_api_token(token: str) -> str:
    # Tokens carry 256 random bits, so a fast hash suffices (no guessing to slow down).
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
