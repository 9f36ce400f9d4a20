"""The instance's Ed25519 receipt key: created once in the data folder, readable by its owner."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)

PRIVATE_KEY_FILE = "receipt_ed25519.pem"
PUBLIC_KEY_FILE = "receipt_ed25519.pub.pem"


class SigningKeyError(Exception):
    """The key file exists but is not an Ed25519 key."""


def load_or_create_signing_key(data_dir: Path) -> Ed25519PrivateKey:
    """The instance key from `data_dir`, created (mode 0600, public key beside it) if missing."""
    path = Path(data_dir) / PRIVATE_KEY_FILE
    if path.exists():
        key = load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise SigningKeyError(f"{path} is not an Ed25519 private key")
        _write_public(path.parent, key.public_key())
        return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    temporary = path.with_name(f".{PRIVATE_KEY_FILE}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    try:
        os.link(temporary, path)  # fails if another process created the key meanwhile
    except FileExistsError:
        temporary.unlink()
        return load_or_create_signing_key(data_dir)
    temporary.unlink()
    _write_public(path.parent, key.public_key())
    return key


def _write_public(folder: Path, public: Ed25519PublicKey) -> None:
    target = folder / PUBLIC_KEY_FILE
    pem = public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    if not target.exists() or target.read_bytes() != pem:
        target.write_bytes(pem)


def load_public_key(path: Path) -> Ed25519PublicKey:
    """An Ed25519 public key from a PEM file (a private key file gives its public half)."""
    data = Path(path).read_bytes()
    try:
        key = load_pem_public_key(data)
    except ValueError:
        private = load_pem_private_key(data, password=None)
        if not isinstance(private, Ed25519PrivateKey):
            raise SigningKeyError(f"{path} is not an Ed25519 key") from None
        return private.public_key()
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError(f"{path} is not an Ed25519 public key")
    return key
