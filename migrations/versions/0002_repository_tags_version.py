"""repositories.tags_version: bumped by the database on every change to a repository's tags

Revision ID: 0002
Revises: 0001

Triggers on ``tags`` bump it in the statement that changes a tag (insert, retag, delete, and the deletes a manifest's
or a repository's delete cascades to), so whatever writes a tag, on whichever replica, moves the version in the same
transaction. A process may then keep a repository's tag list as long as the version it read it at is current.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_BUMP = "UPDATE repositories SET tags_version = tags_version + 1 WHERE id = {row}.repository_id"

SQLITE_TRIGGERS = {
    "tags_version_insert": f"AFTER INSERT ON tags BEGIN {_BUMP.format(row='NEW')}; END",
    "tags_version_update": (
        "AFTER UPDATE ON tags BEGIN UPDATE repositories SET tags_version = tags_version + 1"
        " WHERE id IN (OLD.repository_id, NEW.repository_id); END"
    ),
    "tags_version_delete": f"AFTER DELETE ON tags BEGIN {_BUMP.format(row='OLD')}; END",
}

POSTGRESQL_FUNCTION = f"""
CREATE FUNCTION bump_tags_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        {_BUMP.format(row="OLD")};
    END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.repository_id <> OLD.repository_id) THEN
        {_BUMP.format(row="NEW")};
    END IF;
    RETURN NULL;
END
$$
"""
POSTGRESQL_TRIGGER = (
    "CREATE TRIGGER tags_version AFTER INSERT OR UPDATE OR DELETE ON tags"
    " FOR EACH ROW EXECUTE FUNCTION bump_tags_version()"
)


def upgrade() -> None:
    op.add_column("repositories", sa.Column("tags_version", sa.BigInteger(), server_default="0", nullable=False))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(POSTGRESQL_FUNCTION)
        op.execute(POSTGRESQL_TRIGGER)
        return
    for name, body in SQLITE_TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name} {body}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER tags_version ON tags")
        op.execute("DROP FUNCTION bump_tags_version()")
    else:
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER {name}")
    # not batch mode: on SQLite it copies the table and drops the old one, and with foreign keys on that drop
    # cascades to every manifest and tag (SQLite has dropped columns itself since 3.35)
    op.drop_column("repositories", "tags_version")
