"""unique instance paths; where a quarantined file was among its import's inputs

Two imports of one trial at once could pick the same output path for two files, and the second
file written replaced the first: `instances.path` is now unique, so the second row is refused
and that import takes another name. A registry where this happened holds several rows of one
path (one of them with the file's content): the rows after the first get a path of their own
(``..._dup<id>.dcm``, with no file), so that the loss shows as a missing output rather than as
the same file twice; importing the exam again, or a new time point, writes it from its original.
The downgrade keeps those paths.

Quarantined files get their item (its place among the import's inputs) and, for a zip entry,
its place in the zip's directory: never a name.

Revision ID: 0008_unique_paths_positions
Revises: 0007_attribute_reports
Create Date: 2026-12-02 06:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_unique_paths_positions"
down_revision = "0007_attribute_reports"
branch_labels = None
depends_on = None

_instances = sa.table("instances", sa.column("id", sa.Integer()), sa.column("path", sa.String()))


def _separate_shared_paths() -> None:
    bind = op.get_bind()
    shared = bind.execute(
        sa.select(_instances.c.path)
        .group_by(_instances.c.path)
        .having(sa.func.count(_instances.c.id) > 1)
    ).scalars()
    for path in list(shared):
        ids = bind.execute(
            sa.select(_instances.c.id).where(_instances.c.path == path).order_by(_instances.c.id)
        ).scalars()
        for pk in list(ids)[1:]:
            bind.execute(
                sa.update(_instances)
                .where(_instances.c.id == pk)
                .values(path=f"{path.removesuffix('.dcm')}_dup{pk}.dcm")
            )


def upgrade() -> None:
    _separate_shared_paths()
    op.drop_index("ix_instances_path", table_name="instances")
    op.create_index("ix_instances_path", "instances", ["path"], unique=True)
    with op.batch_alter_table("quarantined_files", schema=None) as batch_op:
        batch_op.add_column(sa.Column("item", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("zip_entry", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("quarantined_files", schema=None) as batch_op:
        batch_op.drop_column("zip_entry")
        batch_op.drop_column("item")
    op.drop_index("ix_instances_path", table_name="instances")
    op.create_index("ix_instances_path", "instances", ["path"])
