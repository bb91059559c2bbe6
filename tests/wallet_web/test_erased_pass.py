"""After an erasure (CONTRACT.md 7.6) the PassKit web service still serves the card's pass to
the devices holding it, so they learn it is void: ``voided``, without the customer's name, and
with a QR code that no longer opens anything."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.customers.erasure import erase_customer
from domain.models import LoyaltyCard
from tests.support.pkpass_check import verified_files
from tests.support.wallet_seed import seed_card, seed_wallet_merchant
from tests.wallet.pki import PASS_TYPE_ID, ApplePki

V1 = "/passkit/v1"


async def _pass(
    passkit: httpx.AsyncClient, card: LoyaltyCard, folder: Path, pki: ApplePki
) -> dict[str, object]:
    answer = await passkit.get(
        f"{V1}/passes/{PASS_TYPE_ID}/{card.card_number}",
        headers={"Authorization": f"ApplePass {card.apple_authentication_token}"},
    )
    assert answer.status_code == 200, answer.status_code
    document: dict[str, object] = json.loads(
        verified_files(answer.content, folder, pki)["pass.json"]
    )
    return document


async def test_the_pass_served_after_an_erasure_is_void_and_nameless(
    passkit: httpx.AsyncClient,
    db_sessions: async_sessionmaker[AsyncSession],
    apple_pki: ApplePki,
    tmp_path: Path,
) -> None:
    async with db_sessions() as db:
        merchant, program = await seed_wallet_merchant(db)
        card = await seed_card(db, merchant, program, points_balance=40)
    before = await _pass(passkit, card, tmp_path / "before", apple_pki)
    assert "voided" not in before
    assert "Anna Muller" in json.dumps(before)

    async with db_sessions() as db, db.begin():
        await erase_customer(db, card.customer_id, actor="admin:root", now=datetime.now(UTC))

    after = await _pass(passkit, card, tmp_path / "after", apple_pki)
    assert after["voided"] is True
    assert after["serialNumber"] == card.card_number
    assert "Anna" not in json.dumps(after) and "Muller" not in json.dumps(after)
    barcodes = after["barcodes"]
    assert isinstance(barcodes, list) and barcodes[0]["message"] != card.qr_token
