"""outbox rows packed per shard and topic

A transaction's outputs become one row per (shard, topic), already encoded, instead of one row
per message (``domain.engine.outbox``). The shard is computed by the writer (the first byte of
the key's MD5), no longer by the database. Unsent messages are carried over in their order;
sent ones (kept an hour for inspection) are not.

Revision ID: b7d2e4f6a8c1
Revises: a3c1e5f7b9d2
Create Date: 2026-12-05 08:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b7d2e4f6a8c1"
down_revision: str | None = "a3c1e5f7b9d2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# domain.engine.outbox.OUTBOX_SHARDS (then in domain.models) when this revision was written, and engine.outbox.shard_sql.
_SHARDS = 16


def _rename_old() -> None:
    op.execute("ALTER TABLE outbox RENAME TO outbox_old")
    op.execute("ALTER TABLE outbox_old RENAME CONSTRAINT pk_outbox TO pk_outbox_old")
    op.execute("ALTER INDEX ix_outbox_unsent RENAME TO ix_outbox_old_unsent")
    op.execute("ALTER SEQUENCE outbox_id_seq RENAME TO outbox_old_id_seq")


def upgrade() -> None:
    _rename_old()
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("shard", sa.SmallInteger(), nullable=False),
        sa.Column("topic", sa.String(length=100), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("keys", sa.LargeBinary(), nullable=False),
        sa.Column("payloads", sa.LargeBinary(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    )
    op.create_index(
        "ix_outbox_unsent",
        "outbox",
        ["shard", "id"],
        unique=False,
        postgresql_where=sa.text("sent_at IS NULL"),
    )
    # A row's packed messages are tens of kB, so they are TOASTed; pglz compression (the
    # default) cost 11 us of PostgreSQL CPU per message, lz4 2.7, none at all 3.9 (measured
    # with bench.profile_engine). lz4 where the server has it, else no compression.
    op.execute(
        """
        DO $$
        BEGIN
            IF EXISTS (SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression'
                       AND 'lz4' = ANY(enumvals)) THEN
                ALTER TABLE outbox ALTER COLUMN keys SET COMPRESSION lz4,
                                   ALTER COLUMN payloads SET COMPRESSION lz4;
            ELSE
                ALTER TABLE outbox ALTER COLUMN keys SET STORAGE EXTERNAL,
                                   ALTER COLUMN payloads SET STORAGE EXTERNAL;
            END IF;
        END $$
        """
    )
    # jsonb's text form never holds a raw newline, whatever the json column kept.
    op.execute(
        """
        INSERT INTO outbox (shard, topic, count, keys, payloads, created_at)
        SELECT s, topic, count(*),
               convert_to(json_agg(key ORDER BY id)::text, 'UTF8'),
               convert_to(string_agg(payload::jsonb::text, E'\\n' ORDER BY id), 'UTF8'),
               min(created_at)
        FROM (SELECT *, get_byte(decode(md5(key), 'hex'), 0) % 16 AS s
              FROM outbox_old WHERE sent_at IS NULL) AS unsent
        GROUP BY s, topic
        ORDER BY min(id)
        """
    )
    op.drop_table("outbox_old")


def downgrade() -> None:
    _rename_old()
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("topic", sa.String(length=100), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column(
            "shard",
            sa.SmallInteger(),
            sa.Computed(f"abs(hashtext(key) % {_SHARDS})", persisted=True),
            nullable=False,
        ),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    )
    op.create_index(
        "ix_outbox_unsent",
        "outbox",
        ["shard", "id"],
        unique=False,
        postgresql_where=sa.text("sent_at IS NULL"),
    )
    op.execute(
        """
        INSERT INTO outbox (topic, key, payload, created_at)
        SELECT o.topic, k.key, p.payload::json, o.created_at
        FROM outbox_old AS o,
             LATERAL json_array_elements_text(convert_from(o.keys, 'UTF8')::json)
                 WITH ORDINALITY AS k(key, n),
             LATERAL unnest(string_to_array(convert_from(o.payloads, 'UTF8'), E'\\n'))
                 WITH ORDINALITY AS p(payload, n)
        WHERE o.sent_at IS NULL AND k.n = p.n
        ORDER BY o.id, k.n
        """
    )
    op.drop_table("outbox_old")
