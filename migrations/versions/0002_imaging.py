"""imaging: series, instances, key entries, quarantine; exam import fields

Revision ID: 0002_imaging
Revises: 0001_registry
Create Date: 2026-11-22 04:31:15.095744
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_imaging"
down_revision = "0001_registry"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "quarantined_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trial_id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("stored_path", sa.String(length=512), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["jobs.id"],
            name=op.f("fk_quarantined_files_job_id_jobs"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["trial_id"],
            ["trials.id"],
            name=op.f("fk_quarantined_files_trial_id_trials"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quarantined_files")),
    )
    with op.batch_alter_table("quarantined_files", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_quarantined_files_trial_id"), ["trial_id"], unique=False
        )

    op.create_table(
        "key_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trial_id", sa.Integer(), nullable=False),
        sa.Column("exam_pk", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("original_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("replacement", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(
            ["exam_pk"], ["exams.id"], name=op.f("fk_key_entries_exam_pk_exams"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["trial_id"],
            ["trials.id"],
            name=op.f("fk_key_entries_trial_id_trials"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_key_entries")),
        sa.UniqueConstraint(
            "exam_pk", "kind", "replacement", name=op.f("uq_key_entries_exam_pk_kind_replacement")
        ),
    )
    with op.batch_alter_table("key_entries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_key_entries_exam_pk"), ["exam_pk"], unique=False)
        batch_op.create_index(batch_op.f("ix_key_entries_trial_id"), ["trial_id"], unique=False)

    op.create_table(
        "series",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("exam_pk", sa.Integer(), nullable=False),
        sa.Column("series_instance_uid", sa.String(length=64), nullable=False),
        sa.Column("series_number", sa.Integer(), nullable=True),
        sa.Column("modality", sa.String(length=16), nullable=False),
        sa.Column("description", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["exam_pk"], ["exams.id"], name=op.f("fk_series_exam_pk_exams"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_series")),
        sa.UniqueConstraint(
            "exam_pk", "series_instance_uid", name=op.f("uq_series_exam_pk_series_instance_uid")
        ),
    )
    with op.batch_alter_table("series", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_series_exam_pk"), ["exam_pk"], unique=False)

    op.create_table(
        "instances",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trial_id", sa.Integer(), nullable=False),
        sa.Column("series_pk", sa.Integer(), nullable=False),
        sa.Column("sop_instance_uid", sa.String(length=64), nullable=False),
        sa.Column("sop_class_uid", sa.String(length=64), nullable=False),
        sa.Column("transfer_syntax_uid", sa.String(length=64), nullable=False),
        sa.Column("instance_number", sa.Integer(), nullable=True),
        sa.Column("original_sop_hash", sa.String(length=64), nullable=False),
        sa.Column("input_sha256", sa.String(length=64), nullable=False),
        sa.Column("output_sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("path", sa.String(length=512), nullable=False),
        sa.Column("original_path", sa.String(length=512), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["series_pk"],
            ["series.id"],
            name=op.f("fk_instances_series_pk_series"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["trial_id"],
            ["trials.id"],
            name=op.f("fk_instances_trial_id_trials"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_instances")),
        sa.UniqueConstraint("sop_instance_uid", name=op.f("uq_instances_sop_instance_uid")),
        sa.UniqueConstraint(
            "trial_id", "original_sop_hash", name=op.f("uq_instances_trial_id_original_sop_hash")
        ),
    )
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_instances_series_pk"), ["series_pk"], unique=False)

    with op.batch_alter_table("exams", schema=None) as batch_op:
        batch_op.add_column(sa.Column("study_uid_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("study_instance_uid", sa.String(length=64), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("timepoint_confirmed", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch_op.add_column(
            sa.Column("needs_pixel_review", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("pixel_reviewed_at", sa.DateTime(), nullable=True))
        batch_op.add_column(
            sa.Column("file_count", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("total_bytes", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("receipt", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("message", sa.Text(), nullable=False, server_default=""))
        batch_op.create_unique_constraint(
            batch_op.f("uq_exams_trial_id_study_uid_hash"), ["trial_id", "study_uid_hash"]
        )

    with op.batch_alter_table("trials", schema=None) as batch_op:
        batch_op.add_column(sa.Column("uid_secret_encrypted", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("trials", schema=None) as batch_op:
        batch_op.drop_column("uid_secret_encrypted")

    with op.batch_alter_table("exams", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_exams_trial_id_study_uid_hash"), type_="unique")
        batch_op.drop_column("message")
        batch_op.drop_column("receipt")
        batch_op.drop_column("total_bytes")
        batch_op.drop_column("file_count")
        batch_op.drop_column("pixel_reviewed_at")
        batch_op.drop_column("needs_pixel_review")
        batch_op.drop_column("timepoint_confirmed")
        batch_op.drop_column("study_instance_uid")
        batch_op.drop_column("study_uid_hash")

    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_instances_series_pk"))

    op.drop_table("instances")
    with op.batch_alter_table("series", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_series_exam_pk"))

    op.drop_table("series")
    with op.batch_alter_table("key_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_key_entries_trial_id"))
        batch_op.drop_index(batch_op.f("ix_key_entries_exam_pk"))

    op.drop_table("key_entries")
    with op.batch_alter_table("quarantined_files", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_quarantined_files_trial_id"))

    op.drop_table("quarantined_files")
