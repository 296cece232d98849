"""gc_last_run: the collector's last run, whichever worker, replica or command made it, for the UI's garbage
collection page (one row)

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gc_last_run",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("runner", sa.String(255), nullable=False),
        sa.Column("manifests", sa.Integer(), nullable=False),
        sa.Column("blobs", sa.Integer(), nullable=False),
        sa.Column("bytes_freed", sa.BigInteger(), nullable=False),
        sa.Column("links_removed", sa.Integer(), nullable=False),
        sa.Column("reviews", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gc_last_run")),
    )


def downgrade() -> None:
    op.drop_table("gc_last_run")
