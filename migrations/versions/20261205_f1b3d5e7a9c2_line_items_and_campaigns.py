"""line items and campaigns (CONTRACT.md 7.1)

Programs gain ``non_earning_categories``; ``campaigns`` hold a program's earning rules with
the points they awarded so far (their budget's used part), ``campaign_card_awards`` how many
purchases of a card each rewarded; a purchase records what its lines and bonuses earned
(``purchases.earnings``), so a later return voids exactly that.

Revision ID: f1b3d5e7a9c2
Revises: e5a7c9b1d3f2
Create Date: 2026-12-05 11:54:16.909858
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "f1b3d5e7a9c2"
down_revision: str | None = "e5a7c9b1d3f2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "campaign_card_awards",
        sa.Column("campaign_id", sa.BigInteger(), nullable=False),
        sa.Column("card_id", sa.BigInteger(), nullable=False),
        sa.Column("awards", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "card_id", name=op.f("pk_campaign_card_awards")),
    )
    op.create_table(
        "campaigns",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("program_id", sa.BigInteger(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "draft",
                "active",
                "paused",
                "ended",
                name="campaign_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "days",
            postgresql.ARRAY(sa.Text()),
            server_default=sa.text("'{}'::text[]"),
            nullable=False,
        ),
        sa.Column("hours", sa.String(length=11), nullable=True),
        sa.Column(
            "skus",
            postgresql.ARRAY(sa.Text()),
            server_default=sa.text("'{}'::text[]"),
            nullable=False,
        ),
        sa.Column(
            "categories",
            postgresql.ARRAY(sa.Text()),
            server_default=sa.text("'{}'::text[]"),
            nullable=False,
        ),
        sa.Column("multiplier", sa.Numeric(precision=8, scale=3), nullable=False),
        sa.Column("bonus_points", sa.BigInteger(), nullable=False),
        sa.Column("min_basket_cents", sa.BigInteger(), nullable=False),
        sa.Column("budget_points", sa.BigInteger(), nullable=True),
        sa.Column("max_awards_per_card", sa.Integer(), nullable=True),
        sa.Column("points_awarded", sa.BigInteger(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_by", sa.String(length=100), nullable=True),
        sa.Column("deletion_id", sa.UUID(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("bonus_points >= 0", name=op.f("ck_campaigns_bonus_non_negative")),
        sa.CheckConstraint(
            "budget_points IS NULL OR budget_points >= 1", name=op.f("ck_campaigns_budget_positive")
        ),
        sa.CheckConstraint(
            "max_awards_per_card IS NULL OR max_awards_per_card >= 1",
            name=op.f("ck_campaigns_max_awards_positive"),
        ),
        sa.CheckConstraint(
            "min_basket_cents >= 0", name=op.f("ck_campaigns_min_basket_non_negative")
        ),
        sa.CheckConstraint("multiplier > 0", name=op.f("ck_campaigns_multiplier_positive")),
        sa.CheckConstraint(
            "points_awarded >= 0 AND (budget_points IS NULL OR points_awarded <= budget_points)",
            name=op.f("ck_campaigns_within_budget"),
        ),
        sa.CheckConstraint(
            "starts_at IS NULL OR ends_at IS NULL OR starts_at < ends_at",
            name=op.f("ck_campaigns_window_ordered"),
        ),
        sa.ForeignKeyConstraint(
            ["program_id"],
            ["loyalty_programs.id"],
            name=op.f("fk_campaigns_program_id_loyalty_programs"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
    )
    op.create_index(op.f("ix_campaigns_program_id"), "campaigns", ["program_id"], unique=False)
    op.create_index(
        "uq_campaigns_program_code_live",
        "campaigns",
        ["program_id", "code"],
        unique=True,
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.add_column(
        "loyalty_programs",
        sa.Column(
            "non_earning_categories",
            postgresql.ARRAY(sa.Text()),
            server_default=sa.text("'{}'::text[]"),
            nullable=False,
        ),
    )
    op.add_column(
        "purchases", sa.Column("earnings", postgresql.JSONB(astext_type=sa.Text()), nullable=True)
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_column("purchases", "earnings")
    op.drop_column("loyalty_programs", "non_earning_categories")
    op.drop_index(
        "uq_campaigns_program_code_live",
        table_name="campaigns",
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.drop_index(op.f("ix_campaigns_program_id"), table_name="campaigns")
    op.drop_table("campaigns")
    op.drop_table("campaign_card_awards")
