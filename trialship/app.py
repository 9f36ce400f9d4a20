"""Bootstrap: build the settings, the database and the vault once, for the web app and the CLI."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from trialship.config import Settings, load_settings, with_instance_keys
from trialship.crypto import Vault
from trialship.registry.db import Database

if TYPE_CHECKING:
    from huey import Huey


@dataclass
class Runtime:
    """The dependencies every face (web, CLI, jobs) hands to the services."""

    settings: Settings
    db: Database
    vault: Vault
    _queue: Huey | None = None

    @property
    def queue(self) -> Huey:
        """The huey instance, built on first use with every task registered."""
        if self._queue is None:
            from trialship.jobs.queue import build_queue
            from trialship.jobs.tasks import register_tasks

            self._queue = build_queue(self.settings.effective_queue_url)
            register_tasks(self._queue, self)
        return self._queue

    def today(self) -> dt.date:
        """Today in the office's time zone: visit windows are counted in local days."""
        zone = ZoneInfo(self.settings.timezone) if self.settings.timezone else None
        return dt.datetime.now(zone).date()


def bootstrap(overrides: Mapping[str, Any] | None = None, *, create: bool = True) -> Runtime:
    """The runtime of a data folder; `create` false refuses a folder that `init` never made."""
    settings = with_instance_keys(load_settings(overrides), create=create)
    return Runtime(
        settings=settings,
        db=Database(settings.effective_database_url),
        vault=Vault(settings.fernet_key, settings.secret_key),
    )
