"""``loyalty campaign simulate``: campaigns tried on recorded purchases, changing nothing."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from consumers.pipeline import apply_records
from core.enums import ProgramType
from streams.topics import Topic
from tests.support.seed import seed_merchant
from tests.tools.helpers import (
    FakeRecord,
    encoded,
    end_offsets,
    enrolment,
    event,
    loyalty,
    table_counts,
)

# A Tuesday, 15:00 on Luxembourg's clock (UTC+1 in March).
TUESDAY = datetime(2026, 3, 3, 14, 0, tzinfo=UTC)
CROISSANT = {"sku": "croissant", "category": "pastry", "quantity": 2, "amount_cents": 500}
COFFEE = {"sku": "coffee", "category": "drink", "quantity": 1, "amount_cents": 300}


async def _history(pool: asyncpg.Pool, shop: str) -> list[str]:
    """Two cards, each buying pastries and coffee on three Tuesdays and a Wednesday."""
    tag = uuid.uuid4().hex[:8]
    records = [
        FakeRecord(Topic.ENROLLMENTS.value, 0, 0, b"k", encoded(enrolment(shop, f"{n}.{tag}@x.lu")))
        for n in ("a", "b")
    ]
    assert (await apply_records(pool, records)).applied == 2
    cards = [
        r["card_number"]
        for r in await pool.fetch(
            "SELECT c.card_number FROM loyalty_cards c JOIN stores s ON s.merchant_id = "
            "c.merchant_id WHERE s.code = $1 ORDER BY c.id",
            shop,
        )
    ]
    purchases = []
    for week in range(3):
        for card in cards:
            for at in (TUESDAY + timedelta(weeks=week), TUESDAY + timedelta(weeks=week, days=1)):
                purchases.append(
                    event(
                        "purchase.completed",
                        shop,
                        order_reference=f"o-{uuid.uuid4().hex[:10]}",
                        amount_cents=800,
                        card={"card_number": card},
                        lines=[CROISSANT, COFFEE],
                    )
                    | {"occurred_at": at.isoformat()}
                )
    batch = [
        FakeRecord(Topic.PURCHASES.value, 0, i, b"k", encoded(m)) for i, m in enumerate(purchases)
    ]
    assert (await apply_records(pool, batch)).applied == len(purchases)
    return cards


def _file(tmp_path: Path, *campaigns: dict[str, Any]) -> Path:
    path = tmp_path / "trial.json"
    path.write_text(json.dumps({"campaigns": list(campaigns)}))
    return path


async def test_a_trial_reports_each_campaign_and_changes_nothing(
    cli_env: dict[str, str],
    sessions: async_sessionmaker[AsyncSession],
    pool: asyncpg.Pool,
    tmp_path: Path,
) -> None:
    async with sessions() as s:
        merchant, stores, _ = await seed_merchant(s, type=ProgramType.POINTS, points_per_euro=10)
    await _history(pool, stores[0].code)
    trial = _file(
        tmp_path,
        {
            "id": "pastry-tuesday",
            "name": "Double pastries on Tuesday afternoons",
            "days": ["tue"],
            "hours": "14:00-17:00",
            "categories": ["pastry"],
            "multiplier": 2,
            "budget_points": 200,
        },
    )
    rows_before = await table_counts(pool)
    topics = [t.value for t in Topic if t.value.startswith("loyalty.")]
    offsets_before = await end_offsets(cli_env["LOYALTY_KAFKA_BOOTSTRAP"], topics)

    ran = await loyalty(
        cli_env, "campaign", "simulate", str(trial), "--merchant", merchant.code,
        "--from", "2026-03-01T00:00:00+01:00", "--to", "2026-04-01T00:00:00+02:00", "--json",
    )  # fmt: skip

    assert ran.code == 0, ran.err
    report = ran.json()
    # 12 purchases of 80 points; the 6 on Tuesdays would earn 50 more each, 200 at most.
    assert report["purchases"] == 12
    assert report["without"]["points"] == 960
    assert report["with"]["points"] == 960 + 200
    (figures,) = report["campaigns"]
    assert figures["id"] == "pastry-tuesday"
    assert (figures["purchases_matched"], figures["cards_reached"]) == (4, 2)
    assert figures["points_awarded"] == 200
    assert figures["budget_ran_out_at"] == (TUESDAY + timedelta(weeks=1)).isoformat()
    assert sum(d["with"] - d["without"] for d in report["per_day"]) == 200
    assert await table_counts(pool) == rows_before
    assert await end_offsets(cli_env["LOYALTY_KAFKA_BOOTSTRAP"], topics) == offsets_before

    text = await loyalty(
        cli_env, "campaign", "simulate", str(trial), "--merchant", merchant.code,
        "--from", "2026-03-01T00:00:00+01:00", "--to", "2026-04-01T00:00:00+02:00",
    )  # fmt: skip
    assert text.code == 0, text.err
    assert "pastry-tuesday: 4 purchases, 2 cards, 200 points" in text.out


async def test_a_bad_trial_file_names_the_field(cli_env: dict[str, str], tmp_path: Path) -> None:
    trial = _file(tmp_path, {"id": "x", "name": "X", "hours": "17:00-14:00", "multiplier": 2})

    ran = await loyalty(
        cli_env, "campaign", "simulate", str(trial), "--merchant", "nobody",
        "--from", "2026-03-01T00:00:00+01:00", "--to", "2026-04-01T00:00:00+02:00",
    )  # fmt: skip

    assert ran.code == 2
    assert ran.err.startswith("campaigns[0].hours: ")


async def test_an_unknown_merchant_is_refused(cli_env: dict[str, str], tmp_path: Path) -> None:
    trial = _file(tmp_path, {"id": "x", "name": "X", "multiplier": 2})

    ran = await loyalty(
        cli_env, "campaign", "simulate", str(trial), "--merchant", "nobody-here",
        "--from", "2026-03-01T00:00:00+01:00", "--to", "2026-04-01T00:00:00+02:00",
    )  # fmt: skip

    assert ran.code == 2
    assert "nobody-here" in ran.err
