"""The pipeline page's live figures: the events per second of the last 15 minutes (counted from
the outbox's results, drawn as a sparkline) and the outbox backlog with its oldest unsent age;
the queries against the real database, the page through NiceGUI's simulated user, and the whole
page in a real headless Chromium (``tests.admin_ui.browser``) at 1440 and 390 pixels wide.

Screenshots go to ``$LOYALTY_SCREENSHOTS``, by default ``/tmp/shots/pipeline``, with
``layout.json``: how wide the page is at each width.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from nicegui import ui
from nicegui.testing import User
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from admin_ui.pages.pipeline import _duration, _rate
from admin_ui.payload_text import one_line, pretty_payload
from admin_ui.problems import DomainRefusal
from admin_ui.queries import dead_letter_actions, dead_letters, pipeline
from admin_ui.queries.admins import Principal
from admin_ui.queries.common import PageRequest
from core.settings import Settings
from domain.audit_trail import acting_as
from domain.models import AdminAuditLog, DeadLetter, HeldReturn, OutboxMessage, UserRole
from streams.topics import Topic
from tests.admin_ui.browser import browser_sign_in, element, no_traceback, see
from tests.admin_ui.helpers import MAIN_FILE, PLATFORM, WAIT, enrol, sign_in, texts

pytestmark = MAIN_FILE
SHOTS = Path(os.environ.get("LOYALTY_SCREENSHOTS") or "/tmp/shots/pipeline")
WIDTHS = (1440, 390)
BUCKET = timedelta(seconds=pipeline.THROUGHPUT_BUCKET_S)
# How wide the page is, and where the right edge of each named element is (hidden ones: 0):
# what a person must see needs no scrolling sideways, not even inside a box of its own.
RIGHT_EDGES_JS = """
const edges = {};
for (const e of document.querySelectorAll('[data-testid]')) {
  const r = e.getBoundingClientRect();
  const name = e.getAttribute('data-testid');
  edges[name] = Math.max(edges[name] || 0, Math.round(r.right));
}
return {doc: document.documentElement.scrollWidth, body: document.body.scrollWidth,
        edges: edges};
"""


async def _db_now(db: AsyncSession) -> datetime:
    """The database's clock, the one the engine dates outbox rows with."""
    now = await db.scalar(select(func.clock_timestamp()))
    assert isinstance(now, datetime)
    return now


def _row(
    at: datetime, count: int, *, topic: str = Topic.RESULTS.value, sent: bool = True
) -> OutboxMessage:
    """An outbox row as a worker's transaction writes it (the relay never reads these)."""
    return OutboxMessage(
        shard=0,
        topic=topic,
        count=count,
        keys=b"[]",
        payloads=b"",
        created_at=at,
        sent_at=at + timedelta(milliseconds=50) if sent else None,
    )


def _expected(rows: list[OutboxMessage], starts: list[datetime]) -> list[int]:
    """The results each bucket should count: rows of the results topic within it."""
    counts = [0] * len(starts)
    for row in rows:
        for i, start in enumerate(starts):
            if row.topic == Topic.RESULTS.value and start <= row.created_at < start + BUCKET:
                counts[i] += row.count
    return counts


async def test_throughput_counts_the_results_of_each_whole_bucket(db: AsyncSession) -> None:
    now = await _db_now(db)
    # In insertion (id) order. Rows from before the window bound its scan; a row dated just
    # before the window but inserted after one inside it (a transaction that began earlier
    # and committed later) must not hide that one.
    rows = [
        _row(now - timedelta(minutes=40), 1000),  # long before the window
        _row(now - timedelta(minutes=14, seconds=50), 7),  # the window's first minute
        _row(now - timedelta(minutes=15, seconds=50), 500),  # before the window, a later id
        _row(now - timedelta(minutes=2, seconds=10), 11),
        _row(now - timedelta(minutes=2, seconds=10), 99, topic=Topic.WALLET_UPDATES.value),
        _row(now - timedelta(minutes=1), 4, sent=False),  # not relayed yet: processed all the same
        _row(now, 13),  # the bucket under way: not whole yet
    ]
    db.add_all(rows)
    await db.commit()

    found = await pipeline.throughput(db)

    assert found.bucket_s == pipeline.THROUGHPUT_BUCKET_S
    assert len(found.starts) == len(found.per_second) == 30
    assert all(b - a == BUCKET for a, b in zip(found.starts, found.starts[1:], strict=False))
    # The window ends at the start of the bucket under way.
    end = found.starts[-1] + BUCKET
    assert end.timestamp() % pipeline.THROUGHPUT_BUCKET_S == 0
    assert timedelta(0) <= await _db_now(db) - end < 2 * BUCKET
    expected = _expected(rows, found.starts)
    assert found.per_second == [n / pipeline.THROUGHPUT_BUCKET_S for n in expected]
    # Whichever bucket boundary the clock crossed meanwhile, these three are inside.
    assert sum(expected) >= 7 + 11 + 4
    assert found.events == sum(expected)
    assert found.peak == max(expected) / pipeline.THROUGHPUT_BUCKET_S


async def test_throughput_of_an_idle_engine_is_zero(db: AsyncSession) -> None:
    found = await pipeline.throughput(db)
    assert found.per_second == [0.0] * 30
    assert (found.events, found.latest, found.peak) == (0, 0.0, 0.0)


async def test_the_backlog_tells_its_oldest_unsent_age(db: AsyncSession) -> None:
    empty = await pipeline.outbox_backlog(db)
    assert (empty.unsent, empty.oldest, empty.oldest_age_s, empty.by_topic) == (0, None, None, {})

    now = await _db_now(db)
    oldest = now - timedelta(seconds=125)
    db.add_all(
        [
            _row(now - timedelta(hours=1), 40),  # sent: not waiting
            _row(oldest, 3, sent=False),
            _row(now - timedelta(seconds=10), 2, topic=Topic.WALLET_UPDATES.value, sent=False),
        ]
    )
    await db.commit()

    backlog = await pipeline.outbox_backlog(db)
    assert backlog.unsent == 5
    assert backlog.by_topic == {Topic.RESULTS.value: 3, Topic.WALLET_UPDATES.value: 2}
    assert backlog.oldest == oldest
    assert backlog.oldest_age_s is not None
    assert 125 <= backlog.oldest_age_s < 125 + 60


async def _traffic(db: AsyncSession, people: dict[str, Any]) -> int:
    """Results rising and falling over the last 15 minutes (sent), an unsent row four
    minutes old, and a real event through the engine, dated three minutes back (its rows
    are unsent, nothing relays here, and younger than the four-minute one). Returns the
    events of the window.

    Nothing lies within 90 seconds of the window's ends, so the page, drawn a little later
    and perhaps a bucket further on, counts the same events.
    """
    await enrol(db, people["a_store_codes"][0], "x@example.com")
    now = await _db_now(db)
    engine_rows = (
        await db.scalars(select(OutboxMessage).where(OutboxMessage.created_at > now - BUCKET))
    ).all()
    for row in engine_rows:
        row.created_at -= timedelta(minutes=3)
    start = now - timedelta(minutes=15)
    ramp = [
        _row(start + BUCKET * i + timedelta(seconds=5), 300 + 60 * i if i < 20 else 4290 - 150 * i)
        for i in range(3, 27)
    ]
    waiting = _row(now - timedelta(minutes=4), 6, sent=False)
    db.add_all([*ramp, waiting])
    await db.commit()
    found = await pipeline.throughput(db)
    results = [r for r in [*ramp, waiting, *engine_rows] if r.topic == Topic.RESULTS.value]
    assert found.events == sum(r.count for r in results)
    return found.events


async def test_the_page_shows_events_per_second_and_the_oldest_unsent_age(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    await _traffic(db, people)
    await sign_in(user, PLATFORM, to="/pipeline")
    await user.should_see(marker="events-sparkline", retries=WAIT)
    (chart,) = user.find(marker="events-sparkline").elements
    assert isinstance(chart, ui.echart)
    data = chart.options["series"][0]["data"]
    assert len(data) == len(chart.options["xAxis"]["data"]) == 30
    assert max(data) > 0
    (window,) = texts(user, "events-window")
    events = int(window.split()[0].replace(",", ""))
    assert events == round(sum(data) * pipeline.THROUGHPUT_BUCKET_S)
    assert re.fullmatch(
        r"[\d,]+ event\(s\) in the last 15 min, peak [\d.,]+/s; 30-second steps", window
    )
    (rate,) = texts(user, "events-rate")
    assert float(rate.replace(",", "")) == pytest.approx(data[-1], abs=0.01)
    (unsent,) = texts(user, "outbox-unsent")
    assert int(unsent.split()[0]) >= 6
    (age,) = texts(user, "outbox-oldest-age")
    assert re.fullmatch(r"oldest waiting [45] min \d+ s", age), age


@pytest.fixture
def shots() -> Path:
    """Where this module's screenshots go (made when missing)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS


def _shoot(driver: WebDriver, folder: Path, name: str, layout: dict[str, Any]) -> None:
    """The whole page at each width, loaded afresh at that width (a phone's, emulated, at
    390), and how wide the page is there."""
    for width in WIDTHS:
        phone = width < 600
        metrics = {"width": width, "deviceScaleFactor": 2 if phone else 1, "mobile": phone}
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {**metrics, "height": 900})
        driver.refresh()
        element(driver, "events-sparkline", "canvas")
        element(driver, "lag-total")
        no_traceback(driver)
        layout[f"{name}-{width}"] = driver.execute_script(RIGHT_EDGES_JS)
        height = driver.execute_script(
            "return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)"
        )
        metrics["height"] = min(max(int(height), 900), 8000)
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
        # The chart follows its box's new size, then settles.
        driver.execute_script("window.dispatchEvent(new Event('resize'))")
        element(driver, "events-sparkline", "canvas")
        driver.execute_script("window.scrollTo(0, 0)")
        driver.save_screenshot(str(folder / f"{name}-{width}.png"))
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 1440, "height": 900, "deviceScaleFactor": 1, "mobile": False},
    )


async def test_the_pipeline_page_in_chromium(
    server: str, browser: WebDriver, people: dict[str, Any], db: AsyncSession, shots: Path
) -> None:
    events = await _traffic(db, people)
    db.add_all(
        [
            DeadLetter(
                event_id=uuid.uuid4(),
                source_topic=Topic.PURCHASES.value,
                partition=3,
                offset=1207,
                key="4000-1234-5678",
                payload='{"type": "purchase.completed", "amount_cents": "twelve"}',
                error="amount_cents: Input should be a valid integer",
            ),
            HeldReturn(
                merchant_id=people["a"],
                store_id=people["a_stores"][0],
                order_reference="ORDER-HELD-9",
                source_event_id=uuid.uuid4(),
                payload={"refund_amount_cents": 1250},
            ),
        ]
    )
    await db.commit()
    driver = browser
    browser_sign_in(driver, server, PLATFORM)
    driver.get(f"{server}/pipeline")
    element(driver, "events-sparkline", "canvas")
    see(driver, "Consumer lag")
    element(driver, "lag-total")
    window = element(driver, "events-window").text
    assert window.startswith(f"{events:,} event(s) in the last 15 min"), window
    age = element(driver, "outbox-oldest-age").text
    assert re.fullmatch(r"oldest waiting [45] min \d+ s", age), age
    # Four minutes is a relay that lags: the age says so in colour.
    assert "text-amber-700" in (element(driver, "outbox-oldest-age").get_attribute("class") or "")
    see(driver, "amount_cents: Input should be a valid integer")
    see(driver, "ORDER-HELD-9")
    lag_rows = element(driver, "lag-table").find_elements(By.CSS_SELECTOR, "tbody tr")
    assert lag_rows, "no partition in the lag table"
    layout: dict[str, Any] = {}
    _shoot(driver, shots, "pipeline", layout)
    (shots / "layout.json").write_text(json.dumps(layout, indent=2))
    # Nothing makes a phone's page wider than its screen, and the figures, the lag table, the
    # dead letter's buttons and the held return are all within it.
    phone = layout["pipeline-390"]
    assert phone["doc"] <= 390, phone
    letter = await db.scalar(select(DeadLetter.id))
    for name in (
        "events-sparkline",
        "outbox-oldest-age",
        "last-event",
        "lag-table",
        "dlq-row",
        f"dlq-redrive-{letter}",
        "held-row",
    ):
        assert 0 < phone["edges"][name] <= 390, (name, phone["edges"].get(name))
    no_traceback(driver)


def test_durations_and_rates_read_as_people_say_them() -> None:
    assert [_duration(s) for s in (0, 42.9, 192, 7500, 3 * 86400 + 4 * 3600 + 5)] == [
        "0 s",
        "42 s",
        "3 min 12 s",
        "2 h 5 min",
        "3 d 4 h",
    ]
    assert [_rate(r) for r in (0.0333, 4.5, 12.34, 1234.5)] == ["0.03", "4.50", "12.3", "1,234"]


# --- dead letters: groups, pages, bulk re-drive and discard (issue 18) -------------------------

PLATFORM_ADMIN = Principal(1, "root", UserRole.PLATFORM_ADMIN, None)
KIND_AMOUNT = "amount_cents: must be an integer >= 0"
KIND_JSON = "value is not valid JSON"


def _letter(
    error: str,
    *,
    topic: str = Topic.PURCHASES.value,
    payload: str = '{"type": "purchase.completed"}',
    key: str | None = "1234-5678-9012",
    at: datetime | None = None,
    redriven: bool = False,
) -> DeadLetter:
    """A dead letter as the worker writes it, at a position of its own."""
    letter = DeadLetter(
        event_id=uuid.uuid4(),
        source_topic=topic,
        partition=0,
        offset=uuid.uuid4().int % 10**12,
        key=key,
        payload=payload,
        error=error,
    )
    if at is not None:
        letter.occurred_at = at
    if redriven:
        letter.redriven_at = datetime.now(UTC)
    return letter


def _in_order(user: User, marker: str) -> list[str]:
    """The texts of the labels with this marker, in the page's order (their ids')."""
    found = sorted(user.find(marker=marker).elements, key=lambda e: e.id)
    return [e.text for e in found if isinstance(e, ui.label)]


def _request(offset: int = 0, limit: int = 20, search: str = "") -> PageRequest:
    return PageRequest(search=search, mode="all", offset=offset, limit=limit)


async def test_waiting_dead_letters_are_grouped_by_kind_of_error(db: AsyncSession) -> None:
    now = await _db_now(db)
    letters = [
        # One kind, whatever value each got, alone or beside another error.
        _letter(f"{KIND_AMOUNT} (got -5)", at=now - timedelta(hours=3)),
        _letter(f"{KIND_AMOUNT} (got -12)", at=now - timedelta(hours=2)),
        _letter(f'{KIND_AMOUNT} (got "a); b")', at=now - timedelta(hours=1)),
        # Where the JSON broke differs; the kind does not.
        _letter("value is not valid JSON (Expecting value at line 1, column 1)", at=now),
        _letter("value is not valid JSON (Expecting ',' delimiter at line 3, column 9)", at=now),
        # Two errors, and how many more there were: one kind of its own.
        _letter(
            'card: is required; currency: must be an ISO code (got "eur"); and 3 more',
            at=now - timedelta(minutes=30),
        ),
        _letter(
            'card: is required; currency: must be an ISO code (got "usd"); and 7 more',
            at=now - timedelta(minutes=40),
        ),
        # The same words on another topic are another group.
        _letter(f"{KIND_AMOUNT} (got -1)", topic=Topic.RETURNS.value),
        # Re-driven: not waiting any more, in no group.
        _letter(f"{KIND_AMOUNT} (got -7)", redriven=True),
    ]
    db.add_all(letters)
    await db.commit()

    found = await dead_letters.dead_letter_groups(db, _request())

    assert found.total == 4
    shown = [(g.source_topic, g.kind, g.count) for g in found.items]
    assert shown == [
        (Topic.PURCHASES.value, KIND_AMOUNT, 3),
        (Topic.PURCHASES.value, KIND_JSON, 2),
        (Topic.PURCHASES.value, "card: is required; currency: must be an ISO code; and more", 2),
        (Topic.RETURNS.value, KIND_AMOUNT, 1),
    ]  # the largest first; of two alike, the one with the newer last letter
    amounts = found.items[0]
    assert amounts.first_at == now - timedelta(hours=3)
    assert amounts.last_at == now - timedelta(hours=1)
    assert amounts.newest_id == letters[2].id
    assert amounts.message_type == "purchase.completed"

    # The groups page in SQL too: the second page of one holds the second group.
    second = await dead_letters.dead_letter_groups(db, _request(offset=1, limit=1))
    assert second.total == 4
    assert [g.kind for g in second.items] == [found.items[1].kind]
    beyond = await dead_letters.dead_letter_groups(db, _request(offset=10, limit=5))
    assert (beyond.items, beyond.total) == ([], 4)
    only_json = await dead_letters.dead_letter_groups(db, _request(search="json"))
    assert [g.kind for g in only_json.items] == [KIND_JSON]

    counts = await dead_letters.dead_letter_counts(db)
    assert (counts.waiting, counts.redriven) == (8, 1)


async def test_dead_letters_are_listed_a_page_at_a_time_by_state_and_group(
    db: AsyncSession,
) -> None:
    long_payload = json.dumps({"type": "purchase.completed", "note": "x" * 5000})
    db.add_all(
        [_letter(f"{KIND_AMOUNT} (got -{i})", payload=long_payload) for i in range(23)]
        + [_letter(f"{KIND_JSON} (Expecting value at line 1, column 1)", payload="{nope")]
        + [_letter(f"{KIND_AMOUNT} (got -99)", redriven=True, payload="100% of it")]
    )
    await db.commit()

    first = await dead_letters.dead_letters(db, _request(limit=20))
    assert (len(first.items), first.total) == (20, 25)
    assert [r.id for r in first.items] == sorted((r.id for r in first.items), reverse=True)
    last = await dead_letters.dead_letters(db, _request(offset=20, limit=20))
    assert (len(last.items), last.total) == (5, 25)
    assert {r.id for r in first.items}.isdisjoint(r.id for r in last.items)

    # A page reads the start of each payload only; the length says how long it is.
    row = next(r for r in first.items if r.payload.startswith('{"type"'))
    assert row.payload == long_payload[: dead_letters.PREVIEW_CHARS]
    assert row.payload_chars == len(long_payload)
    detail = await dead_letters.dead_letter(db, row.id)
    assert detail is not None and detail.payload == long_payload

    waiting = dead_letters.LetterFilter("waiting")
    assert (await dead_letters.dead_letters(db, _request(), waiting)).total == 24
    redriven = await dead_letters.dead_letters(
        db, _request(), dead_letters.LetterFilter("redriven")
    )
    assert [r.payload for r in redriven.items] == ["100% of it"]
    group = dead_letters.LetterFilter("waiting", Topic.PURCHASES.value, KIND_AMOUNT)
    assert (await dead_letters.dead_letters(db, _request(), group)).total == 23
    # A % in the search is a percent sign, not a wildcard.
    assert (await dead_letters.dead_letters(db, _request(search="100%"))).total == 1
    assert (await dead_letters.dead_letters(db, _request(search="0%"))).total == 1


class TopicReader:
    """The records that reach one topic from now on (every partition, from its end)."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.settings = settings
        self.topic = topic
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.bootstrap, enable_auto_commit=False
        )

    async def __aenter__(self) -> TopicReader:
        await self.consumer.start()
        partitions = [TopicPartition(self.topic, p) for p in range(self.settings.input_partitions)]
        ends = await self.consumer.end_offsets(partitions)
        self.consumer.assign(partitions)
        for tp, offset in ends.items():
            self.consumer.seek(tp, offset)
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.consumer.stop()

    async def read(self, marker: str, expected: int) -> list[ConsumerRecord[bytes, bytes]]:
        """The records whose value holds ``marker``: read until ``expected`` came, then two
        seconds more, so a record sent twice would be seen."""
        found: list[ConsumerRecord[bytes, bytes]] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        settle: float | None = None
        while loop.time() < (settle or deadline):
            batch = await self.consumer.getmany(timeout_ms=300)
            for records in batch.values():
                found += [r for r in records if r.value and marker.encode() in r.value]
            if settle is None and len(found) >= expected:
                settle = loop.time() + 2
        return found


async def _stored(db: AsyncSession, ids: list[int]) -> dict[int, DeadLetter]:
    db.expire_all()
    rows = await db.scalars(select(DeadLetter).where(DeadLetter.id.in_(ids)))
    return {r.id: r for r in rows}


async def test_a_group_is_re_driven_to_its_source_topic_once_however_often_it_is_asked(
    db: AsyncSession, db_sessions: async_sessionmaker[AsyncSession], stack: Settings
) -> None:
    marker = uuid.uuid4().hex
    payloads = [json.dumps({"type": "purchase.completed", "n": i, "m": marker}) for i in range(5)]
    group_letters = [
        _letter(f"{KIND_AMOUNT} (got -{i})", payload=p, key=f"card-{i}")
        for i, p in enumerate(payloads)
    ]
    other = _letter(f"{KIND_JSON} (Expecting value)", payload=f"not json {marker}")
    db.add_all([*group_letters, other])
    await db.commit()
    (group,) = [
        g
        for g in (await dead_letters.dead_letter_groups(db, _request())).items
        if g.kind == KIND_AMOUNT
    ]
    # One of the group arrives after the page was drawn: a bulk action leaves it alone.
    late = _letter(f"{KIND_AMOUNT} (got -77)", payload=json.dumps({"late": marker}))
    db.add(late)
    await db.commit()

    async def redrive(limit: int) -> dead_letter_actions.Redriven:
        async with db_sessions() as session, session.begin():
            return await dead_letter_actions.redrive_waiting(
                session, stack, PLATFORM_ADMIN, dead_letter_actions.OfKind.of(group), limit=limit
            )

    async with TopicReader(stack, Topic.PURCHASES.value) as reader:
        # Clicked twice at once: one run waits for the other's lock, then finds nothing left.
        both = await asyncio.gather(redrive(100), redrive(100))
        again = await redrive(100)  # and once more afterwards
        records = await reader.read(marker, expected=5)

    assert sorted(r.count for r in both) == [0, 5]
    assert again.count == 0 and again.topics == () and not again.full
    assert sorted(r.value for r in records) == sorted(p.encode() for p in payloads)
    assert {r.key for r in records} == {f"card-{i}".encode() for i in range(5)}
    stored = await _stored(db, [letter.id for letter in [*group_letters, other, late]])
    assert all(stored[letter.id].redriven_at is not None for letter in group_letters)
    assert stored[other.id].redriven_at is None
    assert stored[late.id].redriven_at is None
    # The audit trail holds the one re-drive that published, with its letters.
    (entry,) = (
        await db.scalars(
            select(AdminAuditLog).where(
                AdminAuditLog.entity == "dead_letter", AdminAuditLog.action == "redrive"
            )
        )
    ).all()
    assert entry.after is not None and entry.after["count"] == 5
    assert sorted(entry.after["ids"]) == sorted(letter.id for letter in group_letters)


async def test_a_bulk_re_drive_goes_in_batches_and_skips_letters_re_driven_before(
    db: AsyncSession, stack: Settings
) -> None:
    marker = uuid.uuid4().hex
    fresh = [_letter(f"{KIND_JSON} (x)", payload=f"{marker} {i}") for i in range(3)]
    done_before = _letter(f"{KIND_JSON} (x)", payload=f"{marker} old", redriven=True)
    db.add_all([*fresh, done_before])
    await db.commit()
    before = done_before.redriven_at
    chosen = dead_letter_actions.Chosen(tuple(letter.id for letter in [*fresh, done_before]))

    async with TopicReader(stack, Topic.PURCHASES.value) as reader:
        first = await dead_letter_actions.redrive_waiting(
            db, stack, PLATFORM_ADMIN, chosen, limit=2
        )
        await db.commit()
        second = await dead_letter_actions.redrive_waiting(
            db, stack, PLATFORM_ADMIN, chosen, limit=2
        )
        await db.commit()
        records = await reader.read(marker, expected=3)

    assert (first.count, first.full, second.count, second.full) == (2, True, 1, False)
    assert first.topics == (Topic.PURCHASES.value,)
    assert sorted(r.value for r in records) == sorted(f"{marker} {i}".encode() for i in range(3))
    stored = await _stored(db, [done_before.id])
    assert stored[done_before.id].redriven_at == before


async def test_kafka_down_re_drives_nothing_and_says_so(db: AsyncSession, stack: Settings) -> None:
    letter = _letter(f"{KIND_JSON} (x)")
    db.add(letter)
    await db.commit()
    letter_id = letter.id
    nowhere = stack.model_copy(update={"kafka_bootstrap": "127.0.0.1:9"})
    with pytest.raises(DomainRefusal, match=r"127\.0\.0\.1:9.*nothing was re-driven"):
        await dead_letter_actions.redrive_waiting(
            db, nowhere, PLATFORM_ADMIN, dead_letter_actions.Chosen((letter_id,))
        )
    await db.rollback()
    assert (await _stored(db, [letter_id]))[letter_id].redriven_at is None


async def test_discarding_a_group_removes_its_waiting_letters_and_is_recorded(
    db: AsyncSession,
) -> None:
    group_letters = [_letter(f"{KIND_AMOUNT} (got -{i})") for i in range(3)]
    redriven = _letter(f"{KIND_AMOUNT} (got -4)", redriven=True)
    other = _letter(f"{KIND_JSON} (x)")
    db.add_all([*group_letters, redriven, other])
    await db.commit()
    (group,) = [
        g
        for g in (await dead_letters.dead_letter_groups(db, _request())).items
        if g.kind == KIND_AMOUNT
    ]
    late = _letter(f"{KIND_AMOUNT} (got -5)")
    db.add(late)
    await db.commit()
    group_ids = [x.id for x in group_letters]
    kept_ids = [redriven.id, other.id, late.id]

    with acting_as("root"):
        assert (
            await dead_letter_actions.discard(
                db, PLATFORM_ADMIN, dead_letter_actions.OfKind.of(group)
            )
            == 3
        )
        await db.commit()
        # Clicked again: nothing is left to discard, and nothing else goes.
        assert (
            await dead_letter_actions.discard(
                db, PLATFORM_ADMIN, dead_letter_actions.OfKind.of(group)
            )
            == 0
        )
        await db.commit()

    left = await _stored(db, group_ids + kept_ids)
    assert set(left) == set(kept_ids)
    (entry,) = (
        await db.scalars(select(AdminAuditLog).where(AdminAuditLog.entity == "dead_letter"))
    ).all()
    assert (entry.actor, entry.action, entry.after) == ("root", "discard", None)
    assert entry.before is not None
    assert entry.before["count"] == 3
    assert entry.before["error"] == KIND_AMOUNT
    assert sorted(entry.before["ids"]) == sorted(group_ids)


async def test_chosen_letters_are_discarded_whatever_their_state(db: AsyncSession) -> None:
    letters = [_letter(f"{KIND_JSON} (x)"), _letter(f"{KIND_JSON} (y)", redriven=True)]
    keep = _letter(f"{KIND_JSON} (z)")
    db.add_all([*letters, keep])
    await db.commit()
    chosen = dead_letter_actions.Chosen(tuple(x.id for x in letters))
    assert await dead_letter_actions.discard(db, PLATFORM_ADMIN, chosen) == 2
    await db.commit()
    assert set(await _stored(db, [x.id for x in [*letters, keep]])) == {keep.id}
    with pytest.raises(DomainRefusal, match="no dead letter is chosen"):
        await dead_letter_actions.discard(db, PLATFORM_ADMIN, dead_letter_actions.Chosen(()))


async def test_a_merchant_admin_can_neither_re_drive_nor_discard(
    db: AsyncSession, people: dict[str, Any], stack: Settings
) -> None:
    letter = _letter(f"{KIND_JSON} (x)")
    db.add(letter)
    await db.commit()
    letter_id = letter.id
    merchant_admin = Principal(2, "alice", UserRole.MERCHANT_ADMIN, people["a"])
    which = dead_letter_actions.Chosen((letter_id,))
    with pytest.raises(DomainRefusal, match="platform admin"):
        await dead_letter_actions.redrive_waiting(db, stack, merchant_admin, which)
    with pytest.raises(DomainRefusal, match="platform admin"):
        await dead_letter_actions.discard(db, merchant_admin, which)
    with pytest.raises(DomainRefusal, match="platform admin"):
        await dead_letter_actions.redrive(db, stack, merchant_admin, letter_id)
    await db.rollback()
    stored = await _stored(db, [letter_id])
    assert stored[letter_id].redriven_at is None


# --- what a dead letter shows: escaped, and its payload pretty-printed --------------------------


def test_a_json_payload_is_indented_as_it_was_written() -> None:
    payload = (
        '{"type":"purchase.completed","amount_cents":1.10,"lines":[{"sku":"A","q":2}],'
        '"a":1,"a":2,"e":{},"l":[]}'
    )
    assert pretty_payload(payload) == "\n".join(
        [
            "{",
            '  "type": "purchase.completed",',
            '  "amount_cents": 1.10,',
            '  "lines": [',
            "    {",
            '      "sku": "A",',
            '      "q": 2',
            "    }",
            "  ],",
            '  "a": 1,',
            '  "a": 2,',
            '  "e": {},',
            '  "l": []',
            "}",
        ]
    )


def test_control_characters_in_a_payload_are_shown_escaped() -> None:
    nasty = "\x1b[31mred\u202eevil\x7f\u2028\x85"
    # JSON writes the C0 controls as \u escapes; the rest is escaped as text is.
    escaped = "\\u001b[31mred\\u202eevil\\x7f\\u2028\\x85"
    for ascii_only in (True, False):  # escaped in the payload already, or raw there
        payload = json.dumps({f"k{nasty}": nasty, "n": None, "t": True}, ensure_ascii=ascii_only)
        pretty = pretty_payload(payload)
        assert pretty == "\n".join(
            ["{", f'  "k{escaped}": "{escaped}",', '  "n": null,', '  "t": true', "}"]
        )
        assert all(ch.isprintable() for line in pretty.split("\n") for ch in line)
    # Not JSON: its lines stay lines, what is in them is escaped.
    assert pretty_payload("line one\x1b[2J\nline\u202etwo\r") == (
        "line one\\x1b[2J\nline\\u202etwo\\r"
    )
    # Base64 is never parsed, and cut JSON is shown as the text it is.
    assert pretty_payload("e30=", is_base64=True) == "e30="
    assert pretty_payload('{"a": [1, 2') == '{"a": [1, 2'
    assert pretty_payload("[" * 100_000) == "[" * 100_000


def test_a_list_line_is_one_line_with_its_controls_escaped() -> None:
    assert one_line('{\n  "a": "\x1b[1m\u202e"\n}') == '{ "a": "\\x1b[1m\\u202e" }'
    assert one_line("x" * 500, 10) == "x" * 9 + "…"


async def test_the_page_shows_errors_and_payloads_escaped(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    letter = _letter(
        'store_code: must be a string (got "\x1b[31mS1\u202e"); currency: is required',
        payload=json.dumps({"type": "purchase.completed", "store_code": "\x1b[31mS1\u202e"}),
        key="k\u202e1",
    )
    db.add(letter)
    await db.commit()
    await sign_in(user, PLATFORM, to="/pipeline")
    await user.should_see(marker=f"dlq-show-{letter.id}", retries=WAIT)
    (error,) = texts(user, "dlq-error")
    assert error == 'store_code: must be a string (got "\\x1b[31mS1\\u202e"); currency: is required'
    (kind,) = texts(user, "dlq-group-kind")
    assert kind == "store_code: must be a string; currency: is required"
    user.find(marker=f"dlq-show-{letter.id}").click()
    await user.should_see(marker="dlq-payload", retries=WAIT)
    (payload,) = [
        e.text
        for e in user.find(marker="dlq-payload").elements.pop().descendants()
        if isinstance(e, ui.label)
    ]
    assert payload == (
        '{\n  "type": "purchase.completed",\n  "store_code": "\\u001b[31mS1\\u202e"\n}'
    )
    await user.should_see("Key: k\\u202e1")
    sentences = [
        e.text
        for e in user.find(marker="dlq-full-error").elements.pop().descendants()
        if isinstance(e, ui.label)
    ]
    assert sentences == [
        'store_code: must be a string (got "\\x1b[31mS1\\u202e")',
        "currency: is required",
    ]
    for shown in [error, kind, payload, *sentences]:
        assert all(ch.isprintable() or ch == "\n" for ch in shown), shown


async def test_re_drive_all_confirmed_twice_re_drives_each_letter_once(
    user: User, people: dict[str, Any], db: AsyncSession, stack: Settings
) -> None:
    marker = uuid.uuid4().hex
    letters = [
        _letter(f"{KIND_AMOUNT} (got -{i})", payload=json.dumps({"n": i, "m": marker}))
        for i in range(3)
    ]
    db.add_all(letters)
    await db.commit()
    newest = max(x.id for x in letters)
    async with TopicReader(stack, Topic.PURCHASES.value) as reader:
        await sign_in(user, PLATFORM, to="/pipeline")
        await user.should_see(marker=f"dlq-group-redrive-{newest}", retries=WAIT)
        (count,) = _in_order(user, "dlq-group-count")
        assert count == "3 dead letters"
        # Two clicks before either is confirmed: two questions, both answered yes.
        user.find(marker=f"dlq-group-redrive-{newest}").click()
        user.find(marker=f"dlq-group-redrive-{newest}").click()
        await user.should_see(marker="confirm-yes", retries=WAIT)
        assert len(user.find(marker="confirm-yes").elements) == 2
        await user.should_see("Re-drive 3 dead letters to loyalty.purchases.v1?")
        user.find(marker="confirm-yes").click()
        await user.should_see("3 dead letters re-driven to loyalty.purchases.v1.", retries=WAIT * 2)
        user.find(marker="confirm-yes").click()
        await user.should_see("Nothing left to re-drive", retries=WAIT * 2)
        records = await reader.read(marker, expected=3)
    assert sorted(r.value for r in records) == sorted(x.payload.encode() for x in letters)
    await user.should_see("No dead letter is waiting.")
    (counts,) = texts(user, "dlq-counts")
    assert counts == "0 waiting · 3 re-driven"


async def test_letters_are_shown_by_group_and_discarded_chosen_or_by_group(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    amounts = [_letter(f"{KIND_AMOUNT} (got -{i})") for i in range(3)]
    broken = [_letter(f"{KIND_JSON} (Expecting value at line 1, column {i})") for i in range(4)]
    db.add_all([*amounts, broken[0], broken[1], broken[2], broken[3]])
    await db.commit()
    amount_ids = {x.id for x in amounts}
    broken_ids = [x.id for x in broken]
    newest_amount = max(amount_ids)
    await sign_in(user, PLATFORM, to="/pipeline")
    await user.should_see(marker=f"dlq-group-show-{newest_amount}", retries=WAIT)
    assert _in_order(user, "dlq-group-count") == ["4 dead letters", "3 dead letters"]

    # One group's letters only, until asked for every kind again.
    user.find(marker=f"dlq-group-show-{newest_amount}").click()
    await user.should_see(marker="dlq-only-clear", retries=WAIT)
    assert len(user.find(marker="dlq-row").elements) == 3
    for letter_id in amount_ids:
        await user.should_see(marker=f"dlq-choose-{letter_id}")
    user.find(marker="dlq-only-clear").click()
    await user.should_see(marker=f"dlq-choose-{broken_ids[0]}", retries=WAIT)
    assert len(user.find(marker="dlq-row").elements) == 7

    # Two letters ticked, then discarded after a question that counts them.
    for letter_id in broken_ids[:2]:
        user.find(marker=f"dlq-choose-{letter_id}").click()
    await user.should_see("2 chosen")
    user.find(marker="dlq-discard-chosen").click()
    await user.should_see("Discard 2 dead letters?", retries=WAIT)
    user.find(marker="confirm-yes").click()
    await user.should_see("2 dead letters discarded.", retries=WAIT)
    await user.should_not_see(marker=f"dlq-choose-{broken_ids[0]}", retries=WAIT)
    assert _in_order(user, "dlq-group-count") == ["3 dead letters", "2 dead letters"]

    # A whole group, after a question that counts it; a "no" discards nothing.
    user.find(marker=f"dlq-group-discard-{newest_amount}").click()
    await user.should_see("Discard 3 dead letters?", retries=WAIT)
    user.find(marker="confirm-no").click()
    await user.should_not_see(marker="confirm-no", retries=WAIT)
    assert _in_order(user, "dlq-group-count") == ["3 dead letters", "2 dead letters"]
    user.find(marker=f"dlq-group-discard-{newest_amount}").click()
    await user.should_see("Discard 3 dead letters?", retries=WAIT)
    user.find(marker="confirm-yes").click()
    await user.should_see("3 dead letters discarded.", retries=WAIT)
    await user.should_not_see(marker=f"dlq-group-discard-{newest_amount}", retries=WAIT)
    assert _in_order(user, "dlq-group-count") == ["2 dead letters"]
    (counts,) = texts(user, "dlq-counts")
    assert counts == "2 waiting · 0 re-driven"
    left = set(await db.scalars(select(DeadLetter.id)))
    assert left == set(broken_ids[2:])
