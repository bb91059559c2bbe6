"""``loyalty simulate`` sends only to the demo merchants, or to those named with --merchant,
never to the other merchants of the same database (someone's real ones)."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import yaml
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from consumers.simulate import (
    DEMO_FILE,
    DemoFileError,
    Traffic,
    choose_merchants,
    demo_merchant_codes,
    load_merchants,
)
from domain.provisioning import apply, load_file
from streams.parsing import ParseError, parse_input
from streams.topics import Topic
from tests.support.seed import seed_merchant
from tests.tools.helpers import end_offsets, loyalty, read_range

INPUTS = [
    Topic.ENROLLMENTS.value,
    Topic.PURCHASES.value,
    Topic.RETURNS.value,
    Topic.REDEMPTIONS.value,
]
NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def demo_file_with_unique_codes(folder: Path) -> tuple[Path, str, set[str]]:
    """The first merchant of ``demo/demo.yaml`` under codes of its own (the tools' database
    is shared by every tools test of the session): the file, the merchant, its stores."""
    data: dict[str, Any] = yaml.safe_load(DEMO_FILE.read_text(encoding="utf-8"))
    merchant = data["merchants"][0]
    tag = uuid.uuid4().hex[:6]
    merchant["code"] = f"demo-{tag}"
    renamed = {store["code"]: f"D{tag}-{i}" for i, store in enumerate(merchant["stores"])}
    for store in merchant["stores"]:
        store["code"] = renamed[store["code"]]
    for member in merchant.get("staff", []):
        member["store"] = renamed[member["store"]]
    path = folder / "demo.yaml"
    path.write_text(yaml.safe_dump({"merchants": [merchant]}, allow_unicode=True))
    return path, merchant["code"], set(renamed.values())


@pytest.fixture
async def demo_and_real(
    tmp_path: Path, sessions: async_sessionmaker[AsyncSession]
) -> dict[str, Any]:
    """A demo merchant provisioned from a demo file, and a merchant that is not in it."""
    path, demo_code, demo_stores = demo_file_with_unique_codes(tmp_path)
    async with sessions() as s:
        await apply(s, load_file(path), rounds=4)
        await s.commit()
    async with sessions() as s:
        real, real_stores, _ = await seed_merchant(s, stores=2, rewards={"coffee": 10})
    return {
        "file": path,
        "demo": demo_code,
        "demo_stores": demo_stores,
        "real": real.code,
        "real_stores": {store.code for store in real_stores},
    }


def test_the_demo_files_merchants_are_read_as_provisioning_reads_them() -> None:
    assert demo_merchant_codes() == tuple(m.code for m in load_file(DEMO_FILE).merchants)
    assert demo_merchant_codes() == ("cafe-lux", "bakery-mie")
    default = choose_merchants()
    assert (default.codes, default.named, default.source) == (
        ("cafe-lux", "bakery-mie"),
        False,
        str(DEMO_FILE),
    )
    named = choose_merchants(["b", "a", "b"])
    assert (named.codes, named.named) == (("b", "a"), True)


def test_an_unreadable_demo_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DemoFileError, match="cannot read the demo merchants"):
        demo_merchant_codes(tmp_path / "missing.yaml")
    empty = tmp_path / "empty.yaml"
    empty.write_text("merchants: []\n")
    with pytest.raises(DemoFileError, match="names no merchant"):
        demo_merchant_codes(empty)


async def test_generated_events_name_only_the_demo_merchants_stores(
    demo_and_real: dict[str, Any], tools_database_url: str
) -> None:
    choice = choose_merchants((), demo_and_real["file"])
    conn = await asyncpg.connect(tools_database_url)
    try:
        chosen = await load_merchants(conn, choice.codes)
        # The other merchant is live and simulable: only the choice keeps it out.
        named = await load_merchants(conn, [demo_and_real["real"]])
        nothing = await load_merchants(conn, [])
    finally:
        await conn.close()
    assert [m.code for m in chosen] == [demo_and_real["demo"]]
    assert [m.code for m in named] == [demo_and_real["real"]]
    assert nothing == []

    traffic = Traffic(chosen, random.Random(11))
    stores = [str(getattr(traffic.next_event(NOW), "store_code", "")) for _ in range(2000)]

    assert set(stores) == demo_and_real["demo_stores"]
    assert not set(stores) & demo_and_real["real_stores"]


async def test_the_command_sends_to_the_demo_merchants_and_says_so(
    demo_and_real: dict[str, Any], cli_env: dict[str, str]
) -> None:
    bootstrap = cli_env["LOYALTY_KAFKA_BOOTSTRAP"]
    before = await end_offsets(bootstrap, INPUTS)

    ran = await loyalty(
        cli_env,
        "simulate",
        "--rate",
        "50",
        "--duration",
        "2",
        "--demo-file",
        str(demo_and_real["file"]),
        "--seed",
        "3",
        "--json",
    )

    assert ran.code == 0, ran.err
    assert ran.json()["merchants"] == [demo_and_real["demo"]]
    assert f"sending to {demo_and_real['demo']} (of {demo_and_real['file']})" in ran.err
    after = await end_offsets(bootstrap, INPUTS)
    records = await read_range(bootstrap, {tp: (before[tp], end) for tp, end in after.items()})
    named: list[str] = []
    for rec in records:
        message = parse_input(rec.topic, rec.value)
        if not isinstance(message, ParseError):
            named.append(str(getattr(message, "store_code", "")))
    ours = [s for s in named if s in demo_and_real["demo_stores"] | demo_and_real["real_stores"]]
    assert len(ours) == ran.json()["published"] > 0
    assert not set(ours) & demo_and_real["real_stores"]


async def test_named_merchants_replace_the_demo_ones(
    demo_and_real: dict[str, Any], cli_env: dict[str, str]
) -> None:
    ran = await loyalty(
        cli_env,
        "simulate",
        "--duration",
        "0.5",
        "--merchant",
        demo_and_real["real"],
        "--demo-file",
        str(demo_and_real["file"]),
        "--json",
    )

    assert ran.code == 0, ran.err
    assert ran.json()["merchants"] == [demo_and_real["real"]]
    assert f"sending to {demo_and_real['real']} (named with --merchant)" in ran.err


async def test_an_unreadable_demo_file_stops_the_command(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    ran = await loyalty(
        cli_env, "simulate", "--duration", "0.5", "--demo-file", str(tmp_path / "nope.yaml")
    )

    assert ran.code == 2
    assert "cannot read the demo merchants" in ran.err and "Traceback" not in ran.err


async def test_it_waits_for_demo_merchants_not_provisioned_yet(
    cli_env: dict[str, str], tmp_path: Path, sessions: async_sessionmaker[AsyncSession]
) -> None:
    path, code, _ = demo_file_with_unique_codes(tmp_path)
    async with sessions() as s:
        await seed_merchant(s, stores=1)  # a merchant exists, just not a demo one

    ran = await loyalty(cli_env, "simulate", "--duration", "1", "--demo-file", str(path), "--json")

    assert ran.code == 0, ran.err
    assert f"none of the merchants of {path} ({code})" in ran.err and "waiting" in ran.err
    assert ran.json()["published"] == 0 and ran.json()["merchants"] == []
