"""``loyalty simulate``: plausible till and storefront traffic for the demo merchants.

It sends only to the merchants of the demo provisioning file (``demo/demo.yaml``, what
``make run`` provisions) or to those named with ``--merchant``: never to a merchant someone
provisioned for real in the same database. For those, it reads what exists (stores,
programs, rewards, a sample of the cards) and publishes what
their customers would do, now: new customers enrol, customers buy (mostly with the cards
they have), sometimes return part of an order, and redeem a reward when their card probably
holds enough. Balances are estimated from the database and from what was published, and read
again every little while. Messages are built as the contract's models, so every one is valid;
a few purchases name a card nobody has, as tills sometimes do.

Pacing is a token bucket with a small burst, so a stall is never followed by a flood.

Long (about 700 lines) because it is one tool end to end: what exists, the traffic it makes,
and its pacing; nothing else imports it.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import unicodedata
import uuid
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import asyncpg
from aiokafka import AIOKafkaProducer

from core.logs import get_logger
from core.settings import REPO_ROOT, Settings
from domain.provisioning import ProvisioningError, load_file
from streams.broker import producer_config
from streams.inputs import (
    CardRef,
    Customer,
    EnrollmentChannel,
    EnrollmentRequested,
    InputMessage,
    Locale,
    PointsReward,
    PurchaseChannel,
    PurchaseCompleted,
    PurchaseLine,
    PurchaseReturned,
    RewardRedeemRequested,
    StampsReward,
)
from streams.parsing import record_for

log = get_logger(__name__)

DEMO_FILE: Final = REPO_ROOT / "demo" / "demo.yaml"
"""The demo merchants' provisioning file: without ``--merchant``, only its merchants get
traffic."""
MAX_RATE: Final = 5000.0
"""Events per second; beyond it, use ``make bench``, which measures rather than decorates."""
CARDS_PER_MERCHANT: Final = 5000
"""Cards read per merchant (the most recently active): enough variety, bounded memory."""
REFRESH_S: Final = 15.0
"""How often balances and new cards are read again."""
NEW_CARD_READY_S: Final = 5.0
"""A customer who just enrolled shops only after this, so the card exists by then."""
RETURN_AFTER_S: Final = 3.0
"""An order is returned only after this, so its purchase is usually applied first."""
WAIT_FOR_MERCHANTS_S: Final = 5.0
_RECENT_ORDERS: Final = 1000
# What a café sells (sku, category, price range in cents), and how often a gift card is
# bought with it: the demo program's campaigns and non-earning category act on these.
_MENU: Final = (
    ("espresso", "coffee", 180, 260),
    ("cappuccino", "coffee", 280, 420),
    ("croissant", "pastry", 150, 250),
    ("pain-au-chocolat", "pastry", 170, 270),
    ("sandwich", "food", 450, 750),
    ("salad", "food", 650, 950),
)
_GIFT_CARD_SHARE: Final = 0.03
_RETURNABLE_SHARE: Final = 0.15
"""Orders kept as candidates for a return: enough for the returns' share of the traffic, and
at high rates a pool that spans more than ``RETURN_AFTER_S``."""
_REDEEM_PROBES: Final = 30

ENROL, PURCHASE, RETURN, REDEEM = (
    "enrollment.requested",
    "purchase.completed",
    "purchase.returned",
    "reward.redeem_requested",
)
KINDS: Final = (ENROL, PURCHASE, RETURN, REDEEM)

# ---------------------------------------------------------------------------------------------
# What exists


@dataclass
class SimCard:
    """A card as the simulator knows it: how to name it, and its estimated balance."""

    card_number: str | None
    email: str | None
    store_code: str | None
    """The store it is bound to (merchants without cross-location cards), else ``None``."""
    stamps: int = 0
    points: int = 0
    ready_at: float = 0.0
    """Monotonic time from which it may be used (new enrolments wait for their card)."""


@dataclass
class SimMerchant:
    """A merchant with a live store and an active program, and what the simulator needs of it."""

    code: str
    stores: list[str]
    program_type: str
    currency: str
    stamps_target: int
    points_per_euro: int
    minimum_purchase_cents: int
    minimum_redemption_points: int
    self_enrollment: bool
    cross_location: bool
    rewards: list[tuple[str, int]] = field(default_factory=list)
    """``(reward code, points required)`` of the active catalog, cheapest first."""
    cards: list[SimCard] = field(default_factory=list)

    @property
    def has_stamps(self) -> bool:
        """Whether purchases earn stamps (stamps and hybrid programs)."""
        return self.program_type in ("stamps", "hybrid")

    @property
    def has_points(self) -> bool:
        """Whether purchases earn points (points and hybrid programs)."""
        return self.program_type in ("points", "hybrid") and self.points_per_euro > 0


_MERCHANTS_SQL = """
SELECT m.id, m.code, m.allow_self_enrollment, m.allow_cross_location_redemption,
       p.id AS program_id, p.type, p.currency, p.stamps_target, p.points_per_euro,
       p.minimum_purchase_cents, p.minimum_redemption_points
FROM merchants m
JOIN loyalty_programs p ON p.merchant_id = m.id AND p.deleted_at IS NULL AND p.is_active
WHERE m.deleted_at IS NULL AND m.code = ANY($1::text[])
ORDER BY m.code
"""
_STORES_SQL = """
SELECT merchant_id, code FROM stores
WHERE deleted_at IS NULL AND merchant_id = ANY($1::bigint[]) ORDER BY code
"""
_REWARDS_SQL = """
SELECT program_id, code, points_required FROM rewards
WHERE is_active AND program_id = ANY($1::bigint[]) ORDER BY points_required, code
"""
_CARDS_SQL = """
SELECT merchant_id, card_number, email, store_code, stamp_count, points_balance FROM (
    SELECT c.merchant_id, c.card_number, cu.email, s.code AS store_code, c.stamp_count,
           c.points_balance,
           row_number() OVER (PARTITION BY c.merchant_id
                              ORDER BY c.last_activity_at DESC NULLS LAST, c.id DESC) AS n
    FROM loyalty_cards c
    JOIN customers cu ON cu.id = c.customer_id AND cu.deleted_at IS NULL
    LEFT JOIN stores s ON s.id = c.store_id AND s.deleted_at IS NULL
    WHERE c.deleted_at IS NULL AND c.is_active AND c.merchant_id = ANY($1::bigint[])
) AS recent
WHERE n <= $2
"""


async def load_merchants(conn: asyncpg.Connection, codes: Sequence[str]) -> list[SimMerchant]:
    """The live merchants of ``codes`` with a live store and an active program.

    Only the merchants named: no codes, no merchants (there is no "every merchant").
    """
    if not codes:
        return []
    rows = await conn.fetch(_MERCHANTS_SQL, list(codes))
    ids = [r["id"] for r in rows]
    stores: dict[int, list[str]] = {}
    for r in await conn.fetch(_STORES_SQL, ids):
        stores.setdefault(r["merchant_id"], []).append(r["code"])
    rewards: dict[int, list[tuple[str, int]]] = {}
    for r in await conn.fetch(_REWARDS_SQL, [r["program_id"] for r in rows]):
        rewards.setdefault(r["program_id"], []).append((r["code"], r["points_required"]))
    cards: dict[int, list[SimCard]] = {}
    for r in await conn.fetch(_CARDS_SQL, ids, CARDS_PER_MERCHANT):
        cards.setdefault(r["merchant_id"], []).append(
            SimCard(
                r["card_number"],
                r["email"],
                r["store_code"],
                r["stamp_count"],
                r["points_balance"],
            )
        )
    merchants = []
    for r in rows:
        if not stores.get(r["id"]):
            continue
        merchants.append(
            SimMerchant(
                code=r["code"],
                stores=stores[r["id"]],
                program_type=r["type"],
                currency=r["currency"],
                stamps_target=r["stamps_target"],
                points_per_euro=r["points_per_euro"],
                minimum_purchase_cents=r["minimum_purchase_cents"],
                minimum_redemption_points=r["minimum_redemption_points"],
                self_enrollment=r["allow_self_enrollment"],
                cross_location=r["allow_cross_location_redemption"],
                rewards=rewards.get(r["program_id"], []),
                cards=cards.get(r["id"], []),
            )
        )
    return merchants


# ---------------------------------------------------------------------------------------------
# What customers do

_FIRST_NAMES: Final[dict[Locale, tuple[str, ...]]] = {
    Locale.FR: ("Camille", "Léa", "Chloé", "Manon", "Lucas", "Hugo", "Louis", "Théo", "Zoé"),
    Locale.DE: ("Anna", "Lena", "Mia", "Jonas", "Felix", "Lukas", "Paul", "Sophie", "Jürgen"),
    Locale.LB: ("Mia", "Emma", "Léa", "Noah", "Ben", "Gabriel", "Liam", "Charlotte", "Tom"),
    Locale.EN: ("Olivia", "Amelia", "Isla", "Oliver", "George", "Harry", "Jack", "Grace"),
}
_LAST_NAMES: Final[dict[Locale, tuple[str, ...]]] = {
    Locale.FR: ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Petit", "Durand", "Lefèvre"),
    Locale.DE: ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner"),
    Locale.LB: ("Schmit", "Muller", "Weber", "Hoffmann", "Wagner", "Thill", "Schroeder"),
    Locale.EN: ("Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Evans"),
}
# Luxembourg: French, German and Luxembourgish, and English for the many who live there.
_LOCALES: Final = (Locale.FR, Locale.DE, Locale.LB, Locale.EN)
_LOCALE_WEIGHTS: Final = (4, 2, 2, 2)
# RFC 2606 names: simulated customers must never mail real people.
_DOMAINS: Final = ("example.com", "example.net", "example.org", "mail.example")
# Median basket in cents and its spread, by what the program rewards: a coffee, a shop.
_BASKETS: Final = {"stamps": (450, 0.35), "hybrid": (1200, 0.6), "points": (3500, 0.7)}
_UNKNOWN_CARD_SHARE: Final = 0.02
_CARD_CHARS: Final = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


@dataclass
class _Order:
    merchant: SimMerchant
    store_code: str
    order_reference: str
    amount_cents: int
    card: CardRef
    at: float


class Traffic:
    """Decides the next event; plain Python over the catalogue, so it is tested without I/O.

    ``clock`` is monotonic seconds (only used to let new cards and orders settle).
    """

    def __init__(
        self,
        merchants: list[SimMerchant],
        rng: random.Random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rng = rng
        self.clock = clock
        self.merchants: list[SimMerchant] = []
        self._orders: deque[_Order] = deque(maxlen=_RECENT_ORDERS)
        self._sequence = 0
        self.replace_merchants(merchants)

    def replace_merchants(self, merchants: list[SimMerchant]) -> None:
        """Take fresh balances from the database, keeping the new customers not in it yet."""
        known = {c.email for m in merchants for c in m.cards if c.email}
        now = self.clock()
        pending: dict[str, list[SimCard]] = {}
        for m in self.merchants:
            pending[m.code] = [
                c
                for c in m.cards
                if c.card_number is None
                and c.email not in known
                and now - c.ready_at < 6 * REFRESH_S
            ]
        for m in merchants:
            m.cards.extend(pending.get(m.code, []))
        self.merchants = merchants

    def next_event(self, now: datetime) -> InputMessage:
        """The next message, as if it happened at ``now``."""
        merchant = self.rng.choices(self.merchants, [len(m.stores) for m in self.merchants])[0]
        ready = self._ready_cards(merchant, probes=20)
        enrol_weight = 0.5 if len(merchant.cards) < 10 else 0.1
        kind = self.rng.choices(KINDS, (enrol_weight, 0.74, 0.06, 0.10))[0]
        if kind == RETURN:
            message: InputMessage | None = self._return(now)
            if message is not None:
                return message
            kind = PURCHASE
        if kind == REDEEM:
            message = self._redeem(merchant, now)
            if message is not None:
                return message
            kind = PURCHASE
        if kind == PURCHASE and ready:
            return self._purchase(merchant, self.rng.choice(ready), now)
        return self._enrol(merchant, now)

    def _ready_cards(self, merchant: SimMerchant, probes: int) -> list[SimCard]:
        if not merchant.cards:
            return []
        now = self.clock()
        picked = [self.rng.choice(merchant.cards) for _ in range(probes)]
        return [c for c in picked if c.ready_at <= now]

    def _store_for(self, merchant: SimMerchant, card: SimCard) -> str:
        if not merchant.cross_location and card.store_code in merchant.stores:
            assert card.store_code is not None
            return card.store_code
        return self.rng.choice(merchant.stores)

    def _ref(self, card: SimCard) -> CardRef:
        if card.card_number is not None and (card.email is None or self.rng.random() < 0.8):
            return CardRef(card_number=card.card_number)
        assert card.email is not None
        return CardRef(email=card.email)

    def _enrol(self, merchant: SimMerchant, now: datetime) -> EnrollmentRequested:
        locale = self.rng.choices(_LOCALES, _LOCALE_WEIGHTS)[0]
        first = self.rng.choice(_FIRST_NAMES[locale])
        last = self.rng.choice(_LAST_NAMES[locale])
        self._sequence += 1
        tag = f"{self.rng.getrandbits(24):06x}{self._sequence}"
        email = f"{_ascii(first)}.{_ascii(last)}.{tag}@{self.rng.choice(_DOMAINS)}"
        store = self.rng.choice(merchant.stores)
        channels = [EnrollmentChannel.STAFF, EnrollmentChannel.ONLINE]
        if merchant.self_enrollment:
            channels.append(EnrollmentChannel.SELF)
        phone = None
        if self.rng.random() < 0.4:
            phone = f"+352 621 {self.rng.randrange(1000):03d} {self.rng.randrange(1000):03d}"
        merchant.cards.append(
            SimCard(
                card_number=None,
                email=email,
                store_code=None if merchant.cross_location else store,
                ready_at=self.clock() + NEW_CARD_READY_S,
            )
        )
        return EnrollmentRequested(
            event_id=uuid.uuid4(),
            type="enrollment.requested",
            occurred_at=now,
            store_code=store,
            customer=Customer(
                email=email, phone=phone, first_name=first, last_name=last, locale=locale
            ),
            channel=self.rng.choice(channels),
        )

    def _amount(self, merchant: SimMerchant) -> int:
        median, sigma = _BASKETS.get(merchant.program_type, _BASKETS["hybrid"])
        cents = int(self.rng.lognormvariate(0, sigma) * median / 10) * 10
        if cents < merchant.minimum_purchase_cents and self.rng.random() < 0.9:
            cents = merchant.minimum_purchase_cents + self.rng.randrange(0, 500, 10)
        return max(cents, 50)

    def _lines(self, amount: int) -> tuple[list[PurchaseLine], int]:
        """A basket of ``amount`` as café lines, now and then with a gift card on top (which
        earns nothing where it is a non-earning category); the basket and its earning part."""
        lines: list[PurchaseLine] = []
        left = amount
        while left > 0:
            sku, category, low, high = self.rng.choice(_MENU)
            quantity = self.rng.choice((1, 1, 1, 2))
            cents = min(left, quantity * self.rng.randrange(low, high + 1, 10))
            lines.append(
                PurchaseLine(sku=sku, category=category, quantity=quantity, amount_cents=cents)
            )
            left -= cents
        if self.rng.random() < _GIFT_CARD_SHARE:
            gift = PurchaseLine(
                sku="gift-card-25", category="gift-card", quantity=1, amount_cents=2500
            )
            return [*lines, gift], amount + 2500
        return lines, amount

    def _purchase(self, merchant: SimMerchant, card: SimCard, now: datetime) -> PurchaseCompleted:
        store = self._store_for(merchant, card)
        earning = self._amount(merchant)
        lines, amount = self._lines(earning)
        stamps = 2 if merchant.has_stamps and self.rng.random() < 0.1 else 1
        in_store = self.rng.random() < 0.75
        order = f"SIM-{now:%Y%m%d}-{self.rng.getrandbits(40):010x}"
        if self.rng.random() < _UNKNOWN_CARD_SHARE:
            # A card of another merchant, or a mistyped number: refused, and never returned
            # (a return of an order the engine did not record would be held for good).
            ref = CardRef(card_number="".join(self.rng.choices(_CARD_CHARS, k=12)))
        else:
            ref = self._ref(card)
            # What the card earns at least (campaigns may add more): the gift card earns nothing.
            if earning >= merchant.minimum_purchase_cents and merchant.has_points:
                card.points += earning * merchant.points_per_euro // 100
            if earning >= merchant.minimum_purchase_cents and merchant.has_stamps:
                card.stamps += stamps
            if self.rng.random() < _RETURNABLE_SHARE:
                self._orders.append(_Order(merchant, store, order, amount, ref, self.clock()))
        return PurchaseCompleted(
            event_id=uuid.uuid4(),
            type="purchase.completed",
            occurred_at=now,
            store_code=store,
            order_reference=order,
            amount_cents=amount,
            currency=merchant.currency,
            card=ref,
            channel=PurchaseChannel.IN_STORE if in_store else PurchaseChannel.ONLINE,
            stamps=stamps,
            staff_ref=f"till-{self.rng.randint(1, 4)}" if in_store else None,
            lines=tuple(lines),
        )

    def _return(self, now: datetime) -> PurchaseReturned | None:
        settled = self.clock() - RETURN_AFTER_S
        if not self._orders or self._orders[0].at > settled:
            return None
        order = self._orders.popleft()
        share = 1.0 if self.rng.random() < 0.3 else self.rng.uniform(0.1, 0.6)
        refund = max(1, int(order.amount_cents * share))
        return PurchaseReturned(
            event_id=uuid.uuid4(),
            type="purchase.returned",
            occurred_at=now,
            store_code=order.store_code,
            order_reference=order.order_reference,
            refund_amount_cents=refund,
            card=order.card,
        )

    def _redeem(self, merchant: SimMerchant, now: datetime) -> RewardRedeemRequested | None:
        for card in self._ready_cards(merchant, _REDEEM_PROBES):
            reward: StampsReward | PointsReward | None = None
            if merchant.has_stamps and card.stamps >= merchant.stamps_target:
                reward = StampsReward(kind="stamps")
                card.stamps -= merchant.stamps_target
            elif merchant.rewards and merchant.program_type in ("points", "hybrid"):
                affordable = [
                    (code, points)
                    for code, points in merchant.rewards
                    if points <= card.points and card.points >= merchant.minimum_redemption_points
                ]
                if affordable:
                    code, points = self.rng.choice(affordable)
                    reward = PointsReward(kind="points", reward_id=code)
                    card.points -= points
            if reward is not None:
                return RewardRedeemRequested(
                    event_id=uuid.uuid4(),
                    type="reward.redeem_requested",
                    occurred_at=now,
                    store_code=self._store_for(merchant, card),
                    card=self._ref(card),
                    reward=reward,
                )
        return None


# ---------------------------------------------------------------------------------------------
# Pacing


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up; ``clock`` is monotonic seconds."""

    def __init__(
        self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.tokens = 0.0
        self._last = clock()

    def take(self) -> int:
        """The whole tokens available now, taken."""
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self._last) * self.rate)
        self._last = now
        whole = int(self.tokens)
        self.tokens -= whole
        return whole

    def wait(self) -> float:
        """Seconds until the next whole token."""
        return max(0.0, (1.0 - self.tokens) / self.rate)


# ---------------------------------------------------------------------------------------------
# Running


class SimulationError(Exception):
    """The simulation cannot run as asked (Kafka away, an unknown merchant code)."""


class UnknownMerchants(SimulationError):
    """Merchant codes given by name that have no live store or active program."""


class DemoFileError(SimulationError):
    """The demo provisioning file cannot be read or names no merchant."""


@dataclass(frozen=True)
class MerchantChoice:
    """The merchants the simulator may send to, and where that list came from."""

    codes: tuple[str, ...]
    source: str
    """``--merchant``, or the path of the demo file."""
    named: bool
    """Named on the command line: each must exist now (a typo is an error). The demo
    file's merchants are waited for instead, as ``loyalty run`` may start before them."""


def demo_merchant_codes(path: Path = DEMO_FILE) -> tuple[str, ...]:
    """The merchant codes of a provisioning file (the demo's by default), in its order.

    The file is read and validated as ``loyalty provision`` reads it, so the codes are the
    ones it provisions; raises :class:`DemoFileError` when it cannot be read.
    """
    try:
        spec = load_file(path)
    except ProvisioningError as exc:
        raise DemoFileError(f"cannot read the demo merchants from {path}: {exc}") from None
    codes = tuple(dict.fromkeys(m.code for m in spec.merchants))
    if not codes:
        raise DemoFileError(f"{path} names no merchant")
    return codes


def choose_merchants(named: Sequence[str] = (), demo_file: Path = DEMO_FILE) -> MerchantChoice:
    """The merchants named with ``--merchant``, else those of the demo file."""
    if named:
        return MerchantChoice(tuple(dict.fromkeys(named)), "--merchant", named=True)
    return MerchantChoice(demo_merchant_codes(demo_file), str(demo_file), named=False)


@dataclass
class SimReport:
    """What a simulation published."""

    published: Counter[str] = field(default_factory=Counter)
    """By message type."""
    failed: int = 0
    seconds: float = 0.0
    merchants: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Messages the broker acknowledged."""
        return sum(self.published.values())

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready values (``loyalty simulate --json``)."""
        return {
            "published": self.total,
            "by_type": {kind: self.published.get(kind, 0) for kind in KINDS},
            "failed": self.failed,
            "seconds": round(self.seconds, 3),
            "rate": round(self.total / self.seconds, 2) if self.seconds else 0.0,
            "merchants": self.merchants,
        }


async def simulate(
    settings: Settings,
    rate: float,
    *,
    merchants: MerchantChoice,
    duration: float | None = None,
    seed: int | None = None,
    stop: asyncio.Event | None = None,
    on_waiting: Callable[[], None] | None = None,
    on_start: Callable[[list[str]], None] | None = None,
) -> SimReport:
    """Publish simulated traffic at ``rate`` events/s until ``stop`` is set or for ``duration``.

    Only the merchants of ``merchants`` get traffic (see :func:`choose_merchants`).
    ``duration`` counts from the first event (connecting is not traffic); ``seconds`` of the
    report likewise. With none of them to simulate yet, it waits for one to be provisioned
    (calling ``on_waiting`` once), so ``loyalty run`` can start it before ``loyalty
    provision``; merchants named on the command line must exist: a typo is an error, not a
    silent wait. ``on_start`` gets the codes traffic goes to, when it starts.
    """
    stop = stop or asyncio.Event()
    deadline = time.monotonic() + duration if duration is not None else None
    report = SimReport()
    codes = merchants.codes
    conn: asyncpg.Connection = await asyncpg.connect(settings.db_url)
    try:
        sims = await _first_merchants(conn, merchants, stop, deadline, on_waiting)
        if not sims:
            return report
        report.merchants = [m.code for m in sims]
        log.info("simulate_merchants", merchants=report.merchants, source=merchants.source)
        if on_start is not None:
            on_start(report.merchants)
        traffic = Traffic(sims, random.Random(seed))
        producer = AIOKafkaProducer(**producer_config(settings, "simulate"), linger_ms=5)
        try:
            await producer.start()
        except Exception as exc:
            await producer.stop()
            raise SimulationError(f"cannot reach Kafka at {settings.bootstrap}: {exc}") from exc
        started = time.monotonic()
        deadline = started + duration if duration is not None else None
        try:
            await _run(conn, producer, traffic, rate, codes, stop, deadline, report)
        finally:
            report.seconds = time.monotonic() - started
            await producer.stop()
    finally:
        await conn.close()
    return report


async def _first_merchants(
    conn: asyncpg.Connection,
    choice: MerchantChoice,
    stop: asyncio.Event,
    deadline: float | None,
    on_waiting: Callable[[], None] | None,
) -> list[SimMerchant]:
    codes = choice.codes
    merchants = await load_merchants(conn, codes)
    if choice.named:
        found = {m.code for m in merchants}
        missing = [c for c in codes if c not in found]
        if missing:
            raise UnknownMerchants(
                f"no live merchant with a store and an active program: {', '.join(missing)}"
            )
    waited = False
    while not merchants:
        if not waited and on_waiting is not None:
            on_waiting()
        waited = True
        if await _sleep(stop, WAIT_FOR_MERCHANTS_S, deadline):
            return []
        merchants = await load_merchants(conn, codes)
    return merchants


async def _sleep(stop: asyncio.Event, seconds: float, deadline: float | None) -> bool:
    """Wait ``seconds`` (never past ``deadline``); True when it is time to stop."""
    if deadline is not None:
        seconds = min(seconds, deadline - time.monotonic())
    if seconds > 0:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set() or (deadline is not None and time.monotonic() >= deadline)


async def _run(
    conn: asyncpg.Connection,
    producer: AIOKafkaProducer,
    traffic: Traffic,
    rate: float,
    codes: Sequence[str],
    stop: asyncio.Event,
    deadline: float | None,
    report: SimReport,
) -> None:
    bucket = TokenBucket(rate, burst=max(1.0, rate / 10))
    pending: list[tuple[str, asyncio.Future[Any]]] = []
    refresh_at = time.monotonic() + REFRESH_S
    last_log = time.monotonic()
    while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
        count = bucket.take()
        if count == 0:
            if await _sleep(stop, bucket.wait(), deadline):
                break
            continue
        now = datetime.now(UTC)
        for _ in range(count):
            message = traffic.next_event(now)
            record = record_for(message)
            future = await producer.send(record.topic, value=record.value, key=record.key)
            pending.append((message.type, future))
        if len(pending) >= 1000 or time.monotonic() - last_log > 30:
            await _settle(pending, report)
        if time.monotonic() - last_log > 30:
            last_log = time.monotonic()
            log.info("simulated", total=report.total, failed=report.failed, **report.published)
        if time.monotonic() >= refresh_at:
            refresh_at = time.monotonic() + REFRESH_S
            fresh = await load_merchants(conn, codes)
            if fresh:
                traffic.replace_merchants(fresh)
    await _settle(pending, report)


async def _settle(pending: list[tuple[str, asyncio.Future[Any]]], report: SimReport) -> None:
    for kind, future in pending:
        try:
            await future
            report.published[kind] += 1
        except Exception as exc:  # counted and logged; the demo goes on
            report.failed += 1
            log.warning("simulate_send_failed", type=kind, error=repr(exc)[:200])
    pending.clear()
