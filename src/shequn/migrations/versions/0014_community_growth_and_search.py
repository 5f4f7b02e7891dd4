"""growth path as events arrive, copy search and message scanning

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04

The growth-path follower's cursor in each tenant's event feed and the events past it already
followed; full-text search over the copy library's segmented words: on SQLite an FTS5 table
kept in step with `copy_entries` by triggers (ranked by bm25), on PostgreSQL a GIN index over
`to_tsvector('simple', tokens)`.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shequn.db

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Named by shequn.community.cadence.service and by the schema test, which leaves the FTS5
# table and its shadow tables out of the comparison with the declared tables.
COPY_FTS = "copy_entries_fts"
COPY_TSV_INDEX = "ix_copy_entries_tokens_tsv"

_SQLITE_FTS = [
    # The entry is named by (tenant_id, copy_id): a rowid of copy_entries may change on VACUUM.
    f"""CREATE VIRTUAL TABLE {COPY_FTS} USING fts5(tokens, tenant_id UNINDEXED,
    copy_id UNINDEXED, tokenize = 'unicode61')""",
    f"""INSERT INTO {COPY_FTS} (tokens, tenant_id, copy_id)
    SELECT tokens, tenant_id, id FROM copy_entries""",
    f"""CREATE TRIGGER {COPY_FTS}_insert AFTER INSERT ON copy_entries BEGIN
        INSERT INTO {COPY_FTS} (tokens, tenant_id, copy_id)
        VALUES (new.tokens, new.tenant_id, new.id);
    END""",
    f"""CREATE TRIGGER {COPY_FTS}_delete AFTER DELETE ON copy_entries BEGIN
        DELETE FROM {COPY_FTS} WHERE tenant_id = old.tenant_id AND copy_id = old.id;
    END""",
    f"""CREATE TRIGGER {COPY_FTS}_update AFTER UPDATE OF tokens ON copy_entries BEGIN
        DELETE FROM {COPY_FTS} WHERE tenant_id = old.tenant_id AND copy_id = old.id;
        INSERT INTO {COPY_FTS} (tokens, tenant_id, copy_id)
        VALUES (new.tokens, new.tenant_id, new.id);
    END""",
]


def upgrade() -> None:
    op.create_table(
        "growth_path_cursors",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("after_event_id", sa.String(length=40), nullable=False),
        sa.Column("sweep_after", sa.String(length=40), nullable=True),
        sa.Column("updated_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_growth_path_cursors")),
    )
    op.create_table(
        "growth_path_followed",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("event_id", sa.String(length=40), nullable=False),
        sa.Column("followed_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "event_id", name=op.f("pk_growth_path_followed")),
    )
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for statement in _SQLITE_FTS:
            op.execute(statement)
    elif dialect == "postgresql":
        op.execute(
            f"CREATE INDEX {COPY_TSV_INDEX} ON copy_entries "
            "USING gin (to_tsvector('simple'::regconfig, tokens))"
        )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for name in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS {COPY_FTS}_{name}")
        op.execute(f"DROP TABLE IF EXISTS {COPY_FTS}")
    elif dialect == "postgresql":
        op.execute(f"DROP INDEX IF EXISTS {COPY_TSV_INDEX}")
    op.drop_table("growth_path_followed")
    op.drop_table("growth_path_cursors")
