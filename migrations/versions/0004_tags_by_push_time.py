"""tags (repository_id, updated_at): retention reads a repository's tags newest first without sorting them all

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_tags_repository_id_updated_at", "tags", ["repository_id", "updated_at"])


def downgrade() -> None:
    op.drop_index("ix_tags_repository_id_updated_at", table_name="tags")
