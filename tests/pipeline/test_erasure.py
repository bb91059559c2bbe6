"""Erasing a customer (CONTRACT.md 7.6) beside the running pipeline: the command line erases,
the relay publishes the deactivation, the audit stays clean, the engine no longer finds the
customer, and the same email enrols a new customer."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.settings import REPO_ROOT
from domain.audit import audit_database
from domain.customers.export import export_customer, to_json
from domain.models import Customer, LoyaltyCard
from tests.pipeline.stories import (
    enrol,
    enrolment,
    outcome,
    outcomes,
    purchase,
    summary,
    wallet_updates,
)
from tests.support.pipeline import Bus, PipelineProcesses
from tests.support.seed import seed_merchant

Sessions = async_sessionmaker[AsyncSession]


async def _loyalty(pipeline: PipelineProcesses, *args: str) -> subprocess.CompletedProcess[str]:
    """``loyalty ARGS`` as an operator runs it, on this session's database."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "loyalty", *args],
        env=pipeline.env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


async def _deactivation(bus: Bus, card: str, timeout: float = 60.0) -> dict[str, Any]:
    """The card's ``card.balance_changed`` with ``is_active`` false, once it is on Kafka."""
    deadline = time.monotonic() + timeout
    while True:
        await bus.drain()
        found = [u for u in wallet_updates(bus, card) if not u["is_active"]]
        if found:
            return found[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"no deactivation of {card}: {wallet_updates(bus, card)}")


async def _customer_of(sessions: Sessions, card: str) -> Customer:
    async with sessions() as s:
        customer = await s.scalar(
            select(Customer)
            .join(LoyaltyCard, LoyaltyCard.customer_id == Customer.id)
            .where(LoyaltyCard.card_number == card)
        )
        assert customer is not None
        return customer


async def test_an_erased_customer_leaves_the_pipeline_and_the_ledger_adds_up(
    bus: Bus, sessions: Sessions, pipeline: PipelineProcesses, database_url: str
) -> None:
    async with sessions() as s:
        merchant, stores, _ = await seed_merchant(s, welcome_bonus_points=20, points_per_euro=10)
    shop = stores[0].code
    email = f"ann-{uuid.uuid4().hex[:8]}@example.com"
    personal = {"email": email, "first_name": "Annick", "last_name": "Quist", "phone": "+35299"}
    joined = await outcome(bus, enrolment(shop, personal))
    card = joined["card_number"]
    other = await enrol(bus, shop, {"email": f"bob-{uuid.uuid4().hex[:8]}@example.com"})
    bought = await outcomes(
        bus, purchase(shop, card, 1200), purchase(shop, {"email": email.upper()}, 300)
    )
    assert [b["points_balance"] for b in bought] == [140, 170]
    ann = await _customer_of(sessions, card)
    bob = await _customer_of(sessions, other)
    await bus.read_to_end()
    before = {u["version"] for u in wallet_updates(bus, card)}

    erased = await _loyalty(
        pipeline, "customer", "erase", card, "--merchant", merchant.code, "--yes"
    )
    assert erased.returncode == 0, erased.stderr
    assert erased.stdout == f"customer {ann.id} erased: 1 card(s) deactivated ({card})\n"

    # The world learns it from Kafka: is_active false, one version up, the balance as it was.
    update = await _deactivation(bus, card)
    assert (update["is_active"], update["reason"], update["version"]) == (
        False,
        "card_deactivated",
        max(before) + 1,
    )
    assert (update["points_balance"], update["stamp_count"]) == (170, 2)
    report = await audit_database(database_url, merchant_code=merchant.code, unsent_grace_s=60)
    assert report.clean, [str(d) for d in report.differences]

    # The engine finds the customer neither by card (inactive) nor by email (gone).
    by_card, by_email = await outcomes(
        bus, purchase(shop, card, 500), purchase(shop, {"email": email}, 500)
    )
    assert summary(by_card) == ("rejected", ["card_inactive"], 0, 0)
    assert summary(by_email) == ("rejected", ["card_not_found"], 0, 0)
    # Another customer's export holds nothing of hers.
    async with sessions() as s:
        theirs = to_json(await export_customer(s, bob.id))
    for hers in (email, "Annick", "Quist", "35299", card):
        assert hers not in theirs
    # The same email enrols a new customer, with a new card and a new welcome bonus.
    again = await outcome(bus, enrolment(shop, {"email": email}))
    assert summary(again) == ("applied", [], 0, 20)
    assert again["card_number"] != card
    newcomer = await _customer_of(sessions, again["card_number"])
    assert newcomer.id != ann.id and newcomer.email == email
    assert (await _customer_of(sessions, card)).erased_at is not None

    # Nothing published after the erasure carries her personal data.
    await bus.read_to_end()
    published = json.dumps(
        [
            by_card,
            by_email,
            again,
            *wallet_updates(bus, card),
            *wallet_updates(bus, again["card_number"]),
        ]
    )
    for hers in ("Annick", "Quist", "35299", email.split("@")[0]):
        assert hers not in published
    # Erasing again says it is done.
    twice = await _loyalty(pipeline, "customer", "erase", card, "--merchant", merchant.code)
    assert twice.returncode == 0, twice.stderr
    assert twice.stdout.startswith(f"customer {ann.id} is already erased")
