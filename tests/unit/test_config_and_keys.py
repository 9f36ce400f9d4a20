"""Settings come from TRIALSHIP_* variables and the instance file; keys are made once, 0600."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from trialship import crypto
from trialship.config import load_settings, with_instance_keys
from trialship.errors import ConfigError


def test_environment_wins_over_instance_file(tmp_path: Path) -> None:
    (tmp_path / "trialship.toml").write_text("login_attempts = 9\nsession_hours = 2\n")
    env = {"TRIALSHIP_DATA": str(tmp_path), "TRIALSHIP_LOGIN_ATTEMPTS": "3"}
    settings = load_settings(environ=env)
    assert settings.login_attempts == 3
    assert settings.session_hours == 2
    assert settings.effective_database_url == f"sqlite:///{tmp_path.resolve()}/trialship.db"


def test_bad_values_name_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="TRIALSHIP_SECURE_COOKIES"):
        load_settings(
            environ={"TRIALSHIP_DATA": str(tmp_path), "TRIALSHIP_SECURE_COOKIES": "maybe"}
        )
    (tmp_path / "trialship.toml").write_text("no_such_setting = 1\n")
    with pytest.raises(ConfigError, match="unknown key"):
        load_settings(environ={"TRIALSHIP_DATA": str(tmp_path)})


def test_keys_are_generated_once_with_mode_0600(tmp_path: Path) -> None:
    settings = with_instance_keys(load_settings({"data_dir": tmp_path / "data"}, environ={}))
    again = with_instance_keys(load_settings({"data_dir": tmp_path / "data"}, environ={}))
    assert settings.secret_key == again.secret_key and settings.fernet_key == again.fernet_key
    for name in ("secret_key", "fernet.key"):
        mode = stat.S_IMODE((tmp_path / "data" / name).stat().st_mode)
        assert mode == 0o600


def test_vault_round_trip_and_keyed_hash_normalises(tmp_path: Path) -> None:
    settings = with_instance_keys(load_settings({"data_dir": tmp_path}, environ={}))
    vault = crypto.Vault(settings.fernet_key, settings.secret_key)
    token = vault.encrypt("MRN-0042")
    assert b"MRN-0042" not in token
    assert vault.decrypt(token) == "MRN-0042"
    assert vault.keyed_hash(" mrn-0042 ") == vault.keyed_hash("MRN-0042")
    other = crypto.Vault(settings.fernet_key, "another secret")
    assert other.keyed_hash("MRN-0042") != vault.keyed_hash("MRN-0042")


def test_password_hash_is_salted_and_checked() -> None:
    first, second = crypto.hash_password("s3cret-pass"), crypto.hash_password("s3cret-pass")
    assert first != second and first.startswith("scrypt$")
    assert crypto.check_password(first, "s3cret-pass")
    assert not crypto.check_password(first, "wrong")
    assert not crypto.check_password("garbage", "s3cret-pass")
