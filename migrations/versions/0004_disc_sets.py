"""disc sets: discs built from imported exams, the exams on each, and their burns

Revision ID: 0004_disc_sets
Revises: 0003_destinations
Create Date: 2026-11-22 05:24:36.535942
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_disc_sets"
down_revision = "0003_destinations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "disc_sets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trial_id", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_by_label", sa.String(length=254), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("medium", sa.String(length=10), nullable=False),
        sa.Column("policy", sa.String(length=10), nullable=False),
        sa.Column("label_template", sa.String(length=64), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "planned",
                "building",
                "ready",
                "failed",
                name="discsetstate",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_disc_sets_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_disc_sets_job_id_jobs"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["trial_id"],
            ["trials.id"],
            name=op.f("fk_disc_sets_trial_id_trials"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_disc_sets")),
    )
    with op.batch_alter_table("disc_sets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_disc_sets_trial_id"), ["trial_id"], unique=False)

    op.create_table(
        "discs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("disc_set_pk", sa.Integer(), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("medium", sa.String(length=10), nullable=False),
        sa.Column("fileset_id", sa.String(length=16), nullable=False),
        sa.Column("iso_path", sa.String(length=512), nullable=False),
        sa.Column("label_path", sa.String(length=512), nullable=False),
        sa.Column("image_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("manifest_sha256", sa.String(length=64), nullable=False),
        sa.Column(
            "state",
            sa.Enum("planned", "ready", "failed", name="discstate", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("burned_at", sa.DateTime(), nullable=True),
        sa.Column("burned_by", sa.String(length=254), nullable=False),
        sa.Column("burn_device", sa.String(length=255), nullable=False),
        sa.Column("burn_verified", sa.Boolean(), nullable=False),
        sa.Column("burn_message", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["disc_set_pk"],
            ["disc_sets.id"],
            name=op.f("fk_discs_disc_set_pk_disc_sets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_discs")),
        sa.UniqueConstraint("disc_set_pk", "index", name=op.f("uq_discs_disc_set_pk_index")),
    )
    with op.batch_alter_table("discs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_discs_disc_set_pk"), ["disc_set_pk"], unique=False)

    op.create_table(
        "disc_exams",
        sa.Column("disc_pk", sa.Integer(), nullable=False),
        sa.Column("exam_pk", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["disc_pk"], ["discs.id"], name=op.f("fk_disc_exams_disc_pk_discs"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["exam_pk"], ["exams.id"], name=op.f("fk_disc_exams_exam_pk_exams"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("disc_pk", "exam_pk", name=op.f("pk_disc_exams")),
    )
    op.create_table(
        "disc_set_exams",
        sa.Column("disc_set_pk", sa.Integer(), nullable=False),
        sa.Column("exam_pk", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["disc_set_pk"],
            ["disc_sets.id"],
            name=op.f("fk_disc_set_exams_disc_set_pk_disc_sets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["exam_pk"],
            ["exams.id"],
            name=op.f("fk_disc_set_exams_exam_pk_exams"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("disc_set_pk", "exam_pk", name=op.f("pk_disc_set_exams")),
    )


def downgrade() -> None:
    op.drop_table("disc_set_exams")
    op.drop_table("disc_exams")
    with op.batch_alter_table("discs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_discs_disc_set_pk"))

    op.drop_table("discs")
    with op.batch_alter_table("disc_sets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_disc_sets_trial_id"))

    op.drop_table("disc_sets")
