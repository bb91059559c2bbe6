"""One card with its program's terms (its tier too), its ledger, its open point lots, its tier
history and its wallets' sync state, and the cards an enrolment has just issued. The list of
cards is ``admin_ui.queries.card_list``'s."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from admin_ui.queries.admins import Principal
from admin_ui.queries.common import (
    ALL,
    PageRequest,
    Rows,
    page,
)
from domain.models import (
    Customer,
    LedgerEntry,
    LoyaltyCard,
    LoyaltyProgram,
    Merchant,
    PointLot,
    ProgramType,
    Store,
    TierChange,
    WalletSyncState,
)
from domain.wallet_cards import (
    TierStanding,
    card_next_expiry,
    card_tier,
    expiry_day,
    merchant_zone,
)

UTC_ZONE = ZoneInfo("UTC")


@dataclass(frozen=True)
class CardDetail:
    """A card with its program's terms, its customer and its merchant."""

    id: int
    card_number: str
    qr_token: str
    link_token: str
    merchant_id: int
    merchant_code: str
    program_id: int
    program_type: ProgramType
    stamps_target: int
    currency: str
    customer_id: int
    customer: str
    store_code: str | None
    stamp_count: int
    points_balance: int
    lifetime_stamps: int
    lifetime_points_earned: int
    points_redeemed: int
    rewards_redeemed: int
    is_active: bool
    version: int
    last_activity_at: datetime | None
    created_at: datetime
    deleted_at: datetime | None
    points_pending: int = 0
    next_expiry_points: int = 0
    next_expiry_on: date | None = None
    """The next points to expire and the last day (the merchant's) they can be spent."""
    idle_expiry_on: date | None = None
    """When the points kept by inactivity go, should the card stay idle (None: never)."""
    tier: TierStanding | None = None
    """Its tier and what the next one takes (None: the program has no tiers)."""
    qualifying_points: int = 0
    tier_names: tuple[tuple[str, str], ...] = ()
    """The program's tiers, ``(id, name)`` in order (to name those of the tier history)."""
    zone: ZoneInfo = UTC_ZONE
    """The merchant's time zone, the clock the card's lots are read on."""
    hidden_with: str | None = None
    """What the card was deleted along with (``merchant``, ``customer``, ``program``), when
    it was; ``None`` when it is live or was deleted on its own."""
    deleted_by: str | None = None
    merchant_name: str = ""
    program_name: str = ""
    store_name: str | None = None

    @property
    def status(self) -> str:
        """The card's status in words: ``active``, ``deactivated``, ``deleted`` or ``hidden
        with its merchant`` (customer, program)."""
        if self.deleted_at is not None:
            return f"hidden with its {self.hidden_with}" if self.hidden_with else "deleted"
        return "active" if self.is_active else "deactivated"

    def tier_name(self, code: str | None) -> str:
        """A tier of the history by name (its id when the program no longer has it)."""
        if code is None:
            return "—"
        return dict(self.tier_names).get(code, code)


async def get_card(session: AsyncSession, me: Principal, card_id: int) -> CardDetail | None:
    """A card this admin may see (deleted ones too), else ``None``."""
    row = (
        await session.execute(
            select(
                LoyaltyCard,
                Merchant.code,
                LoyaltyProgram,
                Customer,
                Store.code,
                Merchant.timezone,
                Store.name,
            )
            .join(Merchant, Merchant.id == LoyaltyCard.merchant_id)
            .join(LoyaltyProgram, LoyaltyProgram.id == LoyaltyCard.program_id)
            .join(Customer, Customer.id == LoyaltyCard.customer_id)
            .outerjoin(Store, Store.id == LoyaltyCard.store_id)
            .where(LoyaltyCard.id == card_id)
            .execution_options(**ALL)
        )
    ).first()
    if row is None or not me.sees(row[0].merchant_id):
        return None
    c: LoyaltyCard = row[0]
    program: LoyaltyProgram = row[2]
    customer: Customer = row[3]
    merchant = await session.get(Merchant, c.merchant_id, execution_options=ALL)
    name = " ".join(p for p in (customer.first_name, customer.last_name) if p)
    who = ", ".join(p for p in (name, customer.email or customer.customer_ref or "") if p)
    zone = merchant_zone(row[5])
    expiry = card_next_expiry(c, program, zone)
    idle = (
        c.last_activity_at + timedelta(days=program.points_expiration_days)
        if c.last_activity_at is not None and program.points_expiration_days is not None
        else None
    )
    return CardDetail(
        id=c.id,
        card_number=c.card_number,
        qr_token=c.qr_token,
        link_token=c.link_token,
        merchant_id=c.merchant_id,
        merchant_code=row[1],
        program_id=program.id,
        program_type=program.type,
        stamps_target=program.stamps_target,
        currency=program.currency,
        customer_id=customer.id,
        customer=who or f"#{customer.id}",
        store_code=row[4],
        stamp_count=c.stamp_count,
        points_balance=c.points_balance,
        lifetime_stamps=c.lifetime_stamps,
        lifetime_points_earned=c.lifetime_points_earned,
        points_redeemed=c.points_redeemed,
        rewards_redeemed=c.rewards_redeemed,
        is_active=c.is_active,
        version=c.version,
        last_activity_at=c.last_activity_at,
        created_at=c.created_at,
        deleted_at=c.deleted_at,
        points_pending=c.points_pending,
        next_expiry_points=expiry.points if expiry else 0,
        next_expiry_on=expiry_day(expiry.at, zone) if expiry else None,
        idle_expiry_on=expiry_day(idle, zone) if idle else None,
        tier=card_tier(c, program),
        qualifying_points=c.qualifying_points,
        tier_names=tuple(
            (str(t["id"]), str(t.get("name") or t["id"])) for t in program.tiers or ()
        ),
        zone=zone,
        hidden_with=_hidden_with(c, merchant, customer, program),
        deleted_by=c.deleted_by,
        merchant_name=merchant.name if merchant is not None else row[1],
        program_name=program.name,
        store_name=row[6],
    )


def _hidden_with(
    card: LoyaltyCard,
    merchant: Merchant | None,
    customer: Customer,
    program: LoyaltyProgram,
) -> str | None:
    """What a deleted card went with: the row whose deletion (one id per deletion) hid it."""
    if card.deletion_id is None:
        return None
    for kind, parent in (("merchant", merchant), ("customer", customer), ("program", program)):
        if parent is not None and parent.deletion_id == card.deletion_id:
            return kind
    return None


@dataclass(frozen=True)
class LedgerLine:
    """One ledger entry of a card."""

    id: int
    occurred_at: datetime
    entry_type: str
    stamps_delta: int
    points_delta: int
    stamp_count_after: int
    points_balance_after: int
    store_code: str | None
    detail: str
    pending_delta: int = 0
    """The change to the pending points (CONTRACT.md 7.2); ``points_delta`` is the spendable
    part only."""
    actor: str | None = None
    """Who made the entry, as recorded (``admin:alice``): the page says it in words."""


async def card_ledger(
    session: AsyncSession, card_id: int, request: PageRequest
) -> Rows[LedgerLine]:
    """A card's ledger, newest first (the caller has checked the card is visible)."""
    query = (
        select(LedgerEntry, Store.code)
        .outerjoin(Store, Store.id == LedgerEntry.store_id)
        .where(LedgerEntry.card_id == card_id)
    )
    rows, total = await page(
        session, query, request, LedgerEntry.occurred_at.desc(), LedgerEntry.id.desc()
    )
    lines = []
    for entry, store_code in rows:
        parts = [
            p
            for p in (
                entry.order_reference and f"order {entry.order_reference}",
                entry.reward_description or entry.reward_code,
                entry.notes,
                entry.staff_ref and f"staff {entry.staff_ref}",
            )
            if p
        ]
        lines.append(
            LedgerLine(
                entry.id,
                entry.occurred_at,
                entry.entry_type.value,
                entry.stamps_delta,
                entry.points_delta,
                entry.stamp_count_after,
                entry.points_balance_after,
                store_code,
                " · ".join(parts),
                entry.pending_delta,
                entry.actor,
            )
        )
    return Rows(lines, total)


@dataclass(frozen=True)
class LotLine:
    """One open lot of a card: points of one credit not yet all spent (CONTRACT.md 7.3)."""

    lot_no: int
    earned_at: datetime
    points: int
    remaining: int
    pending: bool
    releases_at: datetime | None
    expires_at: datetime | None


async def open_lots(session: AsyncSession, card_id: int, request: PageRequest) -> Rows[LotLine]:
    """A card's lots with points left, those to be spent first (expiring first) first."""
    query = select(PointLot).where(PointLot.card_id == card_id, PointLot.remaining > 0)
    rows, total = await page(
        session,
        query,
        request,
        PointLot.expires_at.asc().nulls_last(),
        PointLot.earned_at,
        PointLot.lot_no,
    )
    return Rows(
        [
            LotLine(
                lot.lot_no,
                lot.earned_at,
                lot.points,
                lot.remaining,
                lot.pending,
                lot.releases_at,
                lot.expires_at,
            )
            for (lot,) in rows
        ],
        total,
    )


@dataclass(frozen=True)
class TierChangeLine:
    """One move of a card from a tier to another (CONTRACT.md 7.4)."""

    occurred_at: datetime
    from_tier: str | None
    to_tier: str | None
    qualifying_points: int


async def tier_history(
    session: AsyncSession, card_id: int, request: PageRequest
) -> Rows[TierChangeLine]:
    """A card's tier changes, newest first (the caller has checked the card is visible)."""
    query = select(TierChange).where(TierChange.card_id == card_id)
    rows, total = await page(
        session, query, request, TierChange.occurred_at.desc(), TierChange.id.desc()
    )
    return Rows(
        [
            TierChangeLine(t.occurred_at, t.from_tier, t.to_tier, t.qualifying_points)
            for (t,) in rows
        ],
        total,
    )


@dataclass(frozen=True)
class WalletLine:
    """How far a wallet has caught up with a card."""

    wallet: str
    synced_version: int
    synced_at: datetime | None
    attempts: int
    last_error: str | None
    last_error_at: datetime | None


async def wallet_sync(session: AsyncSession, card_id: int) -> list[WalletLine]:
    """The card's wallet sync rows (none until a wallet consumer has seen the card)."""
    rows = (
        await session.scalars(
            select(WalletSyncState)
            .where(WalletSyncState.card_id == card_id)
            .order_by(WalletSyncState.wallet)
        )
    ).all()
    return [
        WalletLine(
            r.wallet, r.synced_version, r.synced_at, r.attempts, r.last_error, r.last_error_at
        )
        for r in rows
    ]


async def card_id(session: AsyncSession, card_number: str) -> int | None:
    """The id of the live card with this number (the one an enrolment just issued)."""
    return await session.scalar(
        select(LoyaltyCard.id).where(LoyaltyCard.card_number == card_number)
    )


async def active_link_token(session: AsyncSession, card_number: str) -> str | None:
    """The card page's secret of the live, active card with this number."""
    return await session.scalar(
        select(LoyaltyCard.link_token).where(
            LoyaltyCard.card_number == card_number, LoyaltyCard.is_active.is_(True)
        )
    )
