"""The shared vocabulary: enums that the rules, the engine, the wire format and the database
all speak. Kept here, below all of them, so none has to import another for a name."""

from __future__ import annotations

from enum import StrEnum


class Topic(StrEnum):
    """Every topic of the public contract, by name."""

    PURCHASES = "loyalty.purchases.v1"
    RETURNS = "loyalty.returns.v1"
    ENROLLMENTS = "loyalty.enrollments.v1"
    REDEMPTIONS = "loyalty.redemptions.v1"
    EXPIRY = "loyalty.expiry.v1"
    RESULTS = "loyalty.results.v1"
    WALLET_UPDATES = "loyalty.wallet-updates.v1"
    DLQ = "loyalty.dlq.v1"
    NOTIFICATIONS = "loyalty.notifications.v1"


class ProgramType(StrEnum):
    """What a program rewards."""

    STAMPS = "stamps"
    POINTS = "points"
    HYBRID = "hybrid"


class LedgerType(StrEnum):
    """Every kind of change of a card, one ledger row each."""

    STAMP_EARNED = "stamp_earned"
    STAMP_REDEEMED = "stamp_redeemed"
    STAMP_VOIDED = "stamp_voided"
    STAMP_ADJUSTED = "stamp_adjusted"
    POINTS_EARNED = "points_earned"
    POINTS_REDEEMED = "points_redeemed"
    POINTS_VOIDED = "points_voided"
    POINTS_EXPIRED = "points_expired"
    POINTS_ADJUSTED = "points_adjusted"
    WELCOME_BONUS = "welcome_bonus"
    CARD_CREATED = "card_created"
    CARD_DEACTIVATED = "card_deactivated"
    CARD_REACTIVATED = "card_reactivated"
    POINTS_RELEASED = "points_released"


class ExpiryPolicy(StrEnum):
    """When a program's points expire (CONTRACT.md 7.3)."""

    INACTIVITY = "inactivity"
    ROLLING = "rolling"
    CALENDAR_YEAR = "calendar_year"


class CampaignStatus(StrEnum):
    """Where a campaign is in its life: only ``active`` ones earn."""

    DRAFT = "draft"
    ACTIVE = "active"
    PAUSED = "paused"
    ENDED = "ended"


class UserRole(StrEnum):
    """Who may sign in to the admin panel, and how far they see."""

    PLATFORM_ADMIN = "platform_admin"
    MERCHANT_ADMIN = "merchant_admin"


class ReasonCode(StrEnum):
    """Every rule that can refuse (part of) an event, as reported in `event.processed`."""

    STORE_NOT_FOUND = "store_not_found"
    PROGRAM_NOT_FOUND = "program_not_found"
    PROGRAM_INACTIVE = "program_inactive"
    CARD_NOT_FOUND = "card_not_found"
    CARD_INACTIVE = "card_inactive"
    CARD_NOT_VALID_AT_STORE = "card_not_valid_at_store"
    UNSUPPORTED_CURRENCY = "unsupported_currency"
    BELOW_MINIMUM_PURCHASE = "below_minimum_purchase"
    STAMPS_NOT_ENABLED = "stamps_not_enabled"
    POINTS_NOT_ENABLED = "points_not_enabled"
    STAMP_COOLDOWN = "stamp_cooldown"
    DAILY_STAMP_LIMIT = "daily_stamp_limit"
    DUPLICATE_ORDER = "duplicate_order"
    PURCHASE_NOT_SEEN_YET = "purchase_not_seen_yet"
    REFUND_EXCEEDS_PURCHASE = "refund_exceeds_purchase"
    POINTS_SHORTFALL = "points_shortfall"
    STAMPS_SHORTFALL = "stamps_shortfall"
    INSUFFICIENT_STAMPS = "insufficient_stamps"
    INSUFFICIENT_POINTS = "insufficient_points"
    UNKNOWN_REWARD = "unknown_reward"
    BELOW_MINIMUM_REDEMPTION = "below_minimum_redemption"
    SELF_ENROLLMENT_DISABLED = "self_enrollment_disabled"
    ALREADY_ENROLLED = "already_enrolled"


class CardRefKind(StrEnum):
    """Which of its four fields a card reference uses."""

    CARD_NUMBER = "card_number"
    QR_CODE = "qr_code"
    EMAIL = "email"
    CUSTOMER_REF = "customer_ref"


class PurchaseChannel(StrEnum):
    """Where a purchase was made."""

    ONLINE = "online"
    IN_STORE = "in_store"


class EnrollmentChannel(StrEnum):
    """Who asked for a card: the customer, a member of staff, or a storefront."""

    SELF = "self"
    STAFF = "staff"
    ONLINE = "online"


class Locale(StrEnum):
    """The languages a card can be issued in."""

    EN = "en"
    FR = "fr"
    DE = "de"
    LB = "lb"
