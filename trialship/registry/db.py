"""Engine and unit of work. SQLite runs in WAL mode with foreign keys on."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from trialship.errors import ConfigError

SCHEMA_REVISION = "0008_unique_paths_positions"
"""The newest migration, which this code's models need (a test holds it to alembic's head):
checked with one query, because loading alembic for every command would cost half a second."""


def make_engine(url: str) -> Engine:
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

    return engine


class Database:
    """Owns the engine; hands out sessions that commit on success and roll back on error."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def new_session(self) -> Session:
        return self._sessions()

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def require_schema(self) -> None:
        """Raise ConfigError, saying what to run, unless the schema is at SCHEMA_REVISION."""
        url = make_url(self.url)
        if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
            revisions: list[str] = []  # (connecting would create an empty database file)
        else:
            try:
                with self.engine.connect() as connection:
                    rows = connection.execute(text("SELECT version_num FROM alembic_version"))
                    revisions = list(rows.scalars())
            except DBAPIError:
                revisions = []
        if not revisions:
            raise ConfigError("the database has no trialship schema: run `trialship init`")
        if SCHEMA_REVISION not in revisions:
            raise ConfigError(
                f"the database is at revision {', '.join(revisions)}, and this trialship needs "
                f"{SCHEMA_REVISION}: run `trialship db upgrade`"
            )

    def dispose(self) -> None:
        self.engine.dispose()
