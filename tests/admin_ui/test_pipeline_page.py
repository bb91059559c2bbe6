"""The pipeline page's live figures: the events per second of the last 15 minutes (counted from
the outbox's results, drawn as a sparkline) and the outbox backlog with its oldest unsent age;
the queries against the real database, the page through NiceGUI's simulated user, and the whole
page in a real headless Chromium (``tests.admin_ui.browser``) at 1440 and 390 pixels wide.

Screenshots go to ``$LOYALTY_SCREENSHOTS``, by default ``/tmp/shots_pipeline``, with
``layout.json``: how wide the page is at each width.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from nicegui import ui
from nicegui.testing import User
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from admin_ui.pages.pipeline import _duration, _rate
from admin_ui.queries import pipeline
from domain.models import DeadLetter, HeldReturn, OutboxMessage
from streams.topics import Topic
from tests.admin_ui.browser import browser_sign_in, element, no_traceback, see
from tests.admin_ui.helpers import MAIN_FILE, PLATFORM, WAIT, enrol, sign_in, texts

pytestmark = MAIN_FILE
SHOTS = Path(os.environ.get("LOYALTY_SCREENSHOTS") or "/tmp/shots_pipeline")
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
