"""Card updates published on the real Kafka reach the (fake) wallets once, from the current row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka.partitioner import DefaultPartitioner
from prometheus_client import REGISTRY
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.identifiers import new_card_number
from domain.models import AppleDeviceRegistration, LoyaltyCard, WalletSyncState
from domain.soft_delete import soft_delete
from streams.topics import Topic
from tests.support.wallet_fakes import GOOGLE_ISSUER
from tests.support.wallet_seed import (
    balance_changed,
    register_device,
    seed_card,
    seed_wallet_merchant,
    sync_states,
)
from tests.wallet.fake_apns import FakeApns
from tests.wallet.fake_google import FakeGoogle, Fault
from tests.wallet_sync.conftest import MakeSync, SyncHarness
from wallet import WalletSettings

PHONE = "a1" * 32
TABLET = "b2" * 32
GONE = "c3" * 32
DOWN = "d4" * 32


def pushes_to(fake: FakeApns, token: str) -> int:
    return sum(1 for r in fake.requests if r.path == f"/3/device/{token}")


def pushes(wallet: str, outcome: str) -> float:
    """``loyalty_wallet_pushes_total`` of this process."""
    labels = {"platform": wallet, "outcome": outcome}
    return REGISTRY.get_sample_value("loyalty_wallet_pushes_total", labels) or 0.0


def push_counts() -> dict[tuple[str, str], float]:
    return {(w, o): pushes(w, o) for w in ("apple", "google") for o in ("ok", "failed", "gone")}


def google_object(fake: FakeGoogle, card: LoyaltyCard) -> dict[str, Any]:
    return fake.resources["loyaltyObject"][f"{GOOGLE_ISSUER}.{card.card_number}"]


def wallet_calls(fake: FakeGoogle) -> list[tuple[str, str]]:
    return [c for c in fake.calls if c[1].startswith("/walletobjects/")]


async def test_a_burst_is_one_push_and_one_google_object_built_from_the_current_row(
    db_sessions: async_sessionmaker[AsyncSession],
    make_sync: MakeSync,
    both_wallets: WalletSettings,
    fake_apns: FakeApns,
    fake_google: FakeGoogle,
) -> None:
    async with db_sessions() as db:
        merchant, program = await seed_wallet_merchant(db)
        card = await seed_card(db, merchant, program, stamp_count=4, points_balance=40, version=4)
        await register_device(db, card, PHONE)
    harness = await make_sync(both_wallets)
    # Three changes of one card, published before the consumer runs: one batch. The
    # messages carry older balances than the row; the wallets must show the row's.
    await harness.publish(
        *(
            balance_changed(card, merchant.code, version, stamp_count=version, points_balance=0)
            for version in (2, 3, 4)
        )
    )
    await harness.start()
    await harness.caught_up()

    assert pushes_to(fake_apns, PHONE) == 1
    [push] = [r for r in fake_apns.requests if r.path == f"/3/device/{PHONE}"]
    assert push.body == b"{}" and push.http_version == "2"
    assert fake_google.calls_to("POST", "loyaltyClass") == 1
    assert fake_google.calls_to("POST", "loyaltyObject") == 1
    assert fake_google.calls_to("PATCH", "loyaltyObject") == 0
    document = google_object(fake_google, card)
    assert document["loyaltyPoints"]["balance"] == {"int": 40}
    assert document["secondaryLoyaltyPoints"]["balance"] == {"string": "4/10"}
    assert document["classId"] == f"{GOOGLE_ISSUER}.{merchant.code}"

    async with db_sessions() as db:
        states = await sync_states(db, card.id)
        row = await db.get(LoyaltyCard, card.id)
    assert {w: (s.synced_version, s.attempts, s.last_error) for w, s in states.items()} == {
        "apple": (4, 0, None),
        "google": (4, 0, None),
    }
    assert states["apple"].synced_at is not None
    assert row is not None and row.google_object_id == f"{GOOGLE_ISSUER}.{card.card_number}"
    assert harness.sync.totals.synced == {"apple": 1, "google": 1}


async def test_duplicates_and_stale_versions_are_skipped_and_a_change_is_patched(
    db_sessions: async_sessionmaker[AsyncSession],
    make_sync: MakeSync,
    both_wallets: WalletSettings,
    fake_apns: FakeApns,
    fake_google: FakeGoogle,
) -> None:
    async with db_sessions() as db:
        merchant, program = await seed_wallet_merchant(db)
        card = await seed_card(db, merchant, program, stamp_count=3, version=3)
        await register_device(db, card, PHONE)
    harness = await make_sync(both_wallets)
    await harness.start()
    await harness.publish(balance_changed(card, merchant.code, 3))
    await harness.caught_up()
    assert pushes_to(fake_apns, PHONE) == 1
    calls = len(wallet_calls(fake_google))

    # Redelivered (same version, another event id) and stale: nothing happens.
    await harness.publish(
        balance_changed(card, merchant.code, 3), balance_changed(card, merchant.code, 2)
    )
    await harness.caught_up()
    assert pushes_to(fake_apns, PHONE) == 1
    assert len(wallet_calls(fake_google)) == calls
    assert harness.sync.totals.synced == {"apple": 1, "google": 1}
    assert harness.sync.totals.skipped["apple"] >= 1 and harness.sync.totals.skipped["google"] >= 1

    # A real change: one more push, and the object is PATCHed to the new balance.
    async with db_sessions() as db:
        row = await db.get(LoyaltyCard, card.id)
        assert row is not None
        row.stamp_count, row.version = 5, 4
        await db.commit()
    await harness.publish(balance_changed(card, merchant.code, 4, stamp_count=5))
    await harness.caught_up()
    assert pushes_to(fake_apns, PHONE) == 2
    assert fake_google.calls_to("PATCH", "loyaltyObject") == 1
    assert fake_google.calls_to("POST", "loyaltyObject") == 1
    assert google_object(fake_google, card)["secondaryLoyaltyPoints"]["balance"] == {
        "string": "5/10"
    }
    async with db_sessions() as db:
        states = await sync_states(db, card.id)
    assert {w: s.synced_version for w, s in states.items()} == {"apple": 4, "google": 4}


async def test_throttling_is_retried_and_a_gone_device_is_unregistered(
    db_sessions: async_sessionmaker[AsyncSession],
    make_sync: MakeSync,
    both_wallets: WalletSettings,
    fake_apns: FakeApns,
    fake_google: FakeGoogle,
) -> None:
    async with db_sessions() as db:
        merchant, program = await seed_wallet_merchant(db)
        card = await seed_card(db, merchant, program, version=2)
        await register_device(db, card, PHONE)
        await register_device(db, card, GONE)
    fake_apns.script = {
        PHONE: [(429, "TooManyRequests"), (200, None)],
        GONE: [(410, "Unregistered")],
    }
    fake_google.fail("GET", "loyaltyObject", Fault(503, retry_after="0"))
    fake_google.fail("POST", "loyaltyObject", Fault(429, retry_after="0"))
    harness = await make_sync(both_wallets)
    before = push_counts()
    await harness.start()
    await harness.publish(balance_changed(card, merchant.code, 2))
    await harness.caught_up()

    # Counted once per device and card, by final outcome (the retries are not pushes of
    # their own).
    grown = {k: v - before[k] for k, v in push_counts().items() if v != before[k]}
    assert grown == {("apple", "ok"): 1, ("apple", "gone"): 1, ("google", "ok"): 1}
    # The group took the sync in, and it has read all there was: no lag.
    assert harness.sync.health.readiness()[1]["group"] is True
    assert harness.sync.consumer is not None
    await harness.sync.watch.measure(harness.sync.consumer)
    assert [
        REGISTRY.get_sample_value(
            "loyalty_consumer_lag",
            {"group": harness.sync.group_id, "topic": tp.topic, "partition": str(tp.partition)},
        )
        for tp in harness.published
    ] == [0.0] * len(harness.published)

    assert pushes_to(fake_apns, PHONE) == 2  # 429, then delivered
    assert pushes_to(fake_apns, GONE) == 1  # 410 is final
    assert fake_google.calls_to("POST", "loyaltyObject") == 2  # 429, then created
    assert google_object(fake_google, card)["state"] == "ACTIVE"
    async with db_sessions() as db:
        tokens = await db.scalars(
            select(AppleDeviceRegistration.push_token).where(
                AppleDeviceRegistration.card_id == card.id
            )
        )
        assert list(tokens) == [PHONE]
        states = await sync_states(db, card.id)
    assert {w: (s.synced_version, s.attempts) for w, s in states.items()} == {
        "apple": (2, 0),
        "google": (2, 0),
    }


async def test_a_final_failure_is_recorded_and_the_sweep_catches_up(
    db_sessions: async_sessionmaker[AsyncSession],
    make_sync: MakeSync,
    both_wallets: WalletSettings,
    fake_apns: FakeApns,
    fake_google: FakeGoogle,
) -> None:
    async with db_sessions() as db:
        merchant, program = await seed_wallet_merchant(db)
        card = await seed_card(db, merchant, program, version=7)
        await register_device(db, card, DOWN)
    fake_apns.script = {DOWN: [(503, "ServiceUnavailable")]}
    fake_google.fail("GET", "loyaltyObject", *[Fault(500, retry_after="0")] * 3)
    harness = await make_sync(both_wallets)
    before = push_counts()
    await harness.start()
    await harness.publish(balance_changed(card, merchant.code, 7))
    await harness.caught_up()

    grown = {k: v - before[k] for k, v in push_counts().items() if v != before[k]}
    assert grown == {("apple", "failed"): 1, ("google", "failed"): 1}

    assert pushes_to(fake_apns, DOWN) == both_wallets.sync_apns_attempts
    async with db_sessions() as db:
        states = await sync_states(db, card.id)
    apple, google = states["apple"], states["google"]
    assert (apple.synced_version, apple.attempts, apple.synced_at) == (0, 1, None)
    assert apple.last_error == "APNs: 1 of 1 devices not reached (503 ServiceUnavailable)"
    assert apple.last_error_at is not None
    assert (google.synced_version, google.attempts) == (0, 1)
    assert google.last_error is not None and "HTTP 500" in google.last_error
    assert DOWN not in (apple.last_error + google.last_error)
    assert card.apple_authentication_token not in (apple.last_error + google.last_error)

    # Not due yet: the first retry waits one sweep interval after the error.
    nothing = await harness.sync.sweep_once()
    assert nothing.cards == 0 and pushes_to(fake_apns, DOWN) == 3

    fake_apns.script = {}
    later = datetime.now(UTC) + timedelta(hours=2)
    report = await harness.sync.sweep_once(as_of=later)
    assert report.cards == 1 and report.synced == {"apple": 1, "google": 1}
    assert pushes_to(fake_apns, DOWN) == 4
    assert google_object(fake_google, card)["accountId"] == card.card_number
    async with db_sessions() as db:
        states = await sync_states(db, card.id)
    assert {w: (s.synced_version, s.attempts) for w, s in states.items()} == {
        "apple": (7, 0),
        "google": (7, 0),
    }
    # The error stays as history of the last failure; attempts says the card is in sync.
    assert states["apple"].last_error is not None
    # A sweep in sync has nothing left to do.
    assert (await harness.sync.sweep_once(as_of=later)).cards == 0


async def test_the_sweep_syncs_a_card_whose_update_was_lost(
    db_sessions: async_sessionmaker[AsyncSession],
    make_sync: MakeSync,
    both_wallets: WalletSettings,
    fake_apns: FakeApns,
) -> None:
    async with db_sessions() as db:
        merchant, program = await seed_wallet_merchant(db)
        card = await seed_card(db, merchant, program, version=1)
        await register_device(db, card, PHONE)
    harness = await make_sync(both_wallets)
    await harness.start()
    await harness.publish(balance_changed(card, merchant.code, 1))
    await harness.caught_up()
    assert pushes_to(fake_apns, PHONE) == 1
    async with db_sessions() as db:  # changed, but its message never arrives
        row = await db.get(LoyaltyCard, card.id)
        assert row is not None
        row.version = 2
        await db.commit()

    # Within a sweep interval of the change, the message may still be on its way.
    assert (await harness.sync.sweep_once()).cards == 0
    report = await harness.sync.sweep_once(as_of=datetime.now(UTC) + timedelta(hours=2))
    assert report.synced == {"apple": 1, "google": 1}
    assert pushes_to(fake_apns, PHONE) == 2


async def test_one_push_per_device_whatever_the_number_of_its_cards(
    db_sessions: async_sessionmaker[AsyncSession],
    make_sync: MakeSync,
    both_wallets: WalletSettings,
    fake_apns: FakeApns,
) -> None:
    harness = await make_sync(both_wallets)
    # Two card numbers of one partition, published before the consumer runs: one batch.
    first_number, second_number = await numbers_of_one_partition(harness, 2)
    async with db_sessions() as db:
        merchant, program = await seed_wallet_merchant(db)
        first = await seed_card(db, merchant, program, version=2, card_number=first_number)
        second = await seed_card(db, merchant, program, version=5, card_number=second_number)
        await register_device(db, first, PHONE, device="phone")
        await register_device(db, second, PHONE, device="phone")
        await register_device(db, second, TABLET, device="tablet")
    await harness.publish(
        balance_changed(first, merchant.code, 2), balance_changed(second, merchant.code, 5)
    )
    await harness.start()
    await harness.caught_up()
    # The phone holds both cards under one push token: one push makes it fetch both.
    assert pushes_to(fake_apns, PHONE) == 1
    assert pushes_to(fake_apns, TABLET) == 1
    assert harness.sync.totals.synced == {"apple": 2, "google": 2}


async def numbers_of_one_partition(harness: SyncHarness, count: int) -> list[str]:
    """Fresh card numbers that Kafka's default partitioner puts in one partition."""
    partitions = sorted(await harness.producer.partitions_for(Topic.WALLET_UPDATES.value))
    choose = DefaultPartitioner()
    by_partition: dict[int, list[str]] = {}
    while True:
        number = new_card_number()
        found = by_partition.setdefault(choose(number.encode(), partitions, partitions), [])
        found.append(number)
        if len(found) == count:
            return found


async def test_unknown_deleted_and_unreadable_updates_are_skipped(
    db_sessions: async_sessionmaker[AsyncSession],
    make_sync: MakeSync,
    both_wallets: WalletSettings,
    fake_apns: FakeApns,
    fake_google: FakeGoogle,
) -> None:
    async with db_sessions() as db:
        merchant, program = await seed_wallet_merchant(db)
        deleted = await seed_card(db, merchant, program, version=2)
        await register_device(db, deleted, PHONE)
        await soft_delete(db, LoyaltyCard, [deleted.id], by="test")
        await db.commit()
    harness = await make_sync(both_wallets)
    await harness.start()
    ghost = balance_changed(deleted, merchant.code, 9, card_number="0000-0000-0000")
    await harness.publish(balance_changed(deleted, merchant.code, 2), ghost)
    await harness.publish(b"not json", key="0000-0000-0000")
    await harness.caught_up()
    assert fake_apns.requests == []
    assert wallet_calls(fake_google) == []
    # At least: other test sessions may publish on the shared topic meanwhile.
    assert harness.sync.totals.invalid >= 1
    assert harness.sync.totals.unknown_cards >= 2
    async with db_sessions() as db:
        assert await db.scalar(select(func.count()).select_from(WalletSyncState)) == 0


async def test_without_credentials_nothing_is_synced_or_recorded(
    db_sessions: async_sessionmaker[AsyncSession],
    make_sync: MakeSync,
    fake_apns: FakeApns,
) -> None:
    async with db_sessions() as db:
        merchant, program = await seed_wallet_merchant(db)
        card = await seed_card(db, merchant, program, version=2)
        await register_device(db, card, PHONE)
    harness = await make_sync(WalletSettings(_env_file=None))
    assert harness.sync.enabled == ()
    await harness.start()
    await harness.publish(balance_changed(card, merchant.code, 2))
    await harness.caught_up()  # consumed and committed all the same
    assert fake_apns.requests == []
    assert (await harness.sync.sweep_once()).cards == 0
    async with db_sessions() as db:
        assert await db.scalar(select(func.count()).select_from(WalletSyncState)) == 0
