"""uploads.hash_state: the saved hash of an upload session's bytes so far (registry.content.resumable_hash), written
with its size, so that any worker or replica continues the hash instead of reading the bytes back from storage

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("uploads") as batch:
        batch.add_column(sa.Column("hash_state", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("uploads") as batch:
        batch.drop_column("hash_state")
