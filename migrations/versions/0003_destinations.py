"""destinations: per-trial SFTP, DICOM and DICOMweb delivery targets

Revision ID: 0003_destinations
Revises: 0002_imaging
Create Date: 2026-11-22 05:04:41.553467
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_destinations"
down_revision = "0002_imaging"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "destinations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trial_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "sftp", "dicom", "dicomweb", name="destinationkind", native_enum=False, length=20
            ),
            nullable=False,
        ),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("allow_identified", sa.Boolean(), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=128), nullable=False),
        sa.Column("auth", sa.String(length=10), nullable=False),
        sa.Column("private_key_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("password_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("host_key_type", sa.String(length=64), nullable=True),
        sa.Column("host_key_base64", sa.Text(), nullable=True),
        sa.Column("host_key_fingerprint", sa.String(length=100), nullable=True),
        sa.Column("pending_host_key_type", sa.String(length=64), nullable=True),
        sa.Column("pending_host_key_base64", sa.Text(), nullable=True),
        sa.Column("pending_host_key_fingerprint", sa.String(length=100), nullable=True),
        sa.Column("remote_path", sa.String(length=512), nullable=False),
        sa.Column("package_form", sa.String(length=10), nullable=False),
        sa.Column("marker", sa.String(length=64), nullable=False),
        sa.Column("called_aet", sa.String(length=16), nullable=False),
        sa.Column("calling_aet", sa.String(length=16), nullable=False),
        sa.Column("tls", sa.Boolean(), nullable=False),
        sa.Column("max_pdu", sa.Integer(), nullable=False),
        sa.Column("commitment", sa.Boolean(), nullable=False),
        sa.Column("base_url", sa.String(length=1024), nullable=False),
        sa.Column("auth_header_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("last_test_at", sa.DateTime(), nullable=True),
        sa.Column("last_test_outcome", sa.String(length=10), nullable=False),
        sa.Column("last_test_message", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["trial_id"],
            ["trials.id"],
            name=op.f("fk_destinations_trial_id_trials"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_destinations")),
        sa.UniqueConstraint("trial_id", "name", name=op.f("uq_destinations_trial_id_name")),
    )
    with op.batch_alter_table("destinations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_destinations_trial_id"), ["trial_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("destinations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_destinations_trial_id"))

    op.drop_table("destinations")
