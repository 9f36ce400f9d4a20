"""Settings: one typed object from TRIALSHIP_* environment variables and the instance file.

Precedence: explicit overrides > environment > ``<data>/trialship.toml`` > defaults.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

from trialship.errors import ConfigError

ENV_PREFIX = "TRIALSHIP_"
INSTANCE_FILE = "trialship.toml"


@dataclass(frozen=True)
class Settings:
    """Everything the app reads from its environment, validated once."""

    data_dir: Path = Path("instance")
    database_url: str = ""
    queue_url: str = ""
    secure_cookies: bool = False
    session_hours: int = 12
    login_attempts: int = 5
    login_window_minutes: int = 15
    csv_max_rows: int = 20_000
    csv_max_bytes: int = 10_000_000
    timezone: str = ""
    originals_retention_days: int = 90
    """Days the original (identified) files of imported exams are kept for re-processing."""
    secret_key: str = field(default="", repr=False)
    fernet_key: str = field(default="", repr=False)

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'trialship.db').resolve()}"

    @property
    def effective_queue_url(self) -> str:
        return self.queue_url or f"sqlite:///{(self.data_dir / 'queue.db').resolve()}"


def _coerce(name: str, kind: Any, raw: Any) -> Any:
    try:
        if kind in (bool, "bool"):
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in {"1", "true", "yes", "on"}:
                return True
            if text in {"0", "false", "no", "off", ""}:
                return False
            raise ValueError(f"expected true or false, got {raw!r}")
        if kind in (int, "int"):
            value = int(raw)
            if value < 0:
                raise ValueError("must not be negative")
            return value
        if kind in (Path, "Path"):
            return Path(str(raw)).expanduser()
        return str(raw)
    except ValueError as exc:
        raise ConfigError(f"{exc}", field=ENV_PREFIX + name.upper()) from exc


def load_settings(
    overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read the settings. `overrides` (tests, app factory) win over everything."""
    env = os.environ if environ is None else environ
    overrides = dict(overrides or {})
    known = {f.name: f for f in fields(Settings)}
    unknown = set(overrides) - set(known)
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")

    data_raw = overrides.get("data_dir") or env.get(ENV_PREFIX + "DATA") or "instance"
    data_dir = Path(str(data_raw)).expanduser()
    file_values: dict[str, Any] = {}
    instance_file = data_dir / INSTANCE_FILE
    if instance_file.is_file():
        try:
            file_values = tomllib.loads(instance_file.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{instance_file}: {exc}") from exc
        bad = set(file_values) - set(known) - {"data_dir"}
        if bad:
            raise ConfigError(f"{instance_file}: unknown key(s) {', '.join(sorted(bad))}")

    values: dict[str, Any] = {"data_dir": data_dir}
    for name, spec in known.items():
        if name == "data_dir":
            continue
        if name in overrides:
            raw = overrides[name]
        elif ENV_PREFIX + name.upper() in env:
            raw = env[ENV_PREFIX + name.upper()]
        elif name in file_values:
            raw = file_values[name]
        else:
            continue
        values[name] = _coerce(name, spec.type, raw)
    return Settings(**values)


def _read_or_create_key(path: Path, make: Callable[[], str]) -> str:
    """Read a key file, creating it with mode 0600 on first run."""
    if path.exists():
        return path.read_text(encoding="ascii").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        value = make()
        handle.write(value + "\n")
    return value


def with_instance_keys(settings: Settings, *, create: bool = True) -> Settings:
    """Fill in the secret key and the Fernet key from the data folder, generating them there
    if new. With `create` false a missing key means the folder was never initialised: a
    command other than `init` must not leave a half-made data folder behind."""
    if not create:
        wanted = {"secret_key": settings.secret_key, "fernet.key": settings.fernet_key}
        if any(
            not given and not (settings.data_dir / name).is_file() for name, given in wanted.items()
        ):
            raise ConfigError(
                f"{settings.data_dir.resolve()} is not a trialship data folder: run "
                "`trialship init` there first, or name the folder with --data or TRIALSHIP_DATA"
            )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    secret = settings.secret_key or _read_or_create_key(
        settings.data_dir / "secret_key", lambda: secrets.token_hex(32)
    )
    fernet = settings.fernet_key or _read_or_create_key(
        settings.data_dir / "fernet.key", lambda: Fernet.generate_key().decode("ascii")
    )
    return dataclasses.replace(settings, secret_key=secret, fernet_key=fernet)
