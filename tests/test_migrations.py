"""Migrations: upgrade from empty, models and migrations agree, downgrade to base and back."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import IntegrityError

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


def _instance_row(pk: int, path: str) -> dict[str, object]:
    return {
        "id": pk,
        "trial_id": 1,
        "series_pk": 1,
        "sop_instance_uid": f"2.25.{pk}",
        "sop_class_uid": "1.2.840.10008.5.1.4.1.1.2",
        "transfer_syntax_uid": "1.2.840.10008.1.2.1",
        "original_sop_hash": f"{pk:064x}",
        "input_sha256": "0" * 64,
        "output_sha256": "0" * 64,
        "size": 1,
        "path": path,
        "original_path": "",
        "created_at": "2026-12-01 10:00:00",
    }


def test_instance_paths_are_unique_and_rows_two_imports_gave_one_path_get_their_own(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    migrate.upgrade(url, "0007_attribute_reports")
    engine = create_engine(url)  # (foreign keys off: the rows only need their own table)
    insert = text(
        "INSERT INTO instances (id, trial_id, series_pk, sop_instance_uid, sop_class_uid, "
        "transfer_syntax_uid, original_sop_hash, input_sha256, output_sha256, size, path, "
        "original_path, created_at) VALUES (:id, :trial_id, :series_pk, :sop_instance_uid, "
        ":sop_class_uid, :transfer_syntax_uid, :original_sop_hash, :input_sha256, "
        ":output_sha256, :size, :path, :original_path, :created_at)"
    )
    shared = "exams/1/1/S0002/I00002.dcm"
    with engine.begin() as connection:
        for pk, path in ((1, "exams/1/1/S0002/I00001.dcm"), (2, shared), (3, shared)):
            connection.execute(insert, _instance_row(pk, path))
    migrate.upgrade(url)
    migrate.check(url)
    with engine.begin() as connection:
        paths = {
            pk: path for pk, path in connection.execute(text("SELECT id, path FROM instances"))
        }
    assert paths == {
        1: "exams/1/1/S0002/I00001.dcm",
        2: shared,
        3: "exams/1/1/S0002/I00002_dup3.dcm",
    }
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(insert, _instance_row(4, shared))
    columns = {c["name"] for c in inspect(engine).get_columns("quarantined_files")}
    assert {"item", "zip_entry"} <= columns
    migrate.downgrade(url, "0007_attribute_reports")
    with engine.begin() as connection:
        connection.execute(insert, _instance_row(4, shared))  # (not unique before)
    columns = {c["name"] for c in inspect(engine).get_columns("quarantined_files")}
    assert not {"item", "zip_entry"} & columns
    engine.dispose()
