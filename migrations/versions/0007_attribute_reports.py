"""attribute reports: what de-identification did to each attribute of each imported file

Revision ID: 0007_attribute_reports
Revises: 0006_import_indexes
Create Date: 2026-12-02 04:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_attribute_reports"
down_revision = "0006_import_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "attribute_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trial_id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("entries", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["trial_id"],
            ["trials.id"],
            name=op.f("fk_attribute_reports_trial_id_trials"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attribute_reports")),
        sa.UniqueConstraint(
            "trial_id", "sha256", name=op.f("uq_attribute_reports_trial_id_sha256")
        ),
    )
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attribute_report_pk", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_instances_attribute_report_pk_attribute_reports"),
            "attribute_reports",
            ["attribute_report_pk"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_instances_attribute_report_pk_attribute_reports"), type_="foreignkey"
        )
        batch_op.drop_column("attribute_report_pk")
    op.drop_table("attribute_reports")
