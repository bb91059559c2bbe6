"""Apple's PassKit web service protocol, end to end over HTTP against the real database."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from admin_ui.passkit import SETTLE_SECONDS, create_passkit_app
from core.settings import get_settings
from domain.models import AppleDeviceRegistration, LoyaltyCard, Merchant
from domain.soft_delete import soft_delete
from tests.support.pkpass_check import verified_files
from tests.support.wallet_seed import register_device, seed_card, seed_wallet_merchant
from tests.wallet.pki import PASS_TYPE_ID, ApplePki
from wallet import PKPASS_MIME_TYPE, WalletSettings

DEVICE = "b33e3a3dccb3030333e3333da33333a3"
PUSH_TOKEN = "ab" * 32
V1 = "/passkit/v1"


def auth(card: LoyaltyCard) -> dict[str, str]:
    return {"Authorization": f"ApplePass {card.apple_authentication_token}"}


def registration_url(card: LoyaltyCard, device: str = DEVICE, pass_type: str = PASS_TYPE_ID) -> str:
    return f"{V1}/devices/{device}/registrations/{pass_type}/{card.card_number}"


async def seeded(
    db_sessions: async_sessionmaker[AsyncSession], **card: Any
) -> tuple[Merchant, LoyaltyCard]:
    async with db_sessions() as db:
        merchant, program = await seed_wallet_merchant(db)
        return merchant, await seed_card(db, merchant, program, **card)


async def registrations(db_sessions: async_sessionmaker[AsyncSession]) -> list[tuple[str, str]]:
    async with db_sessions() as db:
        rows = await db.execute(
            select(AppleDeviceRegistration.device_library_id, AppleDeviceRegistration.push_token)
        )
        return sorted((d, t) for d, t in rows)


async def test_register_201_then_200_and_unregister(
    passkit: httpx.AsyncClient, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    _, card = await seeded(db_sessions)
    url = registration_url(card)

    first = await passkit.post(url, json={"pushToken": PUSH_TOKEN}, headers=auth(card))
    assert first.status_code == 201
    again = await passkit.post(url, json={"pushToken": "cd" * 32}, headers=auth(card))
    assert again.status_code == 200
    # Re-registering keeps one row and takes the device's new push token.
    assert await registrations(db_sessions) == [(DEVICE, "cd" * 32)]

    assert (await passkit.delete(url, headers=auth(card))).status_code == 200
    assert await registrations(db_sessions) == []
    assert (await passkit.delete(url, headers=auth(card))).status_code == 200


async def test_every_refusal_is_the_same_empty_401(
    passkit: httpx.AsyncClient, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    _, card = await seeded(db_sessions)
    _, other = await seeded(db_sessions)
    body = {"pushToken": PUSH_TOKEN}
    unknown = LoyaltyCard(card_number="0000-0000-0000", apple_authentication_token="x" * 43)
    attempts = [
        passkit.post(registration_url(card), json=body),  # no Authorization
        passkit.post(registration_url(card), json=body, headers=auth(other)),  # another card's
        passkit.post(
            registration_url(card), json=body, headers={"Authorization": "Bearer " + "x" * 43}
        ),
        passkit.post(
            registration_url(card),
            json=body,
            headers={"Authorization": f"ApplePass {card.apple_authentication_token[:-1]}"},
        ),
        passkit.post(registration_url(unknown), json=body, headers=auth(unknown)),
        passkit.post(
            registration_url(card, pass_type="pass.other.type"), json=body, headers=auth(card)
        ),
        passkit.delete(registration_url(card), headers=auth(other)),
        passkit.get(f"{V1}/passes/{PASS_TYPE_ID}/{card.card_number}", headers=auth(other)),
        passkit.get(f"{V1}/passes/{PASS_TYPE_ID}/{unknown.card_number}", headers=auth(unknown)),
    ]
    answers = [await attempt for attempt in attempts]
    assert {a.status_code for a in answers} == {401}
    assert {a.content for a in answers} == {b""}
    assert {a.headers.get("content-type") for a in answers} == {None}
    assert await registrations(db_sessions) == []


async def test_bad_registration_bodies_are_refused(
    passkit: httpx.AsyncClient, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    _, card = await seeded(db_sessions)
    url = registration_url(card)
    for body in (b"{}", b"not json", json.dumps({"pushToken": 42}).encode(), b"[]"):
        answer = await passkit.post(url, content=body, headers=auth(card))
        assert answer.status_code == 400, body
    too_long = registration_url(card, device="d" * 201)
    answer = await passkit.post(too_long, json={"pushToken": PUSH_TOKEN}, headers=auth(card))
    assert answer.status_code == 400
    assert await registrations(db_sessions) == []


async def test_serials_updated_since_a_tag(
    passkit: httpx.AsyncClient, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with db_sessions() as db:
        merchant, program = await seed_wallet_merchant(db)
        first = await seed_card(db, merchant, program)
        second = await seed_card(db, merchant, program)
        for card in (first, second):
            await register_device(db, card, PUSH_TOKEN, device=DEVICE)
    url = f"{V1}/devices/{DEVICE}/registrations/{PASS_TYPE_ID}"

    everything = await passkit.get(url)
    assert everything.status_code == 200
    listed = everything.json()
    assert listed["serialNumbers"] == sorted([first.card_number, second.card_number])
    tag = listed["lastUpdated"]
    assert float(tag) > (datetime.now(UTC) - timedelta(minutes=1)).timestamp()

    # Both changed an hour ago: nothing since the tag.
    assert (await passkit.get(url, params={"passesUpdatedSince": tag})).status_code == 204

    async with db_sessions() as db:
        row = await db.get(LoyaltyCard, second.id)
        assert row is not None
        row.stamp_count += 1  # updated_at moves to now
        await db.commit()
    changed = await passkit.get(url, params={"passesUpdatedSince": tag})
    assert changed.status_code == 200
    assert changed.json()["serialNumbers"] == [second.card_number]

    # Another device, a tag that is not ours, another pass type.
    assert (
        await passkit.get(f"{V1}/devices/other/registrations/{PASS_TYPE_ID}")
    ).status_code == 204
    garbage = await passkit.get(url, params={"passesUpdatedSince": "yesterday"})
    assert len(garbage.json()["serialNumbers"]) == 2
    assert (await passkit.get(f"{V1}/devices/{DEVICE}/registrations/pass.x")).status_code == 204


async def test_deleted_cards_and_merchants_are_never_served(
    passkit: httpx.AsyncClient, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    _, live = await seeded(db_sessions)
    _, card = await seeded(db_sessions)
    gone_merchant, orphan = await seeded(db_sessions)
    async with db_sessions() as db:
        for registered in (live, card, orphan):
            await register_device(db, registered, PUSH_TOKEN, device=DEVICE)
        await soft_delete(db, LoyaltyCard, [card.id], by="test")
        # The merchant deleted, its card brought back on its own: still never served.
        await soft_delete(db, Merchant, [gone_merchant.id], by="test")
        await db.execute(
            update(LoyaltyCard)
            .where(LoyaltyCard.id == orphan.id)
            .values(deleted_at=None, deletion_id=None)
            .execution_options(include_deleted=True)
        )
        await db.commit()
        visible = await db.scalars(select(LoyaltyCard.id).order_by(LoyaltyCard.id))
        assert list(visible) == [live.id, orphan.id]
    for dead in (card, orphan):
        url = f"{V1}/passes/{PASS_TYPE_ID}/{dead.card_number}"
        assert (await passkit.get(url, headers=auth(dead))).status_code == 401
        answer = await passkit.post(
            registration_url(dead, device="new"), json={"pushToken": PUSH_TOKEN}, headers=auth(dead)
        )
        assert answer.status_code == 401
    listing = await passkit.get(f"{V1}/devices/{DEVICE}/registrations/{PASS_TYPE_ID}")
    assert listing.json()["serialNumbers"] == [live.card_number]
    url = f"{V1}/passes/{PASS_TYPE_ID}/{live.card_number}"
    assert (await passkit.get(url, headers=auth(live))).status_code == 200


async def test_latest_pass_is_signed_current_and_conditional(
    passkit: httpx.AsyncClient,
    db_sessions: async_sessionmaker[AsyncSession],
    apple_pki: ApplePki,
    tmp_path: Path,
) -> None:
    _, card = await seeded(db_sessions, stamp_count=3, points_balance=120)
    url = f"{V1}/passes/{PASS_TYPE_ID}/{card.card_number}"

    answer = await passkit.get(url, headers=auth(card))
    assert answer.status_code == 200
    assert answer.headers["content-type"] == PKPASS_MIME_TYPE
    files = verified_files(answer.content, tmp_path, apple_pki)
    document = json.loads(files["pass.json"])
    assert document["serialNumber"] == card.card_number
    assert document["passTypeIdentifier"] == PASS_TYPE_ID
    assert document["authenticationToken"] == card.apple_authentication_token
    assert document["webServiceURL"] == "https://loyalty.example.lu/passkit"
    assert document["barcodes"][0]["message"] == card.qr_token
    assert document["organizationName"] == "Café Lux"
    fields = {f["key"]: f["value"] for g in document["storeCard"].values() for f in g}
    assert fields["stamps"] == "3 / 10" and fields["points"] == 120
    assert fields["member"] == "Anna Muller"

    last_modified = answer.headers["last-modified"]
    assert parsedate_to_datetime(last_modified) == card.updated_at.replace(microsecond=0)
    same = await passkit.get(url, headers={**auth(card), "If-Modified-Since": last_modified})
    assert same.status_code == 304 and same.content == b""
    older = format_datetime(card.updated_at - timedelta(seconds=1), usegmt=True)
    stale = await passkit.get(url, headers={**auth(card), "If-Modified-Since": older})
    assert stale.status_code == 200
    # A wrong token gets no 304 either.
    wrong = {"Authorization": "ApplePass " + card.apple_authentication_token[::-1]}
    answer = await passkit.get(url, headers={**wrong, "If-Modified-Since": last_modified})
    assert answer.status_code == 401

    # Changed: the device's date is now older, and the new balance is served.
    async with db_sessions() as db:
        row = await db.get(LoyaltyCard, card.id)
        assert row is not None
        row.stamp_count, row.version = 4, row.version + 1
        await db.commit()
    fresh = await passkit.get(url, headers={**auth(card), "If-Modified-Since": last_modified})
    assert fresh.status_code == 200
    fields = {
        f["key"]: f["value"]
        for g in json.loads(verified_files(fresh.content, tmp_path, apple_pki)["pass.json"])[
            "storeCard"
        ].values()
        for f in g
    }
    assert fields["stamps"] == "4 / 10"
    # Changed less than SETTLE_SECONDS ago: no Last-Modified yet, so no later 304 can hide
    # a change that commits within the same second.
    assert SETTLE_SECONDS >= 1
    assert "last-modified" not in fresh.headers


async def test_device_logs_are_accepted(passkit: httpx.AsyncClient) -> None:
    logs = {"logs": ["Web service error for pass.lu.example.loyalty: 401", "another"]}
    assert (await passkit.post(f"{V1}/log", json=logs)).status_code == 200
    assert (await passkit.post(f"{V1}/log", content=b"nope")).status_code == 400


async def test_without_signing_credentials_the_pass_is_unavailable(
    db_sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    _, card = await seeded(db_sessions)
    settings = WalletSettings(_env_file=None, apple_pass_type_id=PASS_TYPE_ID)
    app = create_passkit_app(sessions=lambda: db_sessions, wallet_settings=settings)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://wallet.test"
    ) as client:
        url = f"{V1}/passes/{PASS_TYPE_ID}/{card.card_number}"
        assert (await client.get(url, headers=auth(card))).status_code == 503
        registered = await client.post(
            registration_url(card), json={"pushToken": PUSH_TOKEN}, headers=auth(card)
        )
        assert registered.status_code == 201


@pytest.mark.parametrize(
    ("settings", "base_path", "prefix"),
    [
        ({}, None, "/passkit"),
        ({"apple_web_service_url": "https://x.example/wallet/apple/"}, None, "/wallet/apple"),
        ({"passkit_base_path": "pk"}, None, "/pk"),
        ({"apple_web_service_url": "https://x.example"}, None, ""),
        ({}, "/custom", "/custom"),
    ],
)
async def test_base_path(
    db_sessions: async_sessionmaker[AsyncSession],
    settings: dict[str, Any],
    base_path: str | None,
    prefix: str,
) -> None:
    wallet = WalletSettings(_env_file=None, apple_pass_type_id=PASS_TYPE_ID, **settings)
    app = create_passkit_app(
        sessions=lambda: db_sessions, wallet_settings=wallet, base_path=base_path
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://wallet.test"
    ) as client:
        assert (await client.post(f"{prefix}/v1/log", json={"logs": []})).status_code == 200
        if prefix != "/passkit":
            assert (await client.post("/passkit/v1/log", json={"logs": []})).status_code == 404


async def test_an_app_of_its_own_opens_and_closes_its_database(
    db_sessions: async_sessionmaker[AsyncSession],
    apple_wallet: WalletSettings,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, card = await seeded(db_sessions)
    monkeypatch.setenv("LOYALTY_DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        app = create_passkit_app(wallet_settings=apple_wallet)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://wallet.test"
            ) as client,
        ):
            answer = await client.post(
                registration_url(card), json={"pushToken": PUSH_TOKEN}, headers=auth(card)
            )
            assert answer.status_code == 201
    finally:
        get_settings.cache_clear()
    assert await registrations(db_sessions) == [(DEVICE, PUSH_TOKEN)]
