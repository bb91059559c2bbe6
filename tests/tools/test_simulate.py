"""``loyalty simulate``: valid, keyed, paced traffic that the engine mostly applies."""

from __future__ import annotations

import uuid
from collections import Counter

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from consumers.pipeline import apply_records
from streams.inputs import InputMessage
from streams.parsing import ParseError, key_for, parse_input
from streams.topics import Topic
from tests.support.seed import seed_merchant
from tests.tools.helpers import (
    FakeRecord,
    encoded,
    end_offsets,
    enrolment,
    loyalty,
    read_range,
)

INPUTS = [
    Topic.ENROLLMENTS.value,
    Topic.PURCHASES.value,
    Topic.RETURNS.value,
    Topic.REDEMPTIONS.value,
]
RATE, SECONDS = 20, 3


async def test_a_few_seconds_of_traffic_is_valid_keyed_and_mostly_applied(
    cli_env: dict[str, str],
    sessions: async_sessionmaker[AsyncSession],
    pool: asyncpg.Pool,
) -> None:
    async with sessions() as s:
        merchant, stores, _ = await seed_merchant(
            s, stores=3, welcome_bonus_points=100, rewards={"coffee": 100, "cake": 250}
        )
    shops = {store.code for store in stores}
    tag = uuid.uuid4().hex[:8]
    existing = [
        FakeRecord(
            Topic.ENROLLMENTS.value, 0, 0, None, encoded(enrolment(shop, f"c{i}.{tag}@x.lu"))
        )
        for i, shop in enumerate(sorted(shops) * 4)
    ]
    assert (await apply_records(pool, existing)).applied == 12
    bootstrap = cli_env["LOYALTY_KAFKA_BOOTSTRAP"]
    before = await end_offsets(bootstrap, INPUTS)

    ran = await loyalty(
        cli_env,
        "simulate",
        "--rate",
        str(RATE),
        "--duration",
        str(SECONDS),
        "--merchant",
        merchant.code,
        "--seed",
        "7",
        "--json",
    )

    assert ran.code == 0, ran.err
    report = ran.json()
    after = await end_offsets(bootstrap, INPUTS)
    records = await read_range(bootstrap, {tp: (before[tp], end) for tp, end in after.items()})
    ours: list[tuple[int, InputMessage, FakeRecord]] = []
    for rec in records:
        message = parse_input(rec.topic, rec.value)
        if isinstance(message, ParseError) or getattr(message, "store_code", None) not in shops:
            continue  # another test's record
        assert rec.key == key_for(message).encode()
        fake = FakeRecord(rec.topic, rec.partition, rec.offset, rec.key, rec.value)
        ours.append((rec.timestamp, message, fake))
    assert report["published"] == len(ours) == sum(report["by_type"].values())
    assert report["failed"] == 0 and report["merchants"] == [merchant.code]
    # Paced: about RATE a second (the bucket never bursts past a tenth of a second's worth).
    assert RATE * SECONDS * 0.5 <= len(ours) <= RATE * report["seconds"] + 3
    kinds = Counter(m.type for _, m, _ in ours)
    assert kinds == Counter({k: v for k, v in report["by_type"].items() if v})
    assert kinds["purchase.completed"] > kinds["enrollment.requested"] > 0

    ours.sort(key=lambda item: item[0])
    counts = await apply_records(pool, [fake for _, _, fake in ours])

    assert counts.dead_lettered == 0
    assert counts.applied >= 0.8 * len(ours), counts


async def test_an_unknown_merchant_is_refused(cli_env: dict[str, str]) -> None:
    ran = await loyalty(cli_env, "simulate", "--merchant", "no-such-merchant", "--duration", "1")

    assert ran.code == 2
    assert "no-such-merchant" in ran.err
