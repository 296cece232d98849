"""The garbage collector's tables: blob leases, review queues and blob deletion tombstones

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _review_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("review_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("claimed_by", sa.String(36)),
    ]


def upgrade() -> None:
    op.add_column("blobs", sa.Column("protected_until", sa.DateTime(timezone=True)))
    op.create_table(
        "gc_blob_reviews",
        sa.Column("digest", sa.String(200), nullable=False),
        *_review_columns(),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_gc_blob_reviews")),
    )
    op.create_index(op.f("ix_gc_blob_reviews_review_after"), "gc_blob_reviews", ["review_after"])
    op.create_table(
        "gc_manifest_reviews",
        sa.Column("manifest_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        *_review_columns(),
        sa.ForeignKeyConstraint(
            ["manifest_id"],
            ["manifests.id"],
            name=op.f("fk_gc_manifest_reviews_manifest_id_manifests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("manifest_id", name=op.f("pk_gc_manifest_reviews")),
    )
    op.create_index(op.f("ix_gc_manifest_reviews_review_after"), "gc_manifest_reviews", ["review_after"])
    op.create_table(
        "gc_blob_deletions",
        sa.Column("digest", sa.String(200), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_gc_blob_deletions")),
    )


def downgrade() -> None:
    op.drop_table("gc_blob_deletions")
    op.drop_index(op.f("ix_gc_manifest_reviews_review_after"), table_name="gc_manifest_reviews")
    op.drop_table("gc_manifest_reviews")
    op.drop_index(op.f("ix_gc_blob_reviews_review_after"), table_name="gc_blob_reviews")
    op.drop_table("gc_blob_reviews")
    op.drop_column("blobs", "protected_until")  # SQLite 3.35 and later drop a plain column in place
