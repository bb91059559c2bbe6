"""``python -m bench.trial_bench``: how long a campaign dry run takes on a busy merchant's year.

Seeds ``--purchases`` recorded purchases (default 1,000,000, a third with three line items)
over 50,000 cards and 365 days into a fresh database of the bench stack, set-based in SQL,
then times ``domain.campaign_trial.try_campaigns`` (what ``loyalty campaign simulate`` and the
admin's "Try on past traffic" run) with two campaigns tried: a category multiplier on
weekday afternoons and a budgeted bonus. Prints the seconds, the purchases per second and
the report's totals. The issue's figure: a year of 1M purchases in under a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime, timedelta

import asyncpg

from bench.environment import bench_settings, fresh_database, seed, stack_down, stack_up
from domain.campaign_trial import tried_terms, try_campaigns

START = datetime(2025, 1, 1, tzinfo=UTC)

_PURCHASES = """
INSERT INTO purchases (merchant_id, order_reference, card_id, store_id, amount_cents, currency,
    points_earned, stamps_earned, refunded_cents, points_voided, stamps_voided,
    source_event_id, occurred_at, earnings)
SELECT $1, 'trial-' || g, c.id, $2, 300 + (g::bigint * 7919) % 4700, 'EUR', 0, 0, 0, 0, 0,
       gen_random_uuid(), $3::timestamptz + g * (interval '365 days' / $4),
       CASE WHEN g % 3 = 0 THEN jsonb_build_object(
           'lines', jsonb_build_array(
               jsonb_build_object('sku', 'cappuccino', 'category', 'coffee', 'quantity', 1,
                                  'amount_cents', 120, 'points', 0),
               jsonb_build_object('sku', 'croissant', 'category', 'pastry', 'quantity', 1,
                                  'amount_cents', 90, 'points', 0),
               jsonb_build_object('sku', 'sandwich', 'category', 'food', 'quantity', 1,
                                  'amount_cents', 90, 'points', 0)),
           'rest_cents', (300 + (g::bigint * 7919) % 4700) - 300, 'rest_points', 0, 'bonuses',
           jsonb_build_array())
       END
FROM generate_series(1, $4) AS g
JOIN loyalty_cards c ON c.id = (SELECT min(id) FROM loyalty_cards) + g % $5
"""

TRIED = [
    {
        "code": "pastry-afternoons",
        "multiplier": 2,
        "bonus_points": 0,
        "min_basket_cents": 0,
        "starts_at": None,
        "ends_at": None,
        "days": ["mon", "tue", "wed", "thu", "fri"],
        "hours": "14:00-17:00",
        "skus": [],
        "categories": ["pastry"],
        "budget_points": None,
        "max_awards_per_card": None,
    },
    {
        "code": "big-basket",
        "multiplier": 1,
        "bonus_points": 50,
        "min_basket_cents": 3000,
        "starts_at": None,
        "ends_at": None,
        "days": [],
        "hours": None,
        "skus": [],
        "categories": [],
        "budget_points": 1_000_000,
        "max_awards_per_card": 10,
    },
]


async def _run(purchases: int, cards: int) -> None:
    stack = stack_up(bench_settings())
    try:
        url = await fresh_database(stack)
        seeded = await seed(url, stack.settings, cards)
        conn = await asyncpg.connect(url)
        try:
            start = time.monotonic()
            await conn.execute(
                _PURCHASES, seeded.merchant_id, seeded.store_id, START, purchases, seeded.cards
            )
            await conn.execute("ANALYZE purchases")
            print(f"seeded {purchases:,} purchases in {time.monotonic() - start:.1f} s")
            start, cpu = time.monotonic(), time.process_time()
            report = await try_campaigns(
                conn, "bench", tried_terms(TRIED), START, START + timedelta(days=366)
            )
            wall, cpu = time.monotonic() - start, time.process_time() - cpu
        finally:
            await conn.close()
    finally:
        if stack.started_here:
            stack_down(stack)
    print(
        f"dry run of 2 campaigns over {report.purchases:,} purchases: {wall:.1f} s "
        f"({report.purchases / wall:,.0f} purchases/s; this process's CPU {cpu:.1f} s); "
        f"target: under 60 s"
    )
    print(f"points without {report.points_without:,}, with {report.points_with:,}")
    for c in report.campaigns:
        print(f"  {c.as_dict()}")


def main() -> None:
    """Seed and time one dry run."""
    parser = argparse.ArgumentParser(prog="python -m bench.trial_bench", description=__doc__)
    parser.add_argument("--purchases", type=int, default=1_000_000)
    parser.add_argument("--cards", type=int, default=50_000)
    args = parser.parse_args()
    asyncio.run(_run(args.purchases, args.cards))


if __name__ == "__main__":
    main()
