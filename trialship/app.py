"""Bootstrap: build the settings, the database and the vault once, for the web app and the CLI."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from trialship.config import Settings, load_settings, with_instance_keys
from trialship.crypto import Vault
from trialship.registry.db import Database


@dataclass
class Runtime:
    """The dependencies every face (web, CLI, jobs) hands to the services."""

    settings: Settings
    db: Database
    vault: Vault

    def today(self) -> dt.date:
        """Today in the office's time zone: visit windows are counted in local days."""
        zone = ZoneInfo(self.settings.timezone) if self.settings.timezone else None
        return dt.datetime.now(zone).date()


def bootstrap(overrides: Mapping[str, Any] | None = None) -> Runtime:
    settings = with_instance_keys(load_settings(overrides))
    return Runtime(
        settings=settings,
        db=Database(settings.effective_database_url),
        vault=Vault(settings.fernet_key, settings.secret_key),
    )
