"""tiers (CONTRACT.md 7.4)

Programs gain ``tiers`` (JSON), ``tier_window`` and ``tier_grace_days`` (none, as in v1);
cards their tier, qualifying points with the window start they are counted from, and since
when they are below their tier; purchases the tier they were earned in and what its
multiplier added; ``tier_changes`` is each card's tier history.

Revision ID: b5d7f9a1c3e6
Revises: a4c6e8f0b2d4
Create Date: 2026-12-06 21:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "b5d7f9a1c3e6"
down_revision: str | None = "a4c6e8f0b2d4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.add_column(
        "loyalty_programs",
        sa.Column(
            "tiers",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
    )
    op.add_column(
        "loyalty_programs",
        sa.Column(
            "tier_window", sa.String(length=32), server_default="rolling_12_months", nullable=False
        ),
    )
    op.add_column(
        "loyalty_programs",
        sa.Column("tier_grace_days", sa.Integer(), server_default="0", nullable=False),
    )
    op.create_check_constraint(
        op.f("ck_loyalty_programs_tier_grace_non_negative"),
        "loyalty_programs",
        "tier_grace_days >= 0",
    )
    op.create_check_constraint(
        op.f("ck_loyalty_programs_tier_window_known"),
        "loyalty_programs",
        "tier_window IN ('rolling_12_months', 'calendar_year')",
    )
    op.add_column("loyalty_cards", sa.Column("tier", sa.String(length=64), nullable=True))
    op.add_column(
        "loyalty_cards",
        sa.Column("qualifying_points", sa.BigInteger(), server_default="0", nullable=False),
    )
    op.add_column(
        "loyalty_cards",
        sa.Column("qualifying_from", sa.DateTime(timezone=True), nullable=True),
    )
    op.add_column(
        "loyalty_cards",
        sa.Column("tier_below_since", sa.DateTime(timezone=True), nullable=True),
    )
    op.add_column("purchases", sa.Column("tier", sa.String(length=64), nullable=True))
    op.add_column(
        "purchases",
        sa.Column("tier_points", sa.BigInteger(), server_default="0", nullable=False),
    )
    op.create_table(
        "tier_changes",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("card_id", sa.BigInteger(), nullable=False),
        sa.Column("merchant_id", sa.BigInteger(), nullable=False),
        sa.Column("from_tier", sa.String(length=64), nullable=True),
        sa.Column("to_tier", sa.String(length=64), nullable=True),
        sa.Column("qualifying_points", sa.BigInteger(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source_event_id", sa.UUID(), nullable=True),
        sa.Column(
            "recorded_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tier_changes")),
    )
    op.create_index("ix_tier_changes_card", "tier_changes", ["card_id", "occurred_at"])
    op.create_index("ix_tier_changes_merchant", "tier_changes", ["merchant_id", "occurred_at"])


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_tier_changes_merchant", table_name="tier_changes")
    op.drop_index("ix_tier_changes_card", table_name="tier_changes")
    op.drop_table("tier_changes")
    op.drop_column("purchases", "tier_points")
    op.drop_column("purchases", "tier")
    for name in ("tier_below_since", "qualifying_from", "qualifying_points", "tier"):
        op.drop_column("loyalty_cards", name)
    op.drop_constraint(
        op.f("ck_loyalty_programs_tier_window_known"), "loyalty_programs", type_="check"
    )
    op.drop_constraint(
        op.f("ck_loyalty_programs_tier_grace_non_negative"), "loyalty_programs", type_="check"
    )
    for name in ("tier_grace_days", "tier_window", "tier"):
        op.drop_column("loyalty_programs", name if name != "tier" else "tiers")
