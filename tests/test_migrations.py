"""Migrations: upgrade from empty, models and migrations agree, downgrade to base and back."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from trialship.registry import migrate
from trialship.registry.db import SCHEMA_REVISION
from trialship.registry.models import Base


def test_upgrade_check_downgrade_round_trip(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    migrate.upgrade(url)
    migrate.check(url)
    engine = create_engine(url)
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    migrate.downgrade(url, "base")
    assert inspect(engine).get_table_names() == ["alembic_version"]
    migrate.upgrade(url)
    migrate.check(url)


def test_check_fails_on_a_database_that_is_behind(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.sqlite'}"
    with pytest.raises(migrate.SchemaDrift):
        migrate.check(url)


def test_the_revision_commands_require_is_alembics_head() -> None:
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(migrate.alembic_config("sqlite://"))
    assert scripts.get_heads() == [SCHEMA_REVISION]
