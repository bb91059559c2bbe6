"""Statistics pages with their charts, and the pipeline page: consumer lag (Kafka up and down),
outbox backlog, last processed event, dead letters and their re-drive, held returns."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from nicegui import ui
from nicegui.testing import User
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from admin_ui.runtime import raw_connection
from core.settings import Settings, get_settings
from domain.engine.batch import Inbound, process_batch
from domain.models import (
    DeadLetter,
    HeldReturn,
    LedgerEntry,
    LedgerType,
    LoyaltyCard,
    LoyaltyProgram,
    Merchant,
    PointLot,
    Purchase,
    TierChange,
)
from streams.commands import to_command
from streams.inputs import PurchaseCompleted
from streams.topics import Topic
from tests.admin_ui.helpers import (
    ALICE,
    MAIN_FILE,
    PLATFORM,
    WAIT,
    enrol,
    set_value,
    sign_in,
    status_of,
    texts,
)

pytestmark = MAIN_FILE
LUXEMBOURG = ZoneInfo("Europe/Luxembourg")  # the seeded merchants' time zone


async def _purchase(db: AsyncSession, store: str, number: str, cents: int) -> None:
    now = datetime.now(UTC)
    message = PurchaseCompleted.model_validate(
        {
            "event_id": str(uuid.uuid4()),
            "type": "purchase.completed",
            "occurred_at": now.isoformat(),
            "store_code": store,
            "order_reference": f"o-{uuid.uuid4().hex[:8]}",
            "amount_cents": cents,
            "card": {"card_number": number},
        }
    )
    await process_batch(
        await raw_connection(db), [Inbound(Topic.PURCHASES.value, to_command(message))], now
    )
    await db.commit()


def _chart(user: User, marker: str) -> dict[str, Any]:
    (chart,) = user.find(marker=marker).elements
    assert isinstance(chart, ui.echart)
    return chart.options


@pytest.fixture
async def activity(people: dict[str, Any], db: AsyncSession) -> dict[str, Any]:
    """Two cards of merchant a with purchases at its first store, one card of merchant b."""
    store = people["a_store_codes"][0]
    for email, cents in (("x@example.com", 1000), ("y@example.com", 550)):
        await _purchase(db, store, await enrol(db, store, email), cents)
    await enrol(db, people["b_store_codes"][0], "z@example.com")
    return people


async def test_platform_statistics_with_their_charts(
    user: User, activity: dict[str, Any], db: AsyncSession
) -> None:
    db.add(Merchant(code="bare", name="No program yet"))  # counted, and charted as zeros
    await db.commit()
    await sign_in(user, PLATFORM, to="/stats")
    await user.should_see(marker="stats-cards", retries=WAIT)
    assert texts(user, "stats-cards") == ["3"]
    assert texts(user, "stats-stamps-issued") == ["2"]
    assert texts(user, "stats-points-issued") == ["155"]
    await user.should_see(activity["a_code"])
    await user.should_see(activity["b_code"])
    await user.should_see("bare")
    stamps = _chart(user, "chart-stamps")
    assert len(stamps["xAxis"]["data"]) == 30
    assert sum(stamps["series"][0]["data"]) == 2
    assert sum(_chart(user, "chart-points")["series"][0]["data"]) == 155
    assert _chart(user, "chart-liability")["series"][0]["data"][-1] > 0


async def test_platform_liability_is_added_up_per_currency_never_across(
    user: User, activity: dict[str, Any], db: AsyncSession
) -> None:
    await db.execute(
        update(LoyaltyProgram)
        .where(LoyaltyProgram.merchant_id == activity["b"])
        .values(currency="CHF")
    )
    await db.commit()
    await sign_in(user, PLATFORM, to="/stats")
    await user.should_see(marker="stats-cards", retries=WAIT)
    (liability,) = texts(user, "stats-liability")
    assert liability.startswith("1.55\u00a0EUR · ") and liability.endswith("\u00a0CHF")
    await user.should_see("Liability in each merchant's currency, added up per currency")
    # The liability chart holds the merchants of the main currency only (EUR: A's 1.55).
    assert _chart(user, "chart-liability")["series"][0]["data"][-1] == 1.55


async def test_statistics_come_after_the_page_is_sent(user: User, activity: dict[str, Any]) -> None:
    await sign_in(user, ALICE)
    # The page as sent: its frame and grey placeholders, no figure computed yet.
    status, body = await status_of(user, f"/stats/merchants/{activity['a']}")
    assert status == 200
    assert "stats-content-loading" in body and "stats-cards" not in body
    await user.open(f"/stats/merchants/{activity['a']}")
    await user.should_see(marker="stats-cards", retries=WAIT)
    await user.should_not_see(marker="stats-content-loading")
    # Figures and money in the admin's language (English here), the liability in EUR.
    assert texts(user, "stats-points-issued") == ["155"]
    assert texts(user, "stats-liability") == ["1.55\u00a0EUR"]
    # The charts' axes and tooltips format their numbers too.
    liability = _chart(user, "chart-liability")
    assert '","' in liability["yAxis"]["axisLabel"][":formatter"]
    assert "EUR" in liability["tooltip"][":valueFormatter"]
    # Another merchant's statistics stay "not found", before anything is loaded.
    status, _ = await status_of(user, f"/stats/merchants/{activity['b']}")
    assert status == 404


async def test_merchant_statistics_per_store_over_90_days(
    user: User, activity: dict[str, Any]
) -> None:
    await sign_in(user, ALICE, to="/stats")  # a merchant admin lands on their merchant
    await user.should_see(marker="stats-stores", retries=WAIT)
    assert texts(user, "stats-cards") == ["2"]
    await user.should_see(activity["a_store_codes"][0])
    await user.should_not_see(activity["b_code"])
    set_value(user, "stats-period", 90)
    await asyncio.sleep(0.5)
    assert len(_chart(user, "chart-stamps")["xAxis"]["data"]) == 90


async def test_program_statistics(user: User, activity: dict[str, Any]) -> None:
    await sign_in(user, ALICE, to=f"/stats/programs/{activity['a_program']}")
    await user.should_see(marker="chart-liability", retries=WAIT)
    assert texts(user, "stats-points-issued") == ["155"]
    # A program without tiers: no tier section.
    await user.should_not_see("Tiers")
    await user.should_not_see(marker="chart-tiers")


async def _tiers(db: AsyncSession, activity: dict[str, Any]) -> int:
    """Merchant a's program gains tiers; its two cards, issued 100 days ago, were in the first
    tier until its first card moved to silver 5 days ago with a purchase whose multiplier
    added 25 points. How many days the first card has been silver (this day included)."""
    await db.execute(
        update(LoyaltyProgram)
        .where(LoyaltyProgram.id == activity["a_program"])
        .values(
            tiers=[
                {"id": "bronze", "name": "Bronze", "threshold_points": 0, "multiplier": 1},
                {"id": "silver", "name": "Silver", "threshold_points": 100, "multiplier": 1.25},
                {"id": "gold", "name": "Gold", "threshold_points": 1000, "multiplier": 1.5},
            ]
        )
    )
    now = datetime.now(UTC)
    cards = (
        await db.scalars(
            select(LoyaltyCard)
            .where(LoyaltyCard.merchant_id == activity["a"])
            .order_by(LoyaltyCard.id)
        )
    ).all()
    await db.execute(
        update(LoyaltyCard)
        .where(LoyaltyCard.merchant_id == activity["a"])
        .values(created_at=now - timedelta(days=100))
    )
    moved = now - timedelta(days=5)
    db.add(
        TierChange(
            card_id=cards[0].id,
            merchant_id=activity["a"],
            from_tier="bronze",
            to_tier="silver",
            qualifying_points=125,
            occurred_at=moved,
        )
    )
    await db.execute(
        update(Purchase)
        .where(Purchase.card_id == cards[0].id)
        .values(tier="silver", tier_points=25)
    )
    await db.commit()
    return (now.astimezone(LUXEMBOURG).date() - moved.astimezone(LUXEMBOURG).date()).days + 1


async def test_members_per_tier_and_what_the_multipliers_added(
    user: User, activity: dict[str, Any], db: AsyncSession
) -> None:
    silver_days = await _tiers(db, activity)
    await sign_in(user, ALICE, to=f"/stats/merchants/{activity['a']}")
    await user.should_see(marker="chart-tiers", retries=WAIT)
    (table,) = user.find(marker="stats-tiers").elements
    cells = [e.text for e in table.descendants() if isinstance(e, ui.label)]
    assert cells == [
        *["Tier", "Members today", "Points added, last 90 days", "Points added in all"],
        *["Bronze", "1", "0", "0"],
        *["Silver", "1", "25", "25"],
        *["Gold", "0", "0", "0"],
    ]
    chart = _chart(user, "chart-tiers")
    assert len(chart["xAxis"]["data"]) == 90
    assert chart["xAxis"]["data"][-1] == datetime.now(LUXEMBOURG).date().isoformat()
    series = {s["name"]: s["data"] for s in chart["series"]}
    assert list(series) == ["Bronze", "Silver", "Gold"]
    assert series["Silver"] == [0] * (90 - silver_days) + [1] * silver_days
    assert series["Bronze"] == [2] * (90 - silver_days) + [1] * silver_days
    assert series["Gold"] == [0] * 90


async def test_program_statistics_show_the_tiers(
    user: User, activity: dict[str, Any], db: AsyncSession
) -> None:
    await _tiers(db, activity)
    await sign_in(user, ALICE, to=f"/stats/programs/{activity['a_program']}")
    await user.should_see(marker="stats-tiers", retries=WAIT)
    assert [s["data"][-1] for s in _chart(user, "chart-tiers")["series"]] == [1, 1, 0]


async def _lots_due_soon(db: AsyncSession, activity: dict[str, Any]) -> None:
    """Merchant a's first card: 40 points due in 10 days, 25 in 60 days, 15 pending; 31 points
    expired today (its purchases issued 155 this month)."""
    card = (
        await db.scalars(
            select(LoyaltyCard)
            .where(LoyaltyCard.merchant_id == activity["a"])
            .order_by(LoyaltyCard.id)
            .limit(1)
        )
    ).one()
    await db.execute(
        update(LoyaltyProgram)
        .where(LoyaltyProgram.id == activity["a_program"])
        .values(points_expiration_days=365)
    )
    now = datetime.now(UTC)
    lots: list[tuple[int, datetime | None, bool]] = [
        (40, now + timedelta(days=10), False),
        (25, now + timedelta(days=60), False),
        (15, None, True),
    ]
    for n, (points, expires, pending) in enumerate(lots, start=100):
        db.add(
            PointLot(
                card_id=card.id,
                lot_no=n,
                merchant_id=card.merchant_id,
                points=points,
                remaining=points,
                earned_at=now,
                releases_at=now + timedelta(days=3) if pending else None,
                expires_at=expires,
                pending=pending,
            )
        )
    db.add(
        LedgerEntry(
            card_id=card.id,
            merchant_id=card.merchant_id,
            entry_type=LedgerType.POINTS_EXPIRED,
            stamps_delta=0,
            points_delta=-31,
            stamp_count_after=card.stamp_count,
            points_balance_after=card.points_balance,
            occurred_at=now,
        )
    )
    await db.commit()


async def test_points_pending_expiring_and_breakage_of_a_merchant(
    user: User, activity: dict[str, Any], db: AsyncSession
) -> None:
    await _lots_due_soon(db, activity)
    await sign_in(user, ALICE, to=f"/stats/merchants/{activity['a']}")
    await user.should_see(marker="chart-expiry", retries=WAIT)
    assert texts(user, "stats-points-pending") == ["15"]
    assert texts(user, "stats-expiring-30") == ["40"]
    assert texts(user, "stats-expiring-90") == ["65"]
    weeks = _chart(user, "chart-expiry")
    assert len(weeks["xAxis"]["data"]) in (13, 14)  # from this week's Monday, 90 days on
    assert sum(weeks["series"][0]["data"]) == 65
    set_value(user, "expiry-period", "month")
    await asyncio.sleep(0.5)
    months = _chart(user, "chart-expiry")
    assert len(months["xAxis"]["data"]) in (3, 4)
    assert months["xAxis"]["data"][0] == datetime.now(LUXEMBOURG).strftime("%Y-%m")
    assert sum(months["series"][0]["data"]) == 65
    # This month first: 31 expired of 155 issued.
    (table,) = user.find(marker="stats-breakage").elements
    cells = [e.text for e in table.descendants() if isinstance(e, ui.label)]
    assert cells[4:8] == [datetime.now(LUXEMBOURG).strftime("%Y-%m"), "155", "31", "20.0%"]
    assert cells[8:12][1:] == ["0", "0", "—"]
    assert len(cells) == 4 * 13


async def test_program_statistics_show_the_points_pending_and_expiring(
    user: User, activity: dict[str, Any], db: AsyncSession
) -> None:
    await _lots_due_soon(db, activity)
    await sign_in(user, ALICE, to=f"/stats/programs/{activity['a_program']}")
    await user.should_see(marker="stats-breakage", retries=WAIT)
    assert texts(user, "stats-expiring-90") == ["65"]


async def test_the_pipeline_shows_lag_outbox_and_the_last_event(
    user: User, activity: dict[str, Any]
) -> None:
    await sign_in(user, PLATFORM, to="/pipeline")
    await user.should_see(marker="lag-total", retries=WAIT)
    await user.should_see(marker="lag-table")
    await user.should_see("loyalty.purchases.v1")
    # Nothing relays in these tests: every result and wallet update is still in the outbox.
    (unsent,) = texts(user, "outbox-unsent")
    assert int(unsent.split()[0]) >= 5
    (last,) = texts(user, "last-event")
    assert "applied" in last


@pytest.fixture
def kafka_down(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Point the app at a port where no broker listens (set before the app starts)."""
    monkeypatch.setenv("LOYALTY_KAFKA_BOOTSTRAP", "127.0.0.1:9")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


async def test_kafka_unreachable_is_a_message_not_an_error(
    kafka_down: None, user: User, people: dict[str, Any]
) -> None:
    await sign_in(user, PLATFORM, to="/pipeline")
    await user.should_see(marker="lag-error", retries=WAIT * 2)
    (message,) = texts(user, "lag-error")
    assert "127.0.0.1:9" in message
    await user.should_see(marker="outbox-unsent")  # the rest of the page is there


async def test_a_dead_letter_is_shown_and_re_driven_to_its_source_topic(
    user: User, people: dict[str, Any], db: AsyncSession, stack: Settings
) -> None:
    marker = uuid.uuid4().hex
    payload = json.dumps({"type": "purchase.completed", "note": marker})
    letter = DeadLetter(
        event_id=uuid.uuid4(),
        source_topic=Topic.PURCHASES.value,
        partition=0,
        offset=41,
        key="1234-5678-9012",
        payload=payload,
        error="event_id: required",
    )
    db.add(letter)
    await db.commit()
    letter_id = letter.id
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        # The topic has the stack's partition count (Settings.input_partitions).
        partitions = [
            TopicPartition(Topic.PURCHASES.value, p) for p in range(stack.input_partitions)
        ]
        ends = await consumer.end_offsets(partitions)
        consumer.assign(partitions)
        for tp, offset in ends.items():
            consumer.seek(tp, offset)

        await sign_in(user, PLATFORM, to="/pipeline")
        await user.should_see(marker=f"dlq-redrive-{letter_id}", retries=WAIT)
        await user.should_see("event_id: required")
        user.find(marker=f"dlq-redrive-{letter_id}").click()
        await user.should_see(marker="confirm-yes", retries=WAIT)
        user.find(marker="confirm-yes").click()
        await user.should_see(f"Re-driven to {Topic.PURCHASES.value}.", retries=WAIT * 2)

        found = None
        deadline = asyncio.get_running_loop().time() + 20
        while found is None and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    if record.value and marker.encode() in record.value:
                        found = record
        assert found is not None, "the payload never reached the source topic"
        assert found.value == payload.encode()
        assert found.key == b"1234-5678-9012"
    finally:
        await consumer.stop()
    db.expire_all()
    stored = await db.get(DeadLetter, letter_id)
    assert stored is not None and stored.redriven_at is not None


async def test_held_returns_are_listed(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    db.add(
        HeldReturn(
            merchant_id=people["a"],
            store_id=people["a_stores"][0],
            order_reference="ORDER-HELD-7",
            source_event_id=uuid.uuid4(),
            payload={"refund_amount_cents": 450},
        )
    )
    await db.commit()
    await sign_in(user, PLATFORM, to="/pipeline")
    await user.should_see("ORDER-HELD-7", retries=WAIT)
    await user.should_see("4.50\xa0EUR")  # formatting.money: the amount and code stay together
    assert await db.scalar(select(HeldReturn.applied_at)) is None
