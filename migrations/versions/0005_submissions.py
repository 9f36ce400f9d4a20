"""submissions: per-file state, automation rules; DICOM TLS trust and commitment port

Revision ID: 0005_submissions
Revises: 0004_disc_sets
Create Date: 2026-12-01 06:47:12.351923
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_submissions"
down_revision = "0004_disc_sets"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "automation_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trial_id", sa.Integer(), nullable=False),
        sa.Column("timepoint_pk", sa.Integer(), nullable=True),
        sa.Column("destination_pk", sa.Integer(), nullable=False),
        sa.Column(
            "mode",
            sa.Enum("on_ready", "daily", name="rulemode", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("daily_at", sa.String(length=5), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("last_run_on", sa.Date(), nullable=True),
        sa.Column("created_by", sa.String(length=254), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["destination_pk"],
            ["destinations.id"],
            name=op.f("fk_automation_rules_destination_pk_destinations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["timepoint_pk"],
            ["timepoints.id"],
            name=op.f("fk_automation_rules_timepoint_pk_timepoints"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["trial_id"],
            ["trials.id"],
            name=op.f("fk_automation_rules_trial_id_trials"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_automation_rules")),
        sa.UniqueConstraint(
            "trial_id",
            "timepoint_pk",
            "destination_pk",
            name=op.f("uq_automation_rules_trial_id_timepoint_pk_destination_pk"),
        ),
    )
    with op.batch_alter_table("automation_rules", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_automation_rules_trial_id"), ["trial_id"], unique=False
        )

    op.create_table(
        "submissions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trial_id", sa.Integer(), nullable=False),
        sa.Column("destination_pk", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("scope", sa.String(length=20), nullable=False),
        sa.Column("scope_label", sa.String(length=200), nullable=False),
        sa.Column("exam_pks", sa.JSON(), nullable=False),
        sa.Column("disc_set_pk", sa.Integer(), nullable=True),
        sa.Column("trigger", sa.String(length=254), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column(
            "state",
            sa.Enum(
                "queued",
                "running",
                "done",
                "failed",
                "cancelled",
                name="submissionstate",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("package_form", sa.String(length=10), nullable=False),
        sa.Column("files_total", sa.Integer(), nullable=False),
        sa.Column("files_done", sa.Integer(), nullable=False),
        sa.Column("bytes_total", sa.BigInteger(), nullable=False),
        sa.Column("bytes_done", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("not_before", sa.DateTime(), nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("runner", sa.String(length=64), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=True),
        sa.Column("attempt_started_at", sa.DateTime(), nullable=True),
        sa.Column("attempt_bytes", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("receipt", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["destination_pk"],
            ["destinations.id"],
            name=op.f("fk_submissions_destination_pk_destinations"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["disc_set_pk"],
            ["disc_sets.id"],
            name=op.f("fk_submissions_disc_set_pk_disc_sets"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_submissions_job_id_jobs"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["trial_id"],
            ["trials.id"],
            name=op.f("fk_submissions_trial_id_trials"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_submissions_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_submissions")),
    )
    with op.batch_alter_table("submissions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_submissions_destination_pk"), ["destination_pk"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_submissions_state"), ["state"], unique=False)
        batch_op.create_index(batch_op.f("ix_submissions_trial_id"), ["trial_id"], unique=False)

    op.create_table(
        "submission_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("submission_pk", sa.Integer(), nullable=False),
        sa.Column("exam_pk", sa.Integer(), nullable=True),
        sa.Column("group", sa.String(length=512), nullable=False),
        sa.Column("path", sa.String(length=512), nullable=False),
        sa.Column("remote", sa.String(length=512), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column(
            "state",
            sa.Enum("pending", "sent", "failed", name="filestate", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["exam_pk"],
            ["exams.id"],
            name=op.f("fk_submission_files_exam_pk_exams"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["submission_pk"],
            ["submissions.id"],
            name=op.f("fk_submission_files_submission_pk_submissions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_submission_files")),
        sa.UniqueConstraint(
            "submission_pk",
            "group",
            "remote",
            name=op.f("uq_submission_files_submission_pk_group_remote"),
        ),
    )
    with op.batch_alter_table("submission_files", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_submission_files_submission_pk"), ["submission_pk"], unique=False
        )

    with op.batch_alter_table("destinations", schema=None) as batch_op:
        # Existing destinations get the defaults: system CAs, report on the same association.
        batch_op.add_column(
            sa.Column("tls_ca_pem", sa.Text(), nullable=False, server_default=sa.text("''"))
        )
        batch_op.add_column(
            sa.Column("commitment_port", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("rate_limit_kbps", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("destinations", schema=None) as batch_op:
        batch_op.drop_column("rate_limit_kbps")
        batch_op.drop_column("commitment_port")
        batch_op.drop_column("tls_ca_pem")

    with op.batch_alter_table("submission_files", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_submission_files_submission_pk"))

    op.drop_table("submission_files")
    with op.batch_alter_table("submissions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_submissions_trial_id"))
        batch_op.drop_index(batch_op.f("ix_submissions_state"))
        batch_op.drop_index(batch_op.f("ix_submissions_destination_pk"))

    op.drop_table("submissions")
    with op.batch_alter_table("automation_rules", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_automation_rules_trial_id"))

    op.drop_table("automation_rules")
