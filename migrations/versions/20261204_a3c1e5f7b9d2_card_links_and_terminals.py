"""card page links apart from QR tokens; paired terminal devices

Each card gets a ``link_token``, the secret of its customer page link, which an admin can
rotate without touching the QR code printed on the card and its wallet passes. Terminals of
a store are paired devices (``terminal_devices``) holding a revocable token.

Revision ID: a3c1e5f7b9d2
Revises: f62961b25c5f
Create Date: 2026-12-04 18:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a3c1e5f7b9d2"
down_revision: str | None = "f62961b25c5f"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LINK_TOKEN_DEFAULT = "replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '')"  # noqa: S105 - SQL, not a secret


def upgrade() -> None:
    # The volatile default gives every existing card its own token while the column is added.
    op.add_column(
        "loyalty_cards",
        sa.Column(
            "link_token",
            sa.String(length=64),
            server_default=sa.text(_LINK_TOKEN_DEFAULT),
            nullable=False,
        ),
    )
    op.create_index("uq_loyalty_cards_link_token", "loyalty_cards", ["link_token"], unique=True)
    op.create_table(
        "terminal_devices",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("store_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("pairing_code_hash", sa.String(length=64), nullable=True),
        sa.Column("pairing_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("token_hash", sa.String(length=64), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("paired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_terminal_devices_store_id_stores")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_terminal_devices")),
    )
    op.create_index(
        op.f("ix_terminal_devices_store_id"), "terminal_devices", ["store_id"], unique=False
    )
    op.create_index(
        "uq_terminal_devices_token_hash", "terminal_devices", ["token_hash"], unique=True
    )
    op.create_index(
        "uq_terminal_devices_pairing_code_hash",
        "terminal_devices",
        ["pairing_code_hash"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_table("terminal_devices")
    op.drop_index("uq_loyalty_cards_link_token", table_name="loyalty_cards")
    op.drop_column("loyalty_cards", "link_token")
