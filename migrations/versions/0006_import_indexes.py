"""import indexes: instances by path, quarantined files by trial and SHA-256

Every imported file looks up its output path among the instances and clears its earlier
quarantine by hash; without these indexes each was a scan of the table, so an import slowed
as the registry grew (1,000 files: 12 s into an empty registry, 23 s into one of 40,000).

Revision ID: 0006_import_indexes
Revises: 0005_submissions
Create Date: 2026-12-01 16:55:00
"""

from __future__ import annotations

from alembic import op

revision = "0006_import_indexes"
down_revision = "0005_submissions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_instances_path", "instances", ["path"])
    op.create_index(
        "ix_quarantined_files_trial_id_sha256", "quarantined_files", ["trial_id", "sha256"]
    )


def downgrade() -> None:
    op.drop_index("ix_quarantined_files_trial_id_sha256", table_name="quarantined_files")
    op.drop_index("ix_instances_path", table_name="instances")
