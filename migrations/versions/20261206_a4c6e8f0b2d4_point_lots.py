"""pending points, point lots and expiry policies (CONTRACT.md 7.2, 7.3, 7.5)

Programs gain ``pending_days``, ``expiry_policy`` and ``expiry_reminder_days`` (defaults: v1
behaviour); every credit of points becomes a lot (``point_lots``) and ledger entries say
which lots they made or spent (``lots``) and how they moved pending points
(``pending_delta``). Cards keep their pending points and a summary of their dated lots.
``expiry_reminders`` sends ``points.expiring`` once per card and date.

Existing balances become one lot per card, kept by inactivity as they were.

Revision ID: a4c6e8f0b2d4
Revises: f1b3d5e7a9c2
Create Date: 2026-12-06 21:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "a4c6e8f0b2d4"
down_revision: str | None = "f1b3d5e7a9c2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD_TYPES = (
    "stamp_earned",
    "stamp_redeemed",
    "stamp_voided",
    "stamp_adjusted",
    "points_earned",
    "points_redeemed",
    "points_voided",
    "points_expired",
    "points_adjusted",
    "welcome_bonus",
    "card_created",
    "card_deactivated",
    "card_reactivated",
)


def _types_check(types: Sequence[str]) -> str:
    return "entry_type IN (" + ", ".join(f"'{t}'" for t in types) + ")"


# The statistics count pending points as issued, or voided, when and where they were earned:
# for those entries the pending part joins the spendable one, in the trigger and in the
# rebuild alike (their text is edited in place). The net stays the spendable balance's.
_SPENDABLE = (
    "sum(n.points_delta) FILTER (WHERE n.entry_type = ''points_earned'')",
    "sum(n.points_delta) FILTER (WHERE n.entry_type = ''points_voided'')",
)
_WITH_PENDING = (
    "sum(n.points_delta + n.pending_delta) FILTER (WHERE n.entry_type = ''points_earned'')",
    "sum(n.points_delta + n.pending_delta) FILTER (WHERE n.entry_type = ''points_voided'')",
)


def _count_pending(old: Sequence[str], new: Sequence[str]) -> None:
    for function in ("stats_ledger_inserted()", "stats_rebuild(bigint)"):
        edits = " ".join(
            f"""
                IF position('{a}' IN body) = 0 THEN
                    RAISE EXCEPTION 'statistics function {function} not as expected';
                END IF;
                body := replace(body, '{a}', '{b}');"""
            for a, b in zip(old, new, strict=True)
        )
        op.execute(
            f"""
            DO $$
            DECLARE body text := pg_get_functiondef('{function}'::regprocedure);
            BEGIN {edits}
                EXECUTE body;
            END $$
            """
        )


def upgrade() -> None:
    """Apply this revision."""
    op.add_column(
        "loyalty_programs",
        sa.Column("pending_days", sa.Integer(), server_default="0", nullable=False),
    )
    op.add_column(
        "loyalty_programs",
        sa.Column(
            "expiry_policy",
            sa.Enum(
                "inactivity",
                "rolling",
                "calendar_year",
                name="expiry_policy",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            server_default="inactivity",
            nullable=False,
        ),
    )
    op.add_column(
        "loyalty_programs",
        sa.Column("expiry_reminder_days", sa.Integer(), server_default="30", nullable=False),
    )
    op.create_check_constraint(
        op.f("ck_loyalty_programs_pending_days_non_negative"),
        "loyalty_programs",
        "pending_days >= 0",
    )
    op.create_check_constraint(
        op.f("ck_loyalty_programs_expiry_reminder_non_negative"),
        "loyalty_programs",
        "expiry_reminder_days >= 0",
    )
    for name in ("points_pending", "dated_points", "next_expiry_points"):
        op.add_column(
            "loyalty_cards", sa.Column(name, sa.BigInteger(), server_default="0", nullable=False)
        )
    op.add_column(
        "loyalty_cards", sa.Column("lot_count", sa.Integer(), server_default="0", nullable=False)
    )
    op.add_column(
        "loyalty_cards", sa.Column("next_expiry_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_check_constraint(
        op.f("ck_loyalty_cards_points_pending_non_negative"),
        "loyalty_cards",
        "points_pending >= 0",
    )
    op.add_column(
        "ledger_entries",
        sa.Column("pending_delta", sa.BigInteger(), server_default="0", nullable=False),
    )
    op.add_column(
        "ledger_entries",
        sa.Column("lots", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )
    op.drop_constraint(op.f("ck_ledger_entries_ledger_type"), "ledger_entries", type_="check")
    op.create_check_constraint(
        op.f("ck_ledger_entries_ledger_type"),
        "ledger_entries",
        _types_check((*_OLD_TYPES, "points_released")),
    )
    op.create_table(
        "point_lots",
        sa.Column("card_id", sa.BigInteger(), nullable=False),
        sa.Column("lot_no", sa.Integer(), nullable=False),
        sa.Column("merchant_id", sa.BigInteger(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("remaining", sa.BigInteger(), nullable=False),
        sa.Column("earned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("releases_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("pending", sa.Boolean(), nullable=False),
        sa.Column("source_event_id", sa.UUID(), nullable=True),
        sa.CheckConstraint(
            "remaining >= 0 AND remaining <= points", name=op.f("ck_point_lots_remaining_range")
        ),
        sa.PrimaryKeyConstraint("card_id", "lot_no", name=op.f("pk_point_lots")),
    )
    op.create_index(
        "ix_point_lots_expiring",
        "point_lots",
        ["expires_at"],
        unique=False,
        postgresql_where=sa.text("remaining > 0 AND expires_at IS NOT NULL"),
    )
    op.create_index(
        "ix_point_lots_pending",
        "point_lots",
        ["releases_at"],
        unique=False,
        postgresql_where=sa.text("pending"),
    )
    op.create_table(
        "expiry_reminders",
        sa.Column("card_id", sa.BigInteger(), nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column(
            "sent_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.PrimaryKeyConstraint("card_id", "expires_on", name=op.f("pk_expiry_reminders")),
    )
    # Every balance held today is one lot, kept by inactivity as before.
    op.execute(
        """
        INSERT INTO point_lots (card_id, lot_no, merchant_id, points, remaining, earned_at,
                                pending)
        SELECT id, 1, merchant_id, points_balance, points_balance,
               coalesce(last_points_at, created_at), false
        FROM loyalty_cards WHERE points_balance > 0
        """
    )
    op.execute("UPDATE loyalty_cards SET lot_count = 1 WHERE points_balance > 0")
    _count_pending(_SPENDABLE, _WITH_PENDING)


def downgrade() -> None:
    """Revert this revision (lots and pending points are lost)."""
    _count_pending(_WITH_PENDING, _SPENDABLE)
    op.drop_table("expiry_reminders")
    op.drop_index("ix_point_lots_pending", table_name="point_lots")
    op.drop_index("ix_point_lots_expiring", table_name="point_lots")
    op.drop_table("point_lots")
    op.drop_constraint(op.f("ck_ledger_entries_ledger_type"), "ledger_entries", type_="check")
    # NOT VALID: the ledger is append-only, released entries stay (and new ones are refused).
    op.execute(
        "ALTER TABLE ledger_entries ADD CONSTRAINT ck_ledger_entries_ledger_type "
        f"CHECK ({_types_check(_OLD_TYPES)}) NOT VALID"
    )
    op.drop_column("ledger_entries", "lots")
    op.drop_column("ledger_entries", "pending_delta")
    op.drop_constraint(
        op.f("ck_loyalty_cards_points_pending_non_negative"), "loyalty_cards", type_="check"
    )
    for name in ("next_expiry_at", "lot_count", "next_expiry_points", "dated_points"):
        op.drop_column("loyalty_cards", name)
    op.drop_column("loyalty_cards", "points_pending")
    op.drop_constraint(
        op.f("ck_loyalty_programs_expiry_reminder_non_negative"),
        "loyalty_programs",
        type_="check",
    )
    op.drop_constraint(
        op.f("ck_loyalty_programs_pending_days_non_negative"), "loyalty_programs", type_="check"
    )
    op.drop_column("loyalty_programs", "expiry_reminder_days")
    op.drop_column("loyalty_programs", "expiry_policy")
    op.drop_column("loyalty_programs", "pending_days")
