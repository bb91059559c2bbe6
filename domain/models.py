"""The data model: SQLAlchemy 2 typed declarative classes, one table each.

Balances on a card are a projection of the immutable ledger; the inbox and the outbox make
the Kafka pipeline exactly-once in effect (DESIGN.md). Soft-deletable tables carry
``deleted_at``/``deleted_by``/``deletion_id`` (see ``domain.soft_delete``), and their unique
keys are partial indexes over live rows, so a code or an email can be reused after deletion.

One module on purpose (about 600 lines): the whole schema in one place, as Alembic's
autogenerate and a reader comparing it with the migrations see it.
"""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from core.enums import CampaignStatus, ExpiryPolicy, LedgerType, ProgramType, UserRole

__all__ = ["Base", "LedgerType", "ProgramType", "UserRole"]

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

LIVE = text("deleted_at IS NULL")
LINK_TOKEN_DEFAULT = text("replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '')")


class Base(DeclarativeBase):
    """Declarative base with the project's constraint naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: DateTime(timezone=True)}


class SoftDeleteMixin:
    """Rows that are hidden, not removed, when deleted; see ``domain.soft_delete``."""

    deleted_at: Mapped[datetime | None] = mapped_column(default=None)
    deleted_by: Mapped[str | None] = mapped_column(String(100), default=None)
    # Every row hidden by one soft_delete call (the row and its cascade) shares this id, so a
    # restore brings back exactly what that deletion removed.
    deletion_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), default=None)


class TimestampMixin:
    """Creation and last-update times, set by the database."""

    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


def _enum(cls: type[enum.StrEnum], name: str) -> Enum:
    # Stored as text with a CHECK, not a PostgreSQL ENUM type: adding a value later is a
    # plain migration instead of an ALTER TYPE outside a transaction.
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=32,
        values_callable=lambda e: [m.value for m in e],
    )


class Merchant(SoftDeleteMixin, TimestampMixin, Base):
    """A business running one loyalty program across its stores."""

    __tablename__ = "merchants"
    __table_args__ = (Index("uq_merchants_code_live", "code", unique=True, postgresql_where=LIVE),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Luxembourg")
    allow_self_enrollment: Mapped[bool] = mapped_column(Boolean, default=True)
    allow_cross_location_redemption: Mapped[bool] = mapped_column(Boolean, default=True)


class Store(SoftDeleteMixin, TimestampMixin, Base):
    """A shop of a merchant. Events name their store by its code, unique among live stores."""

    __tablename__ = "stores"
    __table_args__ = (
        Index("uq_stores_code_live", "code", unique=True, postgresql_where=LIVE),
        CheckConstraint("pin_failed_attempts >= 0", name="pin_failed_attempts_non_negative"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    # The PIN lockout is per store: a wrong PIN names no staff member, so the count of wrong
    # tries belongs to the store's terminal, not to one PIN.
    pin_failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    pin_locked_until: Mapped[datetime | None] = mapped_column(default=None)


class Customer(SoftDeleteMixin, TimestampMixin, Base):
    """A merchant's customer; the same person at two merchants is two customers."""

    __tablename__ = "customers"
    __table_args__ = (
        Index(
            "uq_customers_merchant_email_live",
            "merchant_id",
            "email",
            unique=True,
            postgresql_where=text("deleted_at IS NULL AND email IS NOT NULL"),
        ),
        Index(
            "uq_customers_merchant_ref_live",
            "merchant_id",
            "customer_ref",
            unique=True,
            postgresql_where=text("deleted_at IS NULL AND customer_ref IS NOT NULL"),
        ),
        CheckConstraint("email = lower(email)", name="email_lower_case"),
        CheckConstraint("email IS NOT NULL OR customer_ref IS NOT NULL", name="identified"),
        # The wallet sync looks for erased customers' push tokens still to replace; the few
        # erased rows are found without a scan of every customer.
        Index("ix_customers_erased", "erased_at", postgresql_where=text("erased_at IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    email: Mapped[str | None] = mapped_column(String(320))
    customer_ref: Mapped[str | None] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(40))
    first_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str | None] = mapped_column(String(100))
    locale: Mapped[str] = mapped_column(String(5), default="en")
    # When the customer's personal data was replaced by a pseudonym (CONTRACT.md 7.6,
    # ``domain.customer_data``): set once, never cleared, kept through soft delete and restore.
    erased_at: Mapped[datetime | None] = mapped_column(default=None)


class LoyaltyProgram(SoftDeleteMixin, TimestampMixin, Base):
    """The rules of a merchant's program: one live program per merchant."""

    __tablename__ = "loyalty_programs"
    __table_args__ = (
        Index(
            "uq_loyalty_programs_merchant_live", "merchant_id", unique=True, postgresql_where=LIVE
        ),
        CheckConstraint("stamps_target >= 1", name="stamps_target_positive"),
        CheckConstraint("points_per_euro >= 0", name="points_per_euro_non_negative"),
        CheckConstraint("minimum_purchase_cents >= 0", name="minimum_purchase_non_negative"),
        CheckConstraint("cooldown_minutes >= 0", name="cooldown_non_negative"),
        CheckConstraint(
            "max_daily_stamps IS NULL OR max_daily_stamps >= 1", name="max_daily_stamps_positive"
        ),
        CheckConstraint(
            "points_expiration_days IS NULL OR points_expiration_days >= 1",
            name="points_expiration_positive",
        ),
        CheckConstraint("welcome_bonus_points >= 0", name="welcome_bonus_non_negative"),
        CheckConstraint("minimum_redemption_points >= 0", name="minimum_redemption_non_negative"),
        CheckConstraint("pin_max_attempts >= 1", name="pin_max_attempts_positive"),
        CheckConstraint("pending_days >= 0", name="pending_days_non_negative"),
        CheckConstraint("expiry_reminder_days >= 0", name="expiry_reminder_non_negative"),
        CheckConstraint("tier_grace_days >= 0", name="tier_grace_non_negative"),
        CheckConstraint(
            "tier_window IN ('rolling_12_months', 'calendar_year')", name="tier_window_known"
        ),
        CheckConstraint("pin_lockout_minutes >= 1", name="pin_lockout_positive"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="Loyalty card")
    type: Mapped[ProgramType] = mapped_column(_enum(ProgramType, "program_type"))
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    stamps_target: Mapped[int] = mapped_column(Integer, default=10)
    stamps_reward_description: Mapped[str | None] = mapped_column(String(200))
    stamps_reward_value_cents: Mapped[int] = mapped_column(Integer, default=0)
    points_per_euro: Mapped[int] = mapped_column(Integer, default=0)
    points_expiration_days: Mapped[int | None] = mapped_column(Integer)
    welcome_bonus_points: Mapped[int] = mapped_column(Integer, default=0)
    minimum_redemption_points: Mapped[int] = mapped_column(Integer, default=0)
    minimum_purchase_cents: Mapped[int] = mapped_column(Integer, default=0)
    cooldown_minutes: Mapped[int] = mapped_column(Integer, default=0)
    max_daily_stamps: Mapped[int | None] = mapped_column(Integer)
    require_staff_pin: Mapped[bool] = mapped_column(Boolean, default=False)
    pin_max_attempts: Mapped[int] = mapped_column(Integer, default=5)
    pin_lockout_minutes: Mapped[int] = mapped_column(Integer, default=30)
    point_value_cents: Mapped[Decimal] = mapped_column(Numeric(12, 4), default=Decimal("1"))
    card_name: Mapped[str | None] = mapped_column(String(200))
    background_color: Mapped[str] = mapped_column(String(7), default="#1F2937")
    foreground_color: Mapped[str] = mapped_column(String(7), default="#FFFFFF")
    label_color: Mapped[str] = mapped_column(String(7), default="#D1D5DB")
    logo_url: Mapped[str | None] = mapped_column(String(500))
    hero_image_url: Mapped[str | None] = mapped_column(String(500))
    terms_url: Mapped[str | None] = mapped_column(String(500))
    privacy_url: Mapped[str | None] = mapped_column(String(500))
    apple_pass_type_id: Mapped[str | None] = mapped_column(String(200))
    google_class_id: Mapped[str | None] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    activated_at: Mapped[datetime | None] = mapped_column(default=None)
    # Lines of these categories (gift cards, deposits) earn nothing (CONTRACT.md 7.1).
    non_earning_categories: Mapped[list[str]] = mapped_column(
        ARRAY(Text), default=list, server_default=text("'{}'::text[]")
    )
    # CONTRACT.md 7.2 and 7.3; a change applies to the points earned afterwards (each lot
    # keeps the expiry it was given when earned).
    pending_days: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    expiry_policy: Mapped[ExpiryPolicy] = mapped_column(
        _enum(ExpiryPolicy, "expiry_policy"),
        default=ExpiryPolicy.INACTIVITY,
        server_default=ExpiryPolicy.INACTIVITY.value,
    )
    expiry_reminder_days: Mapped[int] = mapped_column(Integer, default=30, server_default="30")
    # CONTRACT.md 7.4: ``[{id, name, threshold_points, multiplier}]``, thresholds ascending from
    # 0; none: a program without tiers, as in v1.
    tiers: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, default=list, server_default=text("'[]'::jsonb")
    )
    tier_window: Mapped[str] = mapped_column(
        String(32), default="rolling_12_months", server_default="rolling_12_months"
    )
    tier_grace_days: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Campaign(SoftDeleteMixin, TimestampMixin, Base):
    """An earning rule of a program (CONTRACT.md 7.1): a multiplier and/or a bonus on the
    purchases, lines and times it names, within a budget of points."""

    __tablename__ = "campaigns"
    __table_args__ = (
        Index(
            "uq_campaigns_program_code_live",
            "program_id",
            "code",
            unique=True,
            postgresql_where=LIVE,
        ),
        CheckConstraint("multiplier > 0", name="multiplier_positive"),
        CheckConstraint("bonus_points >= 0", name="bonus_non_negative"),
        CheckConstraint("min_basket_cents >= 0", name="min_basket_non_negative"),
        CheckConstraint("budget_points IS NULL OR budget_points >= 1", name="budget_positive"),
        CheckConstraint(
            "max_awards_per_card IS NULL OR max_awards_per_card >= 1", name="max_awards_positive"
        ),
        # The engine never lets a budget be exceeded; the database refuses it too.
        CheckConstraint(
            "points_awarded >= 0 AND (budget_points IS NULL OR points_awarded <= budget_points)",
            name="within_budget",
        ),
        CheckConstraint(
            "starts_at IS NULL OR ends_at IS NULL OR starts_at < ends_at", name="window_ordered"
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("loyalty_programs.id"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[CampaignStatus] = mapped_column(
        _enum(CampaignStatus, "campaign_status"), default=CampaignStatus.DRAFT
    )
    starts_at: Mapped[datetime | None] = mapped_column(default=None)
    ends_at: Mapped[datetime | None] = mapped_column(default=None)
    # Weekdays as mon..sun and "HH:MM-HH:MM", both in the merchant's time zone.
    days: Mapped[list[str]] = mapped_column(
        ARRAY(Text), default=list, server_default=text("'{}'::text[]")
    )
    hours: Mapped[str | None] = mapped_column(String(11), default=None)
    skus: Mapped[list[str]] = mapped_column(
        ARRAY(Text), default=list, server_default=text("'{}'::text[]")
    )
    categories: Mapped[list[str]] = mapped_column(
        ARRAY(Text), default=list, server_default=text("'{}'::text[]")
    )
    multiplier: Mapped[Decimal] = mapped_column(Numeric(8, 3), default=Decimal("1"))
    bonus_points: Mapped[int] = mapped_column(BigInteger, default=0)
    min_basket_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    budget_points: Mapped[int | None] = mapped_column(BigInteger, default=None)
    max_awards_per_card: Mapped[int | None] = mapped_column(Integer, default=None)
    # What it has awarded so far: the budget's used part, moved by the engine under a lock.
    points_awarded: Mapped[int] = mapped_column(BigInteger, default=0)


class CampaignCardAward(Base):
    """How many purchases of a card a campaign has rewarded, counted only for a campaign with
    ``max_awards_per_card`` (the limit is all it serves; a limit set later counts from then)."""

    __tablename__ = "campaign_card_awards"

    campaign_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    card_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    awards: Mapped[int] = mapped_column(Integer, default=0)


class Reward(TimestampMixin, Base):
    """An entry of a points program's rewards catalog, known by its code within the program."""

    __tablename__ = "rewards"
    __table_args__ = (
        UniqueConstraint("program_id", "code", name="uq_rewards_program_code"),
        CheckConstraint("points_required >= 1", name="points_required_positive"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("loyalty_programs.id"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    points_required: Mapped[int] = mapped_column(Integer)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)


class LoyaltyCard(SoftDeleteMixin, TimestampMixin, Base):
    """A customer's card: the balances are a projection of its ledger."""

    __tablename__ = "loyalty_cards"
    __table_args__ = (
        Index("uq_loyalty_cards_card_number", "card_number", unique=True),
        Index("uq_loyalty_cards_qr_token", "qr_token", unique=True),
        Index("uq_loyalty_cards_link_token", "link_token", unique=True),
        Index("ix_loyalty_cards_customer", "customer_id", "store_id"),
        # Statistics subtract the balances of deleted cards: few rows, found without a scan.
        Index(
            "ix_loyalty_cards_merchant_deleted",
            "merchant_id",
            postgresql_where=text("deleted_at IS NOT NULL"),
        ),
        CheckConstraint("stamp_count >= 0", name="stamp_count_non_negative"),
        CheckConstraint("points_balance >= 0", name="points_balance_non_negative"),
        CheckConstraint("lifetime_stamps >= 0", name="lifetime_stamps_non_negative"),
        CheckConstraint("rewards_redeemed >= 0", name="rewards_redeemed_non_negative"),
        CheckConstraint("lifetime_points_earned >= 0", name="lifetime_points_non_negative"),
        CheckConstraint("points_redeemed >= 0", name="points_redeemed_non_negative"),
        CheckConstraint("points_voided >= 0", name="points_voided_non_negative"),
        CheckConstraint("points_expired >= 0", name="points_expired_non_negative"),
        CheckConstraint("stamp_day_count >= 0", name="stamp_day_count_non_negative"),
        CheckConstraint("version >= 1", name="version_positive"),
        CheckConstraint("points_pending >= 0", name="points_pending_non_negative"),
        # Every event rewrites its card's row; room on the page lets PostgreSQL update it in
        # place (HOT) instead of touching every index of the table.
        {"postgresql_with": {"fillfactor": 80}},
    )
    # The link token comes from the database: RETURNING brings it back with the insert.
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012 - SQLAlchemy reads it once

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    # Card numbers and QR tokens are never reused, even after a soft delete: a printed card
    # must never start pointing at someone else's balance.
    card_number: Mapped[str] = mapped_column(String(14))
    qr_token: Mapped[str] = mapped_column(String(64))
    # The secret of the customer's card page link (``/card/{link_token}``), apart from the QR
    # token so an admin can rotate a leaked link without reprinting the card or its passes.
    # 244 random bits from PostgreSQL, so every writer of cards (the engine's COPY included)
    # gets one without knowing about it.
    link_token: Mapped[str] = mapped_column(String(64), server_default=LINK_TOKEN_DEFAULT)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("loyalty_programs.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id"))
    stamp_count: Mapped[int] = mapped_column(Integer, default=0)
    lifetime_stamps: Mapped[int] = mapped_column(Integer, default=0)
    rewards_redeemed: Mapped[int] = mapped_column(Integer, default=0)
    points_balance: Mapped[int] = mapped_column(BigInteger, default=0)
    lifetime_points_earned: Mapped[int] = mapped_column(BigInteger, default=0)
    points_redeemed: Mapped[int] = mapped_column(BigInteger, default=0)
    points_voided: Mapped[int] = mapped_column(BigInteger, default=0)
    points_expired: Mapped[int] = mapped_column(BigInteger, default=0)
    apple_authentication_token: Mapped[str] = mapped_column(String(64))
    google_object_id: Mapped[str | None] = mapped_column(String(200))
    last_stamp_at: Mapped[datetime | None] = mapped_column(default=None)
    # The merchant-local calendar day of the last stamp and the stamps earned on it, so the
    # daily cap is checked without reading the ledger on the hot path.
    stamp_day: Mapped[date | None] = mapped_column(Date, default=None)
    stamp_day_count: Mapped[int] = mapped_column(Integer, default=0)
    last_points_at: Mapped[datetime | None] = mapped_column(default=None)
    last_redemption_at: Mapped[datetime | None] = mapped_column(default=None)
    last_activity_at: Mapped[datetime | None] = mapped_column(default=None)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    # Points lots (``PointLot``), summed up here so results need no lot: pending points,
    # how many lots the card ever had (the next one's number), points in lots with an
    # expiry date of their own and the first such date with the points due that day.
    points_pending: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    lot_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    dated_points: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    next_expiry_at: Mapped[datetime | None] = mapped_column(default=None)
    next_expiry_points: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # Tiers (CONTRACT.md 7.4): the card's tier, its qualifying points counted from
    # ``qualifying_from`` (the window's start as of its last event or daily run), and since
    # when the daily run has found it below its tier's threshold.
    tier: Mapped[str | None] = mapped_column(String(64), default=None)
    qualifying_points: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    qualifying_from: Mapped[datetime | None] = mapped_column(default=None)
    tier_below_since: Mapped[datetime | None] = mapped_column(default=None)


class TierChange(Base):
    """A card's move from one tier to another (CONTRACT.md 7.4): its tier history."""

    __tablename__ = "tier_changes"
    __table_args__ = (
        Index("ix_tier_changes_card", "card_id", "occurred_at"),
        Index("ix_tier_changes_merchant", "merchant_id", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    card_id: Mapped[int] = mapped_column(BigInteger)
    merchant_id: Mapped[int] = mapped_column(BigInteger)
    from_tier: Mapped[str | None] = mapped_column(String(64))
    to_tier: Mapped[str | None] = mapped_column(String(64))
    qualifying_points: Mapped[int] = mapped_column(BigInteger)
    occurred_at: Mapped[datetime] = mapped_column()
    source_event_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    recorded_at: Mapped[datetime] = mapped_column(server_default=func.now())


class PointLot(Base):
    """The points of one credit (CONTRACT.md 7.3): released when, expiring when, and what is
    left of them. Debits spend lots and the ledger names them (``LedgerEntry.lots``).

    Numbered per card (``loyalty_cards.lot_count``), so the engine names a new lot without
    asking a sequence; no foreign keys, like the ledger (hot path, cards never vanish).
    """

    __tablename__ = "point_lots"
    __table_args__ = (
        # The expiry run finds due lots and the reminders' window by date.
        Index(
            "ix_point_lots_expiring",
            "expires_at",
            postgresql_where=text("remaining > 0 AND expires_at IS NOT NULL"),
        ),
        Index("ix_point_lots_pending", "releases_at", postgresql_where=text("pending")),
        CheckConstraint("remaining >= 0 AND remaining <= points", name="remaining_range"),
    )

    card_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    lot_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    merchant_id: Mapped[int] = mapped_column(BigInteger)
    points: Mapped[int] = mapped_column(BigInteger)
    remaining: Mapped[int] = mapped_column(BigInteger)
    earned_at: Mapped[datetime] = mapped_column()
    releases_at: Mapped[datetime | None] = mapped_column(default=None)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    pending: Mapped[bool] = mapped_column(Boolean, default=False)
    source_event_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))


class ExpiryReminder(Base):
    """A ``points.expiring`` reminder sent: once per card and expiry date (CONTRACT.md 7.3)."""

    __tablename__ = "expiry_reminders"

    card_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    expires_on: Mapped[date] = mapped_column(Date, primary_key=True)
    points: Mapped[int] = mapped_column(BigInteger)
    sent_at: Mapped[datetime] = mapped_column(server_default=func.now())


class LedgerEntry(Base):
    """One immutable change of a card (a database trigger refuses updates and deletes).

    No foreign keys here, on purpose: this is the hottest table (two rows per purchase) and
    per-row referential checks cost more than the rest of the insert. Every id written comes
    from a row the engine locked in the same transaction, and cards, stores and merchants
    are only ever soft-deleted, so the references cannot dangle.
    """

    __tablename__ = "ledger_entries"
    __table_args__ = (
        Index("ix_ledger_entries_card_occurred", "card_id", "occurred_at"),
        Index("ix_ledger_entries_merchant_occurred", "merchant_id", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    card_id: Mapped[int] = mapped_column(BigInteger)
    merchant_id: Mapped[int] = mapped_column(BigInteger)
    store_id: Mapped[int | None] = mapped_column(BigInteger)
    entry_type: Mapped[LedgerType] = mapped_column(_enum(LedgerType, "ledger_type"))
    stamps_delta: Mapped[int] = mapped_column(Integer, default=0)
    points_delta: Mapped[int] = mapped_column(BigInteger, default=0)
    stamp_count_after: Mapped[int] = mapped_column(Integer)
    points_balance_after: Mapped[int] = mapped_column(BigInteger)
    purchase_amount_cents: Mapped[int | None] = mapped_column(BigInteger)
    order_reference: Mapped[str | None] = mapped_column(String(100))
    reward_code: Mapped[str | None] = mapped_column(String(64))
    reward_description: Mapped[str | None] = mapped_column(String(200))
    staff_pin_id: Mapped[int | None] = mapped_column(BigInteger)
    staff_ref: Mapped[str | None] = mapped_column(String(100))
    actor: Mapped[str | None] = mapped_column(String(100))
    source_event_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    notes: Mapped[str | None] = mapped_column(Text)
    occurred_at: Mapped[datetime] = mapped_column()
    recorded_at: Mapped[datetime] = mapped_column(server_default=func.now())
    # Pending points moved (CONTRACT.md 7.2): ``points_delta`` is the spendable balance only.
    pending_delta: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # The lots it made or spent: ``[[lot_no, points], ...]`` (credits positive, debits
    # negative); null for entries without points (and for v1 entries).
    lots: Mapped[list[list[int]] | None] = mapped_column(JSONB, default=None)


class Purchase(Base):
    """What one order earned, and what its refunds voided so far (for proportional voids).

    Like the ledger, written once per purchase on the hot path: no foreign keys (see
    ``LedgerEntry``).
    """

    __tablename__ = "purchases"
    __table_args__ = (
        UniqueConstraint("merchant_id", "order_reference", name="uq_purchases_merchant_order"),
        CheckConstraint("amount_cents >= 0", name="amount_non_negative"),
        CheckConstraint(
            "refunded_cents >= 0 AND refunded_cents <= amount_cents", name="refunded_range"
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    merchant_id: Mapped[int] = mapped_column(BigInteger)
    order_reference: Mapped[str] = mapped_column(String(100))
    card_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    store_id: Mapped[int | None] = mapped_column(BigInteger)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    points_earned: Mapped[int] = mapped_column(BigInteger, default=0)
    stamps_earned: Mapped[int] = mapped_column(Integer, default=0)
    refunded_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    # What the refunds so far should have voided, shortfall included: the next refund voids
    # only the difference, so a shortfall is reported once, not again at every refund.
    points_voided: Mapped[int] = mapped_column(BigInteger, default=0)
    stamps_voided: Mapped[int] = mapped_column(Integer, default=0)
    source_event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    occurred_at: Mapped[datetime] = mapped_column()
    # What each line and each campaign bonus earned, as earned (``rules.basket.Earnings``),
    # so a return voids exactly that whatever the rules say later. Null for a purchase
    # without lines or campaigns: it is voided in proportion, as in v1.
    earnings: Mapped[dict[str, Any] | None] = mapped_column(JSONB, default=None)
    # The card's tier when earned, and what its multiplier added (CONTRACT.md 7.4).
    tier: Mapped[str | None] = mapped_column(String(64), default=None)
    tier_points: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class HeldReturn(Base):
    """A return whose purchase has not been seen yet; applied when the purchase arrives."""

    __tablename__ = "held_returns"
    __table_args__ = (
        Index(
            "ix_held_returns_pending",
            "merchant_id",
            "order_reference",
            postgresql_where=text("applied_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id"))
    order_reference: Mapped[str] = mapped_column(String(100))
    source_event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    received_at: Mapped[datetime] = mapped_column(server_default=func.now())
    applied_at: Mapped[datetime | None] = mapped_column(default=None)


class ProcessedEvent(Base):
    """The inbox: one row per input event id, committed with the event's effects."""

    __tablename__ = "processed_events"

    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    topic: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16))
    processed_at: Mapped[datetime] = mapped_column(server_default=func.now())


class OutboxMessage(Base):
    """Messages to publish, written in the transaction of the effect they report.

    One row holds a transaction's messages of one topic and shard, already encoded
    (``domain.engine.outbox``): ``keys`` a JSON array, ``payloads`` JSON joined by newlines.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_unsent", "shard", "id", postgresql_where=text("sent_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    # Messages of one key always share a shard (``engine.outbox.shard_of``), and one relay at
    # a time owns a shard, so order per key holds with several relays running.
    shard: Mapped[int] = mapped_column(SmallInteger)
    topic: Mapped[str] = mapped_column(String(100))
    count: Mapped[int] = mapped_column(Integer)
    keys: Mapped[bytes] = mapped_column(LargeBinary)
    payloads: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    sent_at: Mapped[datetime | None] = mapped_column(default=None)


class DeadLetter(Base):
    """A copy of every dead-lettered input, for the admin panel's DLQ view and re-drive."""

    __tablename__ = "dead_letters"
    # A redelivered batch must not dead-letter the same record twice.
    __table_args__ = (
        UniqueConstraint("source_topic", "partition", "offset", name="uq_dead_letters_position"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), unique=True)
    source_topic: Mapped[str] = mapped_column(String(100))
    partition: Mapped[int] = mapped_column(Integer)
    offset: Mapped[int] = mapped_column(BigInteger)
    key: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[str] = mapped_column(Text)
    error: Mapped[str] = mapped_column(Text)
    occurred_at: Mapped[datetime] = mapped_column(server_default=func.now())
    redriven_at: Mapped[datetime | None] = mapped_column(default=None)


class StaffPin(TimestampMixin, Base):
    """A staff member's PIN at one store, bcrypt-hashed; the lockout counter is the store's."""

    __tablename__ = "staff_pins"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    pin_hash: Mapped[str] = mapped_column(String(100))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)


class TerminalDevice(Base):
    """A device paired as a store's staff terminal.

    Pairing starts in the admin panel, which shows a short one-time code (only its hash is
    kept, and only until it is used or expires); the terminal that types it receives a long
    random device token in an http-only cookie. Only the token's SHA-256 is stored, so a read
    of this table opens no terminal. Revoking sets ``revoked_at``; the terminal checks it on
    every action.
    """

    __tablename__ = "terminal_devices"
    __table_args__ = (
        Index("uq_terminal_devices_token_hash", "token_hash", unique=True),
        Index("uq_terminal_devices_pairing_code_hash", "pairing_code_hash", unique=True),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    pairing_code_hash: Mapped[str | None] = mapped_column(String(64))
    pairing_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    token_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    created_by: Mapped[str] = mapped_column(String(200))
    paired_at: Mapped[datetime | None] = mapped_column(default=None)
    last_seen_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_by: Mapped[str | None] = mapped_column(String(200))


class AppleDeviceRegistration(Base):
    """A device that asked to be told when a card's pass changes (PassKit web service)."""

    __tablename__ = "apple_device_registrations"
    __table_args__ = (
        UniqueConstraint(
            "device_library_id",
            "pass_type_id",
            "card_id",
            name="uq_apple_device_registrations_device_pass",
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    device_library_id: Mapped[str] = mapped_column(String(200))
    pass_type_id: Mapped[str] = mapped_column(String(200))
    push_token: Mapped[str] = mapped_column(String(200))
    card_id: Mapped[int] = mapped_column(ForeignKey("loyalty_cards.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class WalletSyncState(Base):
    """The last card version pushed to a wallet, and the last error, per card and wallet."""

    __tablename__ = "wallet_sync_state"

    card_id: Mapped[int] = mapped_column(ForeignKey("loyalty_cards.id"), primary_key=True)
    wallet: Mapped[str] = mapped_column(String(16), primary_key=True)
    synced_version: Mapped[int] = mapped_column(Integer, default=0)
    synced_at: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)


class AdminUser(TimestampMixin, Base):
    """A person who signs in to the admin panel."""

    __tablename__ = "admin_users"
    __table_args__ = (
        UniqueConstraint("username", name="uq_admin_users_username"),
        CheckConstraint(
            "role = 'platform_admin' OR merchant_id IS NOT NULL", name="merchant_admin_has_merchant"
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    username: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(100))
    role: Mapped[UserRole] = mapped_column(_enum(UserRole, "user_role"))
    merchant_id: Mapped[int | None] = mapped_column(ForeignKey("merchants.id"))
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(default=None)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)


def _total() -> Mapped[int]:
    return mapped_column(BigInteger, default=0, server_default=text("0"))


class LedgerDailyTotal(Base):
    """The ledger summed per merchant, program, store and merchant-local day (statistics).

    Written only by database triggers on ``ledger_entries`` (see ``domain.stats``), in the
    transaction of the entries themselves, so it never disagrees with the ledger. Redeemed,
    voided and expired amounts are positive; adjustments and the nets are signed.
    """

    __tablename__ = "ledger_daily_totals"

    merchant_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    program_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    # 0 for entries without a store (expiry, admin adjustments), so it can be in the key.
    store_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    entries: Mapped[int] = _total()
    stamps_earned: Mapped[int] = _total()
    stamps_redeemed: Mapped[int] = _total()
    stamps_voided: Mapped[int] = _total()
    stamps_adjusted: Mapped[int] = _total()
    stamps_net: Mapped[int] = _total()
    points_earned: Mapped[int] = _total()
    points_welcome: Mapped[int] = _total()
    points_redeemed: Mapped[int] = _total()
    points_voided: Mapped[int] = _total()
    points_expired: Mapped[int] = _total()
    points_adjusted: Mapped[int] = _total()
    points_net: Mapped[int] = _total()


class CardDailyCount(Base):
    """Live cards counted per merchant, program, store and merchant-local day (statistics).

    ``cards_created`` and ``active_cards_created`` count live cards (active ones) by the day
    they were created; ``last_active_cards`` counts live cards by the day of their
    ``last_activity_at``. Written only by database triggers on ``loyalty_cards``.
    """

    __tablename__ = "card_daily_counts"

    merchant_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    program_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    # 0 for cards without a store.
    store_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    cards_created: Mapped[int] = _total()
    active_cards_created: Mapped[int] = _total()
    last_active_cards: Mapped[int] = _total()


SOFT_DELETABLE: tuple[type[SoftDeleteMixin], ...] = (
    Merchant,
    Store,
    Customer,
    LoyaltyProgram,
    LoyaltyCard,
)


class WebhookEndpoint(SoftDeleteMixin, TimestampMixin, Base):
    """A merchant's HTTPS endpoint and the output types it is sent (``consumers.webhooks``).

    ``secret`` signs every delivery (HMAC-SHA256); the dispatcher needs it in clear, so it is
    stored as given, shown only to the merchant's admins, and never logged.
    """

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    url: Mapped[str] = mapped_column(Text)
    secret: Mapped[str] = mapped_column(Text)
    # Output message types: event.processed, card.balance_changed, points.expiring,
    # reward.available, tier.changed.
    event_types: Mapped[list[str]] = mapped_column(ARRAY(String(64)))
    description: Mapped[str | None] = mapped_column(Text, default=None)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)


class WebhookDelivery(Base):
    """One output message for one endpoint, from queued to delivered or parked.

    A card's deliveries to an endpoint go out one at a time in ``id`` order: only the oldest
    pending one of a (endpoint, card) is ever attempted. ``lease_until`` marks an attempt
    under way (a dispatcher that dies leaves it to expire); ``retry_from`` starts the retry
    window (reset by a re-send).
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_id", name="uq_webhook_deliveries_endpoint_event"),
        CheckConstraint("status IN ('pending', 'delivered', 'parked')", name="status_known"),
        Index(
            "ix_webhook_deliveries_pending",
            "endpoint_id",
            "card_number",
            "id",
            postgresql_where=text("status = 'pending'"),
        ),
        Index("ix_webhook_deliveries_endpoint_status", "endpoint_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id"))
    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    event_type: Mapped[str] = mapped_column(String(64))
    card_number: Mapped[str | None] = mapped_column(String(64), default=None)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(server_default=func.now())
    lease_until: Mapped[datetime | None] = mapped_column(default=None)
    retry_from: Mapped[datetime] = mapped_column(server_default=func.now())
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    last_status: Mapped[int | None] = mapped_column(Integer, default=None)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class AdminAuditLog(Base):
    """One change a person made in the admin panel or on the command line (issue 17): who,
    when, from where, what, and the values before and after, personal data masked and
    secrets left out (``domain.audit_trail`` writes it).

    Written once: a trigger refuses UPDATE and DELETE. ``merchant_id`` is a plain number, not a
    foreign key: the trail outlives what it names, and a key's ``ON DELETE`` would have to
    change rows that never change.
    """

    __tablename__ = "admin_audit_log"
    __table_args__ = (
        # A merchant admin's page (their merchant's rows, newest first) and a platform
        # admin's (every row, newest first).
        Index("ix_admin_audit_log_merchant_at", "merchant_id", "at"),
        Index("ix_admin_audit_log_at", "at"),
        CheckConstraint("source IN ('panel', 'cli', 'system')", name="source_known"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[datetime] = mapped_column(server_default=func.now())
    actor: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(32))
    entity: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[str | None] = mapped_column(Text)
    merchant_id: Mapped[int | None] = mapped_column(BigInteger)
    # SQL NULL, not JSON null, when there is no "before" (a creation) or "after" (a removal).
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONB(none_as_null=True))
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONB(none_as_null=True))
    summary: Mapped[str] = mapped_column(Text)


class CardActiveMonth(Base):
    """A merchant-local month in which a card had activity (an entry that moves its
    ``last_activity_at``), for the finance report's active members (``domain.finance``).

    Written only by database triggers (migration ``the finance report``), in the transaction
    of the ledger rows themselves; history, so deleted cards keep theirs.
    """

    __tablename__ = "card_active_months"

    card_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    month: Mapped[date] = mapped_column(Date, primary_key=True)


class ActiveMonthCount(Base):
    """``CardActiveMonth`` rows counted per merchant, cohort (the merchant-local month the
    card was created), the card's previous active month (``-infinity`` for its first) and the
    month; sum ``cards`` over ``writer``.

    Each database session adds to rows of its own (``writer``, its backend pid), so two
    transactions never wait on one row. Written only by database triggers.
    """

    __tablename__ = "active_month_counts"

    merchant_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    cohort: Mapped[date] = mapped_column(Date, primary_key=True)
    previous: Mapped[date] = mapped_column(Date, primary_key=True)
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    writer: Mapped[int] = mapped_column(Integer, primary_key=True)
    cards: Mapped[int] = _total()
