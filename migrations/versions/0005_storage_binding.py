"""storage_binding: what storage the database indexes (driver, bucket, endpoint, root directory) and when
distribution's data in it was last imported; serve, import and gc refuse a database made for another storage

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "storage_binding",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("driver", sa.String(32), nullable=False),
        sa.Column("bucket", sa.String(255)),
        sa.Column("endpoint", sa.String(1024)),
        sa.Column("rootdirectory", sa.String(4096), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_storage_binding")),
    )


def downgrade() -> None:
    op.drop_table("storage_binding")
