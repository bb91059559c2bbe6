"""An erased customer's devices (CONTRACT.md 7.6): pushed once more for the void pass, then
their push tokens replaced by pseudonyms and never pushed again; the Google object inactive
and nameless."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.customers.erasure import erase_customer
from domain.models import AppleDeviceRegistration, LoyaltyCard
from tests.support.wallet_fakes import GOOGLE_ISSUER, wallet_settings_for
from tests.support.wallet_seed import (
    balance_changed,
    register_device,
    seed_card,
    seed_wallet_merchant,
)
from tests.wallet.fake_apns import FakeApns
from tests.wallet.fake_google import FakeGoogle
from tests.wallet.pki import Issued
from tests.wallet_sync.conftest import MakeSync
from wallet import WalletSettings

PHONE = "e1" * 32
TABLET = "e2" * 32

Sessions = async_sessionmaker[AsyncSession]


def pushes_to(fake: FakeApns, token: str) -> int:
    return sum(1 for r in fake.requests if r.path == f"/3/device/{token}")


async def _tokens(sessions: Sessions, card_id: int) -> list[str]:
    async with sessions() as db:
        tokens = await db.scalars(
            select(AppleDeviceRegistration.push_token)
            .where(AppleDeviceRegistration.card_id == card_id)
            .order_by(AppleDeviceRegistration.id)
        )
        return ["erased" if t.startswith("erased-") else t for t in tokens]


async def _erased_card(sessions: Sessions, *tokens: str) -> tuple[str, LoyaltyCard]:
    """A card with devices registered, whose customer is then erased; the merchant's code
    and the card as it stands after the erasure."""
    async with sessions() as db:
        merchant, program = await seed_wallet_merchant(db)
        card = await seed_card(db, merchant, program, points_balance=40)
        for token in tokens:
            await register_device(db, card, token)
    async with sessions() as db, db.begin():
        await erase_customer(db, card.customer_id, actor="admin:root", now=datetime.now(UTC))
    async with sessions() as db:
        erased = await db.get(LoyaltyCard, card.id)
        assert erased is not None and not erased.is_active
        return merchant.code, erased


async def test_the_devices_are_pushed_the_void_pass_then_their_tokens_are_replaced(
    db_sessions: Sessions,
    make_sync: MakeSync,
    both_wallets: WalletSettings,
    fake_apns: FakeApns,
    fake_google: FakeGoogle,
) -> None:
    merchant, card = await _erased_card(db_sessions, PHONE, TABLET)
    # The erasure leaves the tokens: the deactivation has not been pushed yet.
    assert await _tokens(db_sessions, card.id) == [PHONE, TABLET]
    harness = await make_sync(both_wallets)
    await harness.start()
    await harness.publish(
        balance_changed(card, merchant, card.version, is_active=False, reason="card_deactivated")
    )
    await harness.caught_up()
    assert (pushes_to(fake_apns, PHONE), pushes_to(fake_apns, TABLET)) == (1, 1)
    assert await _tokens(db_sessions, card.id) == ["erased", "erased"]
    google = fake_google.resources["loyaltyObject"][f"{GOOGLE_ISSUER}.{card.card_number}"]
    assert google["state"] == "INACTIVE"
    assert google["accountName"] == card.card_number  # no name any more

    # A later change of the card reaches no device of hers.
    async with db_sessions() as db, db.begin():
        row = await db.get(LoyaltyCard, card.id)
        assert row is not None
        row.version += 1
    await harness.publish(balance_changed(card, merchant, card.version + 1, is_active=False))
    await harness.caught_up()
    assert len(fake_apns.requests) == 2
    assert all(r.path in (f"/3/device/{PHONE}", f"/3/device/{TABLET}") for r in fake_apns.requests)


async def test_a_sync_that_pushes_to_no_apple_device_replaces_the_tokens_at_once(
    tmp_path: Path,
    db_sessions: Sessions,
    make_sync: MakeSync,
    fake_google: FakeGoogle,
    google_sa_key: Issued,
) -> None:
    merchant, card = await _erased_card(db_sessions, PHONE)
    assert await _tokens(db_sessions, card.id) == [PHONE]
    google_only = wallet_settings_for(tmp_path, google=(fake_google, google_sa_key))
    harness = await make_sync(google_only)
    await harness.start()
    await harness.publish(balance_changed(card, merchant, card.version, is_active=False))
    await harness.caught_up()
    assert await _tokens(db_sessions, card.id) == ["erased"]
