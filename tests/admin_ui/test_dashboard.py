"""The dashboard (issue 18, item 1): its figures against known events, today against yesterday
and this month against the same days of last month; the alerts; and who sees what (a
merchant admin their merchant only, whatever the URL says; a platform admin any, picked).

The figures' tests fix the dashboard's "now" (``scope(..., at=)``) on 20 March 2026 at noon in
Luxembourg, and date the events (and the cards' creation) around it through the engine, as
the worker applies them; the page's tests use today's events.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from nicegui import ui
from nicegui.testing import User
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from admin_ui.loading import deferred
from admin_ui.queries import dashboard, dashboard_alerts
from admin_ui.queries.admins import Principal
from admin_ui.runtime import raw_connection
from core.enums import CampaignStatus
from domain.engine.batch import Inbound, process_batch
from domain.models import Campaign, DeadLetter, LoyaltyProgram, Store, UserRole
from streams.commands import to_command
from streams.parsing import ParseError, parse_input
from streams.topics import Topic
from tests.admin_ui.helpers import (
    ALICE,
    BOB,
    MAIN_FILE,
    PLATFORM,
    WAIT,
    sign_in,
    status_of,
    texts,
)

pytestmark = MAIN_FILE
LUXEMBOURG = ZoneInfo("Europe/Luxembourg")  # the seeded merchants' time zone
AT = datetime(2026, 3, 20, 12, 0, tzinfo=LUXEMBOURG)
PLATFORM_ADMIN = Principal(0, "root", UserRole.PLATFORM_ADMIN, None)


def _local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=LUXEMBOURG)


async def _apply(db: AsyncSession, topic: Topic, body: dict[str, Any], at: datetime) -> None:
    """One input message through the engine, as the worker applies it (committed)."""
    body = {"event_id": str(uuid.uuid4()), "occurred_at": at.isoformat(), **body}
    message = parse_input(topic.value, json.dumps(body).encode())
    assert not isinstance(message, ParseError), message
    outcome = await process_batch(
        await raw_connection(db), [Inbound(topic.value, to_command(message))], at
    )
    await db.commit()
    assert outcome.results[0].status == "applied", outcome.results


async def _enrol(db: AsyncSession, store: str, email: str, at: datetime) -> None:
    """A card issued at ``at``, dated then (the engine dates a card by the database's clock)."""
    await _apply(
        db,
        Topic.ENROLLMENTS,
        {
            "type": "enrollment.requested",
            "store_code": store,
            "customer": {"email": email},
            "channel": "staff",
        },
        at,
    )
    await db.execute(
        text(
            "UPDATE loyalty_cards c SET created_at = :at FROM customers u"
            " WHERE u.id = c.customer_id AND u.email = :email"
        ),
        {"at": at, "email": email},
    )
    await db.commit()


async def _buy(db: AsyncSession, store: str, email: str, cents: int, at: datetime) -> None:
    await _apply(
        db,
        Topic.PURCHASES,
        {
            "type": "purchase.completed",
            "store_code": store,
            "order_reference": f"o-{uuid.uuid4().hex[:12]}",
            "amount_cents": cents,
            "stamps": 1,
            "card": {"email": email},
        },
        at,
    )


async def _redeem(db: AsyncSession, store: str, email: str, at: datetime) -> None:
    await _apply(
        db,
        Topic.REDEMPTIONS,
        {
            "type": "reward.redeem_requested",
            "store_code": store,
            "card": {"email": email},
            "reward": {"kind": "points", "reward_id": "coffee"},
        },
        at,
    )


@pytest.fixture
async def march(people: dict[str, Any], db: AsyncSession) -> dict[str, Any]:
    """Merchant a's cards around 20 March 2026 (a point is worth a cent, a stamp 35 cents):

    - ann: enrolled 5 Feb; buys 10.00 EUR on 5 Feb, 5.00 on 10 Feb, 2.00 on 25 Feb, 10.00 on
      20 Mar, and redeems a coffee (50 points) on 20 Mar;
    - ben: enrolled 19 Mar, buys 10.00 that day;
    - cat: enrolled 20 Mar, buys 3.00 and 7.00 that day;
    - merchant b's card buys 50.00 on 20 Mar (never in a's figures).
    """
    await db.execute(
        update(LoyaltyProgram)
        .where(LoyaltyProgram.id == people["a_program"])
        .values(stamps_reward_value_cents=350)
    )
    await db.commit()
    a, b = people["a_store_codes"][0], people["b_store_codes"][0]
    feb, mar = date(2026, 2, 1), date(2026, 3, 1)
    await _enrol(db, a, "ann@example.com", _local(feb.replace(day=5), 9))
    await _buy(db, a, "ann@example.com", 1000, _local(feb.replace(day=5), 10))
    await _buy(db, a, "ann@example.com", 500, _local(feb.replace(day=10), 10))
    await _buy(db, a, "ann@example.com", 200, _local(feb.replace(day=25), 10))
    await _enrol(db, a, "ben@example.com", _local(mar.replace(day=19), 9))
    await _buy(db, a, "ben@example.com", 1000, _local(mar.replace(day=19), 10))
    await _enrol(db, a, "cat@example.com", _local(mar.replace(day=20), 9))
    await _buy(db, a, "cat@example.com", 300, _local(mar.replace(day=20), 9, 10))
    await _buy(db, a, "cat@example.com", 700, _local(mar.replace(day=20), 9, 20))
    await _buy(db, a, "ann@example.com", 1000, _local(mar.replace(day=20), 10))
    await _redeem(db, a, "ann@example.com", _local(mar.replace(day=20), 10, 30))
    await _enrol(db, b, "bea@example.com", _local(mar.replace(day=20), 8))
    await _buy(db, b, "bea@example.com", 5000, _local(mar.replace(day=20), 8, 30))
    return people


async def _scope(db: AsyncSession, me: Principal, merchant_id: int) -> dashboard.Scope:
    found = await dashboard.scope(db, me, merchant_id, at=AT)
    assert found is not None
    return found


def _figures(f: dashboard.Figures) -> dict[str, Any]:
    return {
        "days": (f.first.isoformat(), f.last.isoformat()),
        "new": f.new_members,
        "active": f.active_cards,
        "visits": f.visits,
        "stamps": (f.stamps_issued, f.stamps_redeemed),
        "points": (f.points_issued, f.points_redeemed),
        "liability": f.liability_cents,
    }


async def test_today_against_yesterday_and_the_month_against_the_same_days_of_last_month(
    march: dict[str, Any], db: AsyncSession, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    scope = await _scope(db, PLATFORM_ADMIN, march["a"])
    assert (scope.today, scope.gives_stamps, scope.gives_points) == (date(2026, 3, 20), True, True)
    found = await dashboard.overview(db_sessions, scope)
    # Held at the end of each period: points at a cent, stamps at 350 / 10 cents.
    assert _figures(found.day.current) == {
        "days": ("2026-03-20", "2026-03-20"),
        "new": 1,
        "active": 2,  # ann and cat; ben did nothing today
        "visits": 3,
        "stamps": (3, 0),
        "points": (200, 50),
        "liability": (220 + 100 + 100) + 7 * 35,
    }
    assert _figures(found.day.previous) == {
        "days": ("2026-03-19", "2026-03-19"),
        "new": 1,
        "active": 1,
        "visits": 1,
        "stamps": (1, 0),
        "points": (100, 0),
        "liability": (170 + 100) + 4 * 35,
    }
    assert _figures(found.month.current) == {
        "days": ("2026-03-01", "2026-03-20"),
        "new": 2,
        "active": 3,
        "visits": 4,
        "stamps": (4, 0),
        "points": (300, 50),
        "liability": (220 + 100 + 100) + 7 * 35,
    }
    # 1 to 20 February: the purchase of the 25th is not in it.
    assert _figures(found.month.previous) == {
        "days": ("2026-02-01", "2026-02-20"),
        "new": 1,
        "active": 1,
        "visits": 2,
        "stamps": (2, 0),
        "points": (150, 0),
        "liability": 150 + 2 * 35,
    }
    # The chart: 30 days to today, the 25th of February's purchase in it.
    days = {d.day: d for d in found.days}
    assert (min(days), max(days), len(days)) == (date(2026, 2, 19), date(2026, 3, 20), 30)
    assert (days[date(2026, 2, 25)].visits, days[date(2026, 2, 25)].points_issued) == (1, 20)
    today = days[date(2026, 3, 20)]
    assert (today.visits, today.new_members, today.stamps_issued) == (3, 1, 3)
    assert (today.points_issued, today.points_redeemed) == (200, 50)
    assert sum(d.visits for d in found.days) == 5


async def test_on_the_first_of_march_the_chart_counts_the_visits_of_january_31st(
    people: dict[str, Any], db: AsyncSession, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    # The chart's 30 days begin before the first of last month: its first bar is read too.
    store = people["a_store_codes"][0]
    await _enrol(db, store, "jan@example.com", _local(date(2026, 1, 31), 9))
    await _buy(db, store, "jan@example.com", 1000, _local(date(2026, 1, 31), 10))
    at = datetime(2026, 3, 1, 12, 0, tzinfo=LUXEMBOURG)
    scope = await dashboard.scope(db, PLATFORM_ADMIN, people["a"], at=at)
    assert scope is not None
    found = await dashboard.overview(db_sessions, scope)
    assert found.days[0].day == date(2026, 1, 31)
    assert (found.days[0].visits, found.days[0].new_members) == (1, 1)


def test_the_month_compares_with_as_many_days_of_last_month_as_it_has() -> None:
    assert dashboard.month_periods(date(2026, 3, 31)) == (
        (date(2026, 3, 1), date(2026, 3, 31)),
        (date(2026, 2, 1), date(2026, 2, 28)),
    )
    assert dashboard.month_periods(date(2026, 1, 1)) == (
        (date(2026, 1, 1), date(2026, 1, 1)),
        (date(2025, 12, 1), date(2025, 12, 1)),
    )


async def test_top_rewards_and_recent_activity(march: dict[str, Any], db: AsyncSession) -> None:
    scope = await _scope(db, PLATFORM_ADMIN, march["a"])
    assert await dashboard.top_rewards(db, scope) == [dashboard.TopReward("coffee (points)", 1)]
    # One line per event: a hybrid purchase's stamp and points together.
    recent = await dashboard.recent_activity(db, scope, limit=3)
    assert [(r.kinds, r.stamps_delta, r.points_delta, r.reward, r.customer) for r in recent] == [
        (("points_redeemed",), 0, -50, "coffee", "ann@example.com"),
        (("points_earned", "stamp_earned"), 1, 100, None, "ann@example.com"),
        (("points_earned", "stamp_earned"), 1, 70, None, "cat@example.com"),
    ]
    assert recent[0].store == "Shop 0"
    assert recent[0].occurred_at == _local(date(2026, 3, 20), 10, 30)
    # Merchant b's: its own card only.
    theirs = await dashboard.recent_activity(db, await _scope(db, PLATFORM_ADMIN, march["b"]))
    assert {r.customer for r in theirs} == {"bea@example.com"}


async def test_a_merchant_admin_gets_no_scope_of_another_merchant(
    people: dict[str, Any], db: AsyncSession
) -> None:
    alice = Principal(1, "alice", UserRole.MERCHANT_ADMIN, people["a"])
    assert await dashboard.scope(db, alice, people["b"]) is None
    mine = await dashboard.scope(db, alice, people["a"])
    assert mine is not None and not mine.has_data  # nothing happened yet
    assert await dashboard.merchants(db, alice) == {
        people["a"]: f"{people['a_code']} — Test merchant"
    }


async def _alerting(db: AsyncSession, people: dict[str, Any], now: datetime = AT) -> None:
    """A store locked for 20 minutes from ``now``, campaigns at 85 % and 50 % of their
    budget (and one of b at 90 %), and dead letters: one naming a's store, one b's, one
    unreadable."""
    await db.execute(
        update(Store)
        .where(Store.id == people["a_stores"][0])
        .values(pin_locked_until=now + timedelta(minutes=20))
    )
    for program, code, awarded in (
        (people["a_program"], "spring", 850),
        (people["a_program"], "summer", 500),
        (people["b_program"], "b-spring", 900),
    ):
        db.add(
            Campaign(
                program_id=program,
                code=code,
                name=code.capitalize(),
                status=CampaignStatus.ACTIVE,
                bonus_points=10,
                budget_points=1000,
                points_awarded=awarded,
            )
        )
    for i, payload in enumerate(
        (
            json.dumps({"type": "purchase.completed", "store_code": people["a_store_codes"][1]}),
            json.dumps({"type": "purchase.completed", "store_code": people["b_store_codes"][0]}),
            "not json\x07",
            # Nested too deep for a JSON parser; its head still names a's first store.
            '{"store_code": "' + people["a_store_codes"][0] + '", "x": ' + "[" * 50_000 + "}",
            "[" * 100_000,  # names nobody
        )
    ):
        db.add(
            DeadLetter(
                event_id=uuid.uuid4(),
                source_topic=Topic.PURCHASES.value,
                partition=0,
                offset=i,
                key=None,
                payload=payload,
                error=f"amount_cents: Input should be a valid integer ({i})",
            )
        )
    await db.commit()


async def test_alerts_of_a_merchant_and_of_the_platform(
    people: dict[str, Any], db: AsyncSession
) -> None:
    await _alerting(db, people)
    alice = Principal(1, "alice", UserRole.MERCHANT_ADMIN, people["a"])
    found = await dashboard_alerts.alerts(db, alice, await _scope(db, alice, people["a"]))
    assert [s.store_id for s in found.locked_stores] == [people["a_stores"][0]]
    assert [(c.name, c.awarded) for c in found.campaigns] == [("Spring", 850)]
    assert found.dead_letters.count == 2
    assert found.dead_letters.latest_error == "amount_cents: Input should be a valid integer (3)"
    # The platform admin sees every dead letter; the lock is over after its 20 minutes.
    later = await dashboard.scope(db, PLATFORM_ADMIN, people["a"], at=AT + timedelta(hours=1))
    assert later is not None
    found = await dashboard_alerts.alerts(db, PLATFORM_ADMIN, later)
    assert found.locked_stores == () and found.dead_letters.count == 5
    theirs = await dashboard_alerts.alerts(
        db, PLATFORM_ADMIN, await _scope(db, PLATFORM_ADMIN, people["b"])
    )
    assert [c.name for c in theirs.campaigns] == ["B-spring"]


# --- the page ------------------------------------------------------------------------------


async def _today_and_yesterday(db: AsyncSession, people: dict[str, Any]) -> None:
    """Merchant a: two cards enrolled today, three purchases today and one yesterday."""
    now = datetime.now(LUXEMBOURG)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    today = midnight + (now - midnight) / 2  # today whatever the time the test runs
    yesterday = midnight - timedelta(hours=12)
    store = people["a_store_codes"][0]
    await _enrol(db, store, "old@example.com", yesterday - timedelta(minutes=5))
    await _buy(db, store, "old@example.com", 1000, yesterday)
    for email in ("dan@example.com", "eve@example.com"):
        await _enrol(db, store, email, today)
    for email, cents in (
        ("dan@example.com", 1000),
        ("eve@example.com", 500),
        ("dan@example.com", 200),
    ):
        await _buy(db, store, email, cents, today + timedelta(seconds=1))


async def test_a_merchant_admin_lands_on_their_dashboard(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    await _today_and_yesterday(db, people)
    await _alerting(db, people, datetime.now(UTC))
    await sign_in(user, ALICE)
    await user.should_see(marker="dashboard-merchant-name", retries=WAIT)
    await user.should_see(marker="dash-visits-today", retries=WAIT)
    assert texts(user, "dash-visits-today") == ["3"]
    assert texts(user, "dash-visits-today-change") == ["▲ 200.0% vs 1 yesterday"]
    assert texts(user, "dash-members-today") == ["2"]
    assert texts(user, "dash-points-issued-today") == ["170"]
    assert texts(user, "dash-points-issued-today-change") == ["▲ 70.0% vs 100 yesterday"]
    await user.should_see(marker="dashboard-chart")
    # The alerts, each with the page that fixes it (dead letters: the platform's page).
    await user.should_see(marker="alert-pin-lock")
    await user.should_see("Campaign Spring has used 85.0% of its budget (850 / 1,000 points).")
    await user.should_see(marker="alert-dead-letters")
    await user.should_not_see("Summer")
    await user.should_not_see("B-spring")
    await user.should_not_see(marker="dashboard-merchant")  # no picker
    await user.should_see(marker="dashboard-activity")


async def test_a_merchant_admin_cannot_open_another_merchants_dashboard(
    user: User, people: dict[str, Any]
) -> None:
    await sign_in(user, ALICE)
    # "²" is a digit to str.isdigit() and not a number to int(): "not found", not a failure.
    for tampered in (
        f"/?merchant={people['b']}",
        "/?merchant=abc",
        "/?merchant=999999",
        "/?merchant=%C2%B2",
    ):
        status, body = await status_of(user, tampered)
        assert status == 404, tampered
        assert "not allowed to see it" in body
    status, _ = await status_of(user, f"/?merchant={people['a']}")
    assert status == 200


async def test_a_new_merchant_sees_what_to_do_first(user: User, people: dict[str, Any]) -> None:
    await sign_in(user, BOB)
    await user.should_see(marker="dashboard-empty", retries=WAIT)
    await user.should_see("No activity yet")
    await user.should_see("Enrol a customer")
    await user.should_not_see(marker="dashboard-overview")
    await user.should_see(marker="dashboard-no-alerts", retries=WAIT)


async def test_a_platform_admin_picks_the_merchant(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    await _today_and_yesterday(db, people)
    first = min((people["a_code"], people["a"]), (people["b_code"], people["b"]))[1]
    await sign_in(user, PLATFORM)
    await user.should_see(marker="dashboard-merchant", retries=WAIT)
    (picker,) = user.find(marker="dashboard-merchant").elements
    assert picker.value == first  # type: ignore[attr-defined]
    await user.open(f"/?merchant={people['a']}")
    await user.should_see(marker="dash-visits-today", retries=WAIT)
    assert texts(user, "dash-visits-today") == ["3"]
    await user.open(f"/?merchant={people['b']}")
    await user.should_see(marker="dashboard-empty", retries=WAIT)
    status, _ = await status_of(user, "/?merchant=999999")
    assert status == 404


async def test_a_slow_part_shows_its_skeleton_until_read_and_a_failed_one_says_so(
    user: User, people: dict[str, Any]
) -> None:
    release = asyncio.Event()

    async def slow() -> str:
        await release.wait()
        return "read"

    async def broken() -> str:
        raise RuntimeError("the database went away")

    def draw(marker: str) -> Callable[[str], None]:
        def drawn(found: str) -> None:
            ui.label(found).mark(marker)

        return drawn

    @ui.page("/test-loading-states")
    def page() -> None:
        deferred("slow", slow, draw("slow-drawn"))
        deferred("broken", broken, draw("broken-drawn"))

    await sign_in(user, ALICE)
    await user.open("/test-loading-states")
    await user.should_see(marker="slow-loading")
    await user.should_see(marker="broken-failed", retries=WAIT)
    await user.should_see("This part could not be loaded. Reload the page to try again.")
    await user.should_not_see(marker="slow-drawn")
    release.set()
    await user.should_see(marker="slow-drawn", retries=WAIT)
    await user.should_not_see(marker="slow-loading")
    await user.should_not_see(marker="broken-drawn")


def test_a_stamp_card_reward_and_a_points_reward_of_one_name_are_told_apart() -> None:
    name = dashboard._reward_name
    assert name("stamp_redeemed", None, "Free coffee") == "Free coffee (stamp card)"
    assert name("points_redeemed", "coffee", "Free coffee") == "Free coffee (points)"
    assert name("stamp_redeemed", None, None) == "Full stamp card"
    assert name("points_redeemed", "coffee", None) == "coffee (points)"
