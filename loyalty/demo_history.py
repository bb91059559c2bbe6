"""``loyalty demo history``: about 90 days of backdated traffic for the demo merchants.

A first ``make run`` would otherwise open on empty charts. This makes the demo merchants'
past: the simulator's own traffic (``consumers.simulate.Traffic``: enrolments, purchases with
line items, returns, redemptions), stamped at plausible local times of each past day (shops
open 7:00-19:30, busier at breakfast and lunch and on Saturdays, with more members as weeks
go by), applied by the engine itself (``process_batch``, as a worker would: every rule,
ledger row, rollup and output), in time order, one day per transaction.

Two things the engine does not date by the event: a card's and a customer's ``created_at``
are when the engine wrote the row. Here that would put every member's start on the day of
the seeding, so afterwards the demo cards and customers take the time of the enrolment that
created them (the statistics triggers move the daily counts with the update).

Only the merchants of ``demo/demo.yaml`` get history, and only once: when any of them has a
ledger entry older than two days, nothing is done. The outputs (results, wallet updates,
notifications) go to the outbox like any other; the relay publishes them when it runs.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg

from consumers.simulate import DEMO_FILE, Traffic, choose_merchants, load_merchants
from core.logs import get_logger
from core.settings import Settings
from domain.engine.batch import Inbound, process_batch
from streams.commands import to_command
from streams.messages import TOPIC_OF_MODEL

log = get_logger(__name__)

DEFAULT_DAYS = 90
# Events a day at the start and at the end of the history, for all demo merchants together.
FIRST_DAY_EVENTS = 40
LAST_DAY_EVENTS = 160
OPENS, CLOSES = time(7, 0), time(19, 30)
# Weights of the shop's half hours: a breakfast and a lunch rush, a quiet mid-afternoon.
_RUSH = {7: 2.0, 8: 3.0, 9: 1.5, 12: 3.0, 13: 2.5, 16: 1.3, 17: 1.6}
# Monday .. Sunday.
_WEEKDAY = (0.9, 0.9, 1.0, 1.0, 1.2, 1.5, 0.6)


class HistoryRefused(Exception):
    """No history can be made: ``str()`` says why (no demo merchant provisioned yet)."""


@dataclass
class HistoryReport:
    """What :func:`seed_history` did."""

    skipped: str | None = None
    days: int = 0
    events: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    # Why events were refused (a cooldown, a daily stamp limit, a reward not affordable yet),
    # as a till's traffic would be refused now and then.
    reasons: dict[str, int] = field(default_factory=dict)
    merchants: list[str] = field(default_factory=list)
    backdated_cards: int = 0


async def seed_history(
    settings: Settings,
    *,
    days: int = DEFAULT_DAYS,
    seed: int = 7,
    until: datetime | None = None,
    demo_file: Path = DEMO_FILE,
) -> HistoryReport:
    """Apply ``days`` days of traffic to the merchants of ``demo_file``, ending before
    ``until`` (now), once."""
    until = until or datetime.now(UTC)
    report = HistoryReport()
    choice = choose_merchants(demo_file=demo_file)
    conn: asyncpg.Connection = await asyncpg.connect(settings.db_url)
    try:
        merchants = await load_merchants(conn, choice.codes)
        if not merchants:
            raise HistoryRefused(
                "no demo merchant with a store and an active program: run "
                "`loyalty provision demo/demo.yaml` first"
            )
        report.merchants = [m.code for m in merchants]
        ids = await _merchant_ids(conn, report.merchants)
        if await _has_history(conn, ids, until - timedelta(days=2)):
            report.skipped = "the demo merchants already have a history"
            return report
        zone = await _zone(conn, ids[0])
        sim_clock = [0.0]
        traffic = Traffic(merchants, random.Random(seed), clock=lambda: sim_clock[0])
        rng = random.Random(seed + 1)
        first = (until.astimezone(zone) - timedelta(days=days)).date()
        for n in range(days):
            day = first + timedelta(days=n)
            wanted = _events_of_day(n, days, day)
            moments = sorted(_moment(rng, day, zone) for _ in range(wanted))
            moments = [m for m in moments if m < until - timedelta(minutes=5)]
            if not moments:
                continue
            batch: list[Inbound] = []
            for at in moments:
                sim_clock[0] = at.timestamp()
                message = traffic.next_event(at)
                batch.append(Inbound(TOPIC_OF_MODEL[type(message)].value, to_command(message)))
            async with conn.transaction():
                outcome = await process_batch(conn, batch, moments[-1] + timedelta(seconds=1))
            for result in outcome.results:
                report.statuses[result.status] = report.statuses.get(result.status, 0) + 1
                for reason in result.reasons:
                    report.reasons[str(reason)] = report.reasons.get(str(reason), 0) + 1
            report.events += len(batch)
            report.days += 1
        report.backdated_cards = await _backdate_creation(conn, ids)
    finally:
        await conn.close()
    log.info(
        "demo_history",
        merchants=report.merchants,
        days=report.days,
        events=report.events,
        backdated_cards=report.backdated_cards,
        statuses=report.statuses,
        reasons=report.reasons,
    )
    return report


def _events_of_day(n: int, days: int, day: date) -> int:
    """More events as the program grows, more on Saturdays, fewer on Sundays."""
    growth = FIRST_DAY_EVENTS + (LAST_DAY_EVENTS - FIRST_DAY_EVENTS) * n / max(1, days - 1)
    return round(growth * _WEEKDAY[day.weekday()])


def _moment(rng: random.Random, day: date, zone: ZoneInfo) -> datetime:
    """A moment of ``day`` while the shops are open, busier at the rush hours."""
    hours = list(range(OPENS.hour, CLOSES.hour + 1))
    hour = rng.choices(hours, [_RUSH.get(h, 1.0) for h in hours])[0]
    minute = rng.randrange(30 if hour == CLOSES.hour else 60)
    local = datetime.combine(day, time(hour, minute, rng.randrange(60)), tzinfo=zone)
    return local.astimezone(UTC)


async def _merchant_ids(conn: asyncpg.Connection, codes: list[str]) -> list[int]:
    rows = await conn.fetch("SELECT id FROM merchants WHERE code = ANY($1::text[])", codes)
    return [r["id"] for r in rows]


async def _zone(conn: asyncpg.Connection, merchant_id: int) -> ZoneInfo:
    name = await conn.fetchval("SELECT timezone FROM merchants WHERE id = $1", merchant_id)
    return ZoneInfo(name or "UTC")


async def _has_history(conn: asyncpg.Connection, ids: list[int], before: datetime) -> bool:
    found = await conn.fetchval(
        """
        SELECT EXISTS (
            SELECT 1 FROM ledger_entries l JOIN loyalty_cards c ON c.id = l.card_id
            WHERE c.merchant_id = ANY($1::bigint[]) AND l.occurred_at < $2)
        """,
        ids,
        before,
    )
    return bool(found)


async def _backdate_creation(conn: asyncpg.Connection, ids: list[int]) -> int:
    """Cards and customers of these merchants take the time of their card's creation entry
    when that is earlier than the row's ``created_at``; returns the cards moved."""
    async with conn.transaction():
        status = await conn.execute(
            """
            UPDATE loyalty_cards c SET created_at = first.at
            FROM (SELECT l.card_id, min(l.occurred_at) AS at
                  FROM ledger_entries l JOIN loyalty_cards lc ON lc.id = l.card_id
                  WHERE lc.merchant_id = ANY($1::bigint[]) AND l.entry_type = 'card_created'
                  GROUP BY l.card_id) AS first
            WHERE c.id = first.card_id AND first.at < c.created_at
            """,
            ids,
        )
        await conn.execute(
            """
            UPDATE customers cu SET created_at = first.at
            FROM (SELECT customer_id, min(created_at) AS at FROM loyalty_cards
                  WHERE merchant_id = ANY($1::bigint[]) GROUP BY customer_id) AS first
            WHERE cu.id = first.customer_id AND first.at < cu.created_at
            """,
            ids,
        )
    return int(status.split()[-1])
