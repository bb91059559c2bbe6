"""``loyalty replay``: a range of an input topic through the workers' path, never twice.

Each test publishes its own records, then replays a range that holds them into the tools'
database (no worker consumes it). Records of other sessions found in a range are accounted
for by ``tests.tools.helpers.expected``.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import asyncpg
from pytest import MonkeyPatch
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from typer.testing import CliRunner

from consumers import pipeline
from consumers.pipeline import apply_records
from consumers.replay import DRY_RUN_LOCK_SHARE, From, Until, replay
from core.settings import Settings
from domain.engine.unit_of_work import PgUnitOfWork
from loyalty.cli import _register, app
from streams.parsing import ParseError, parse_input
from streams.quick import read_command
from streams.topics import Topic
from tests.support.seed import seed_merchant
from tests.tools.helpers import (
    FakeRecord,
    Ours,
    counted,
    encoded,
    end_offsets,
    enrolment,
    event,
    expected,
    inbox_state,
    loyalty,
    produce,
    purchase,
    ranges_of,
    read_range,
    table_counts,
)

ENROLMENTS = Topic.ENROLLMENTS.value
PURCHASES = Topic.PURCHASES.value
RETURNS = Topic.RETURNS.value
NOTHING = {"applied": 0, "duplicate": 0, "rejected": 0, "held": 0, "dead_lettered": 0}


async def _instant() -> datetime:
    # Kafka timestamps have millisecond precision: keep the instants of a test's range apart
    # from the records around them.
    await asyncio.sleep(0.01)
    at = datetime.now(UTC)
    await asyncio.sleep(0.01)
    return at


async def _applied_purchase(
    sessions: async_sessionmaker[AsyncSession], pool: asyncpg.Pool, who: str, order: str
) -> tuple[str, str, FakeRecord]:
    """A new merchant's store, a card enrolled there, and a purchase of it already applied:
    (store code, card number, the purchase's record)."""
    async with sessions() as s:
        _, stores, _ = await seed_merchant(s, welcome_bonus_points=10)
    shop = stores[0].code
    card = await _card_of(pool, shop, f"{who}.{uuid.uuid4().hex[:8]}@example.com")
    record = FakeRecord(
        PURCHASES, 0, 10**12, b"k", encoded(purchase(shop, {"card_number": card}, order, 700))
    )
    assert (await apply_records(pool, [record])).applied == 1
    return shop, card, record


async def _card_of(pool: asyncpg.Pool, store: str, email: str) -> str:
    """A card enrolled through the engine itself (no broker), by its number."""
    message = enrolment(store, email)
    record = FakeRecord(ENROLMENTS, 0, 0, email.encode(), encoded(message))
    counts = await apply_records(pool, [record])
    assert counts.applied == 1
    number: str = await pool.fetchval(
        "SELECT c.card_number FROM loyalty_cards c JOIN customers u ON u.id = c.customer_id "
        "WHERE u.email = $1",
        email,
    )
    return number


async def test_a_range_from_a_datetime_is_applied_once_and_then_only_duplicates(
    cli_env: dict[str, str],
    sessions: async_sessionmaker[AsyncSession],
    pool: asyncpg.Pool,
) -> None:
    async with sessions() as s:
        merchant, stores, _ = await seed_merchant(s, welcome_bonus_points=50)
    shop = stores[0].code
    tag = uuid.uuid4().hex[:8]
    a, b, c = (enrolment(shop, f"{name}.{tag}@example.com") for name in "abc")
    again = enrolment(shop, f"a.{tag}@example.com")  # the same customer: their card again
    nowhere = enrolment(f"no-such-store-{tag}", f"d.{tag}@example.com")
    items = [(ENROLMENTS, m["customer"]["email"].encode(), encoded(m)) for m in (a, b, c)]
    items += [(ENROLMENTS, f"a.{tag}@example.com".encode(), encoded(again))]
    items += [(ENROLMENTS, f"d.{tag}@example.com".encode(), encoded(nowhere))]
    items += [(ENROLMENTS, f"b.{tag}@example.com".encode(), encoded(b))]  # redelivered
    items += [(ENROLMENTS, b"junk", b"{not json")]
    bootstrap = cli_env["LOYALTY_KAFKA_BOOTSTRAP"]
    before = await end_offsets(bootstrap, [ENROLMENTS])
    since = await _instant()
    positions = await produce(bootstrap, items)
    until = await _instant()
    ours = Ours(
        {"applied": 4, "duplicate": 1, "rejected": 1, "held": 0, "dead_lettered": 1},
        {m["event_id"] for m in (a, b, c, again, nowhere)},
        {positions[-1]},
    )
    args = ["replay", "-t", "enrollments", "--from-datetime", since.isoformat()]
    args += ["--until", until.isoformat()]
    state = await inbox_state(pool)

    first = await loyalty(cli_env, *args, "--json")

    assert first.code == 0, first.err
    report = first.json()
    ranges = ranges_of(report)
    for topic, partition, offset in positions:
        first_offset, end = ranges[(topic, partition)]
        assert first_offset <= offset < end
    assert all(first_offset >= before[tp] for tp, (first_offset, _) in ranges.items())
    records = await read_range(bootstrap, ranges)
    assert report["records"] == len(records)
    assert counted(report) == expected(ours, records, state)
    cards = await pool.fetch(
        "SELECT c.points_balance FROM loyalty_cards c JOIN merchants m ON m.id = c.merchant_id "
        "WHERE m.code = $1",
        merchant.code,
    )
    assert [r["points_balance"] for r in cards] == [50, 50, 50]

    second = await loyalty(cli_env, *args)

    assert second.code == 0, second.err
    lines = second.out.splitlines()
    valid = sum(1 for r in records if not _is_garbage(r.topic, r.value))
    assert lines[0].startswith(f"replayed {len(records)} record(s) of {ENROLMENTS}")
    shown = {line.split()[0]: int(line.split()[1]) for line in lines[1:6]}
    assert shown == {
        "applied": 0,
        "duplicate": valid,
        "rejected": 0,
        "held": 0,
        "dead-lettered": 0,
    }


async def test_offsets_of_one_partition_with_held_returns_and_rejections(
    tool_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    pool: asyncpg.Pool,
) -> None:
    async with sessions() as s:
        _, stores, _ = await seed_merchant(s)  # hybrid: 10 points a euro, a stamp a purchase
    shop = stores[0].code
    card = await _card_of(pool, shop, f"buyer.{uuid.uuid4().hex[:8]}@example.com")
    ref = {"card_number": card}
    bought = [
        purchase(shop, ref, "A", 1250),
        purchase(shop, ref, "B", 800),
        purchase(shop, ref, "A", 990),  # the same order again: refused
    ]
    returned = [
        event("purchase.returned", shop, order_reference="A", refund_amount_cents=500, card=ref),
        event("purchase.returned", shop, order_reference="Z", refund_amount_cents=100, card=ref),
    ]
    key = card.encode()
    positions = await produce(
        tool_settings.bootstrap,
        [(PURCHASES, key, encoded(m)) for m in bought]
        + [(RETURNS, key, encoded(m)) for m in returned],
    )
    # One key, so one partition per topic: replay exactly that partition's new offsets.
    buy_at = [(p, o) for t, p, o in positions if t == PURCHASES]
    ret_at = [(p, o) for t, p, o in positions if t == RETURNS]
    (p_buy,), (p_ret,) = {p for p, _ in buy_at}, {p for p, _ in ret_at}
    o_buy, o_ret, end_buy = buy_at[0][1], ret_at[0][1], buy_at[-1][1] + 1
    state = await inbox_state(pool)
    progress: list[int] = []

    buys = await replay(
        tool_settings,
        [Topic.PURCHASES],
        From(offset=o_buy),
        Until(offset=end_buy),
        partitions=[p_buy],
        on_progress=progress.append,
    )
    returns = await replay(tool_settings, [Topic.RETURNS], From(offset=o_ret), partitions=[p_ret])

    buy_range = {(PURCHASES, p): rng for p, rng in buys.ranges[PURCHASES].items()}
    assert list(buy_range) == [(PURCHASES, p_buy)]
    assert buy_range[(PURCHASES, p_buy)] == (o_buy, end_buy)
    records = await read_range(tool_settings.bootstrap, buy_range)
    ours = Ours({**NOTHING, "applied": 2, "rejected": 1}, {m["event_id"] for m in bought}, set())
    assert counted(buys.as_dict()) == expected(ours, records, state)
    assert progress[-1] == buys.planned
    ret_range = {(RETURNS, p): rng for p, rng in returns.ranges[RETURNS].items()}
    records = await read_range(tool_settings.bootstrap, ret_range)
    ours = Ours({**NOTHING, "applied": 1, "held": 1}, {m["event_id"] for m in returned}, set())
    assert counted(returns.as_dict()) == expected(ours, records, state)
    # 125 + 80 points and two stamps; the refund of 500 of 1250 voids 50 points, no stamp.
    row = await pool.fetchrow(
        "SELECT points_balance, stamp_count FROM loyalty_cards WHERE card_number = $1", card
    )
    assert row is not None
    assert (row["points_balance"], row["stamp_count"]) == (155, 2)

    again = await replay(tool_settings, [Topic.PURCHASES], From(offset=o_buy), partitions=[p_buy])

    assert again.counts.applied == again.counts.rejected == again.counts.held == 0
    assert again.counts.duplicate == again.records - again.counts.dead_lettered >= 3


async def test_from_the_beginning_a_second_replay_finds_only_duplicates(
    cli_env: dict[str, str], tool_settings: Settings, pool: asyncpg.Pool
) -> None:
    until = await _instant()
    first = await replay(tool_settings, [Topic.ENROLLMENTS], From(beginning=True), Until(at=until))
    assert first.records > 0  # the earlier tests published here

    ran = await loyalty(
        cli_env,
        "replay",
        "--topic",
        ENROLMENTS,
        "--from-beginning",
        "--until",
        until.isoformat(),
        "--json",
    )

    assert ran.code == 0, ran.err
    report = ran.json()
    assert report["ranges"] == first.as_dict()["ranges"]
    records = await read_range(tool_settings.bootstrap, ranges_of(report))
    invalid = sum(1 for r in records if _is_garbage(r.topic, r.value))
    assert counted(report) == {**NOTHING, "duplicate": len(records) - invalid}


def _is_garbage(topic: str, value: bytes | None) -> bool:
    return isinstance(parse_input(topic, value), ParseError)


async def test_a_dry_run_writes_nothing_and_counts_what_the_replay_then_does(
    cli_env: dict[str, str],
    sessions: async_sessionmaker[AsyncSession],
    pool: asyncpg.Pool,
) -> None:
    async with sessions() as s:
        _, stores, _ = await seed_merchant(s, welcome_bonus_points=20)
    shop = stores[0].code
    tag = uuid.uuid4().hex[:8]
    one, two = enrolment(shop, f"one.{tag}@example.com"), enrolment(shop, f"two.{tag}@example.com")
    items = [
        (ENROLMENTS, f"one.{tag}@example.com".encode(), encoded(one)),
        (ENROLMENTS, f"one.{tag}@example.com".encode(), encoded(one)),  # redelivered
        (ENROLMENTS, f"two.{tag}@example.com".encode(), encoded(two)),
        (ENROLMENTS, b"junk", b"\xff not even text"),
    ]
    bootstrap = cli_env["LOYALTY_KAFKA_BOOTSTRAP"]
    since = await _instant()
    positions = await produce(bootstrap, items)
    until = await _instant()
    # One record a transaction: the redelivery is only a duplicate if the dry run sees what
    # its earlier batches did, as the real replay will.
    args = ["replay", "-t", ENROLMENTS, "--from-datetime", since.isoformat()]
    args += ["--until", until.isoformat(), "--batch-size", "1", "--json"]
    state = await inbox_state(pool)
    rows_before = await table_counts(pool)

    dry = await loyalty(cli_env, *args, "--dry-run")

    assert dry.code == 0, dry.err
    assert await table_counts(pool) == rows_before
    dry_report = dry.json()
    assert dry_report["dry_run"] is True
    records = await read_range(bootstrap, ranges_of(dry_report))
    ours = Ours(
        {**NOTHING, "applied": 2, "duplicate": 1, "dead_lettered": 1},
        {one["event_id"], two["event_id"]},
        {positions[-1]},
    )
    assert counted(dry_report) == expected(ours, records, state)

    real = await loyalty(cli_env, *args)

    assert real.code == 0, real.err
    assert counted(real.json()) == counted(dry_report)
    rows_after = await table_counts(pool)
    assert rows_after["loyalty_cards"] == rows_before["loyalty_cards"] + 2
    assert rows_after["dead_letters"] >= rows_before["dead_letters"] + 1


async def test_applied_records_are_skipped_unread_when_asked(
    sessions: async_sessionmaker[AsyncSession], pool: asyncpg.Pool, monkeypatch: MonkeyPatch
) -> None:
    shop, card, first = await _applied_purchase(sessions, pool, "skip", "S-1")
    fresh = FakeRecord(
        PURCHASES, 0, 10**12 + 1, b"k", encoded(purchase(shop, {"card_number": card}, "S-2", 300))
    )
    junk = FakeRecord(PURCHASES, 0, 10**12 + 2, b"k", b"[1, 2]")
    read: list[bytes | None] = []

    def reading(topic: str, raw: bytes | None) -> object:
        read.append(raw)
        return read_command(topic, raw)

    monkeypatch.setattr(pipeline, "read_command", reading)

    counts = await apply_records(pool, [first, fresh, junk], skip_applied=True)

    assert (counts.duplicate, counts.applied, counts.dead_lettered) == (1, 1, 1)
    assert read == [fresh.value, junk.value]
    read.clear()
    again = await apply_records(pool, [first, fresh], skip_applied=True)
    assert (again.duplicate, again.applied) == (2, 0)
    assert read == []


async def test_apply_records_in_a_dry_run_writes_nothing(
    sessions: async_sessionmaker[AsyncSession], pool: asyncpg.Pool
) -> None:
    async with sessions() as s:
        _, stores, _ = await seed_merchant(s, welcome_bonus_points=10)
    shop = stores[0].code
    card = await _card_of(pool, shop, f"dry.{uuid.uuid4().hex[:8]}@example.com")
    records = [
        FakeRecord(ENROLMENTS, 0, 10**12, b"k", encoded(enrolment(shop, "new@example.com"))),
        FakeRecord(
            PURCHASES, 0, 10**12, b"k", encoded(purchase(shop, {"card_number": card}, "D-1", 700))
        ),
        FakeRecord(PURCHASES, 0, 10**12 + 1, b"k", b"[1, 2]"),
    ]
    before = await table_counts(pool)

    counts = await apply_records(pool, records, dry_run=True)

    assert (counts.applied, counts.dead_lettered) == (2, 1)
    assert await table_counts(pool) == before


def test_a_replay_needs_exactly_one_start_and_an_unambiguous_time() -> None:
    _register()
    runner = CliRunner()

    none = runner.invoke(app, ["replay", "-t", "purchases"])
    two = runner.invoke(
        app, ["replay", "-t", "purchases", "--from-beginning", "--from-offset", "3"]
    )
    naive = runner.invoke(app, ["replay", "-t", "purchases", "--from-datetime", "2026-11-02T09:00"])
    output = runner.invoke(app, ["replay", "-t", "loyalty.results.v1", "--from-beginning"])

    assert none.exit_code == two.exit_code == naive.exit_code == output.exit_code == 2
    assert "exactly one of --from-beginning" in none.output
    assert "exactly one of --from-beginning" in two.output
    assert "has no offset" in naive.output
    assert "is not an input topic" in output.output


async def test_a_dry_run_too_long_for_its_share_of_the_lock_table_stops_and_says_where(
    tool_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    pool: asyncpg.Pool,
) -> None:
    async with sessions() as s:
        _, stores, _ = await seed_merchant(s)
    shop = stores[0].code
    # Every purchase takes a lock on its order until the dry run's transaction ends.
    budget = await pool.fetchval(
        "SELECT current_setting('max_locks_per_transaction')::int * "
        "(current_setting('max_connections')::int "
        "+ current_setting('max_prepared_transactions')::int)"
    )
    orders = budget // DRY_RUN_LOCK_SHARE + 1000
    unknown = {"card_number": "ZZZZ-ZZZZ-ZZZZ"}
    since = await _instant()
    await produce(
        tool_settings.bootstrap,
        [
            (PURCHASES, b"ZZZZ-ZZZZ-ZZZZ", encoded(purchase(shop, unknown, f"L-{i}", 100)))
            for i in range(orders)
        ],
    )
    until = await _instant()
    rows_before = await table_counts(pool)

    report = await replay(
        tool_settings, [Topic.PURCHASES], From(at=since), Until(at=until), dry_run=True
    )

    assert report.dry_run_stopped_at is not None
    assert since <= report.dry_run_stopped_at <= until
    assert 0 < report.records < report.planned
    assert report.counts.applied == report.counts.held == 0  # unknown card, foreign stores
    assert await table_counts(pool) == rows_before


async def test_topics_replayed_together_are_applied_in_the_order_they_were_published(
    tool_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    pool: asyncpg.Pool,
) -> None:
    async with sessions() as s:
        _, stores, _ = await seed_merchant(s)
    shop = stores[0].code
    tag = uuid.uuid4().hex[:8]
    items: list[tuple[str, bytes | None, bytes]] = []
    ids: set[str] = set()
    for i in range(30):
        email = f"pair{i}.{tag}@example.com"
        enrol, buy = enrolment(shop, email), purchase(shop, {"email": email}, f"P-{i}", 500)
        items += [
            (ENROLMENTS, email.encode(), encoded(enrol)),
            (PURCHASES, email.encode(), encoded(buy)),
        ]
        ids |= {enrol["event_id"], buy["event_id"]}
    since = await _instant()
    for item in items:  # one at a time: every purchase is published after its enrolment
        await produce(tool_settings.bootstrap, [item])
    until = await _instant()
    state = await inbox_state(pool)

    report = await replay(
        tool_settings,
        [Topic.PURCHASES, Topic.ENROLLMENTS],  # purchases named first, on purpose
        From(at=since),
        Until(at=until),
        batch_size=7,
    )

    ranges = {(topic, p): rng for topic, parts in report.ranges.items() for p, rng in parts.items()}
    records = await read_range(tool_settings.bootstrap, ranges)
    ours = Ours({**NOTHING, "applied": 60}, ids, set())
    assert counted(report.as_dict()) == expected(ours, records, state)


async def test_an_event_another_worker_commits_meanwhile_is_a_duplicate_not_a_dead_letter(
    sessions: async_sessionmaker[AsyncSession], pool: asyncpg.Pool, monkeypatch: MonkeyPatch
) -> None:
    """A rebalance overlap, twice in a row: the inbox did not hold the event when the batch
    looked, and again when its one-by-one retry looked, but another worker had committed it
    by the time each wrote its inbox row. The event is then a duplicate, not a dead letter."""
    _, _, record = await _applied_purchase(sessions, pool, "race", "R-1")
    real_seen = PgUnitOfWork.seen
    blind = {"left": 2}

    async def seen(self: PgUnitOfWork, event_ids: list[uuid.UUID]) -> set[uuid.UUID]:
        if blind["left"]:
            blind["left"] -= 1
            return set()  # the other worker had not committed yet
        return await real_seen(self, event_ids)

    monkeypatch.setattr(PgUnitOfWork, "seen", seen)
    counts = await apply_records(pool, [record])

    assert blind["left"] == 0
    assert (counts.duplicate, counts.applied, counts.dead_lettered) == (1, 0, 0)
