"""The staff terminal of a store: the PIN and its lockout, finding a card, purchases, stamps
and redemptions through the engine, once per click."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from nicegui.testing import User
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain import terminal_devices
from domain.models import (
    LedgerEntry,
    LoyaltyCard,
    LoyaltyProgram,
    Purchase,
    StaffPin,
    Store,
    TerminalDevice,
)
from domain.staff_pins import add_pin
from tests.admin_ui.helpers import (
    ALICE,
    BOB,
    MAIN_FILE,
    WAIT,
    enrol,
    set_value,
    sign_in,
    status_of,
    texts,
)

pytestmark = MAIN_FILE

PIN = "4821"


@pytest.fixture
async def terminal(people: dict[str, Any], db: AsyncSession) -> dict[str, Any]:
    """Merchant a's first store with a PIN required, staff member Anna, and a card."""
    await db.execute(
        update(LoyaltyProgram)
        .where(LoyaltyProgram.id == people["a_program"])
        .values(require_staff_pin=True, pin_max_attempts=3)
    )
    await db.commit()
    store = people["a_store_codes"][0]
    staff = await add_pin(db, store, "Anna", PIN, rounds=4)
    await db.commit()
    number = await enrol(db, store, "cleo@example.com", first_name="Cleo")
    token = await db.scalar(select(LoyaltyCard.qr_token).where(LoyaltyCard.card_number == number))
    return {"store": store, "staff_id": staff.id, "number": number, "token": token, **people}


async def _unlock(user: User, store: str) -> None:
    await sign_in(user, ALICE)
    await user.open(f"/terminal/{store}")
    user.find(marker="terminal-pin").type(PIN)
    user.find(marker="terminal-unlock").click()
    await user.should_see("Staff: Anna", retries=WAIT)


async def _find(user: User, text: str) -> None:
    user.find(marker="terminal-search").clear()
    user.find(marker="terminal-search").type(text)
    user.find(marker="terminal-find").click()


async def _balance(db: AsyncSession, number: str) -> tuple[int, int]:
    db.expire_all()
    card = (await db.scalars(select(LoyaltyCard).where(LoyaltyCard.card_number == number))).one()
    return card.stamp_count, card.points_balance


async def test_an_unknown_store_has_no_terminal(user: User, people: dict[str, Any]) -> None:
    status, body = await status_of(user, "/terminal/NO-SUCH-STORE")
    assert status == 404
    assert "No store has this code." in body


async def test_a_wrong_pin_says_so_with_the_tries_left_then_the_lock_says_until_when(
    user: User, terminal: dict[str, Any]
) -> None:
    await sign_in(user, ALICE)
    await user.open(f"/terminal/{terminal['store']}")
    await user.should_not_see(marker="terminal-search")
    for left in ("2 tries", "1 try"):
        user.find(marker="terminal-pin").type("0000")
        user.find(marker="terminal-unlock").click()
        await user.should_see(f"Wrong PIN: {left} left before the lock.", retries=WAIT)
    user.find(marker="terminal-pin").type("0000")
    user.find(marker="terminal-unlock").click()
    await user.should_see("Too many wrong PINs: this terminal is locked until", retries=WAIT)
    # On the merchant's clock (Luxembourg), not UTC.
    zone = datetime.now(ZoneInfo("Europe/Luxembourg")).strftime("%Z")
    await user.should_see(f" {zone}.", retries=WAIT)
    user.find(marker="terminal-pin").type(PIN)  # the right PIN, but locked
    user.find(marker="terminal-unlock").click()
    await user.should_see("Too many wrong PINs: this terminal is locked until", retries=WAIT)
    await user.should_not_see("Staff: Anna")


async def test_a_stamp_with_a_pin_is_recorded_with_the_staff_member(
    user: User, terminal: dict[str, Any], db: AsyncSession
) -> None:
    await _unlock(user, terminal["store"])
    await _find(user, terminal["number"])
    await user.should_see(marker="terminal-stamp", retries=WAIT)
    assert texts(user, "terminal-stamps") == ["0 / 10 stamps"]
    user.find(marker="terminal-stamp").click()
    await user.should_see("1 / 10 stamps", retries=WAIT)
    await user.should_see("Done: +1 stamp(s)")
    assert await _balance(db, terminal["number"]) == (1, 0)
    entry = (
        await db.scalars(select(LedgerEntry).where(LedgerEntry.entry_type == "stamp_earned"))
    ).one()
    assert entry.staff_pin_id == terminal["staff_id"]
    assert entry.actor == f"terminal:{terminal['store']}"
    staff = await db.get(StaffPin, terminal["staff_id"])
    assert staff is not None and staff.last_used_at is not None


async def test_a_double_click_acts_once(
    user: User, terminal: dict[str, Any], db: AsyncSession
) -> None:
    await _unlock(user, terminal["store"])
    await _find(user, terminal["number"])
    await user.should_see(marker="terminal-stamp", retries=WAIT)
    button = user.find(marker="terminal-stamp")
    button.click()
    button.click()
    await user.should_see("1 / 10 stamps", retries=WAIT)
    await user.should_see(marker="terminal-stamp", retries=WAIT)
    assert await _balance(db, terminal["number"]) == (1, 0)
    # A click on the fresh button is a new action.
    user.find(marker="terminal-stamp").click()
    await user.should_see("2 / 10 stamps", retries=WAIT)
    assert await _balance(db, terminal["number"]) == (2, 0)


async def test_a_purchase_earns_and_a_reward_is_redeemed_or_refused_in_words(
    user: User, terminal: dict[str, Any], db: AsyncSession
) -> None:
    await _unlock(user, terminal["store"])
    await _find(user, terminal["number"])
    await user.should_see(marker="terminal-purchase", retries=WAIT)
    user.find(marker="terminal-redeem-points").click()
    await user.should_see("Refused", retries=WAIT)
    await user.should_see("The card does not have enough points for this reward.")
    user.find(marker="terminal-redeem-stamps").click()
    await user.should_see("The card does not have enough stamps for the reward yet.", retries=WAIT)

    set_value(user, "terminal-amount", 12.5)
    user.find(marker="terminal-order").type("R-1001")
    user.find(marker="terminal-purchase").click()
    await user.should_see("Done: +1 stamp(s), +125 points", retries=WAIT)
    assert await _balance(db, terminal["number"]) == (1, 125)

    set_value(user, "terminal-amount", 3)
    user.find(marker="terminal-order").type("R-1001")  # the same receipt again
    user.find(marker="terminal-purchase").click()
    await user.should_see("This order was already recorded.", retries=WAIT)

    user.find(marker="terminal-redeem-points").click()
    await user.should_see("Done: -50 points", retries=WAIT)
    assert await _balance(db, terminal["number"]) == (1, 75)


async def test_a_card_is_found_by_qr_text_or_email_but_never_another_merchants(
    user: User, terminal: dict[str, Any], db: AsyncSession
) -> None:
    other = await enrol(db, terminal["b_store_codes"][0], "cleo@example.com")
    await _unlock(user, terminal["store"])
    await _find(user, str(terminal["token"]))
    await user.should_see(terminal["number"], retries=WAIT)
    await _find(user, "CLEO@example.com")
    await user.should_see(terminal["number"], retries=WAIT)
    await _find(user, other)
    await user.should_see("No card of this merchant matches.", retries=WAIT)
    await user.should_not_see(marker="terminal-card-number")


async def test_locking_the_terminal_asks_for_the_pin_again(
    user: User, terminal: dict[str, Any]
) -> None:
    await _unlock(user, terminal["store"])
    user.find(marker="terminal-lock").click()
    await user.should_see(marker="terminal-unlock", retries=WAIT)
    await user.should_not_see(marker="terminal-search")


async def test_a_program_without_staff_pins_opens_the_terminal_directly(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    number = await enrol(db, people["b_store_codes"][0], "dan@example.com")
    await sign_in(user, BOB)
    await user.open(f"/terminal/{people['b_store_codes'][0]}")
    await user.should_see("No PIN needed at this store", retries=WAIT)
    await _find(user, number)
    await user.should_see(marker="terminal-stamp", retries=WAIT)
    user.find(marker="terminal-stamp").click()
    await user.should_see("1 / 10 stamps", retries=WAIT)


# --- who may open a terminal ------------------------------------------------------------------


async def test_without_sign_in_the_terminal_shows_the_sign_in_and_nothing_of_the_till(
    user: User, terminal: dict[str, Any]
) -> None:
    await user.open(f"/terminal/{terminal['store']}")
    await user.should_see(marker="terminal-signed-out", retries=WAIT)
    await user.should_see("This device is not signed in as a terminal of this store.")
    await user.should_not_see(marker="terminal-pin")
    await user.should_not_see(marker="terminal-search")


async def test_an_admin_of_another_merchant_does_not_open_it(
    user: User, terminal: dict[str, Any]
) -> None:
    await sign_in(user, BOB)
    await user.open(f"/terminal/{terminal['store']}")
    await user.should_see(marker="terminal-signed-out", retries=WAIT)
    await user.should_not_see(marker="terminal-pin")


async def _pairing(db: AsyncSession, store: str, minutes: int = 10) -> str:
    store_id = await db.scalar(select(Store.id).where(Store.code == store))
    assert store_id is not None
    now = datetime.now(UTC) - timedelta(minutes=10 - minutes)
    code = await terminal_devices.start_pairing(db, store_id, "Till 1", by="admin:alice", now=now)
    await db.commit()
    return code.code


async def test_a_paired_device_opens_the_terminal_until_it_is_revoked(
    user: User, terminal: dict[str, Any], db: AsyncSession
) -> None:
    store = terminal["store"]
    code = await _pairing(db, store)
    answer = await user.http_client.post(
        f"/terminal/{store}/pair", data={"code": code.lower().replace("-", " ")}
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/terminal/{store}"
    cookie = answer.headers["set-cookie"]
    assert "httponly" in cookie.lower()
    assert f"path=/terminal/{store}".lower() in cookie.lower()
    assert "samesite=strict" in cookie.lower()
    token = answer.cookies["loyalty_terminal"]
    assert len(token) >= 43
    # The code works once.
    again = await user.http_client.post(f"/terminal/{store}/pair", data={"code": code})
    assert again.headers["location"] == f"/terminal/{store}?pairing=failed"
    # The test client speaks plain http to "test", where a Secure cookie is not sent back:
    # hand it over as the browser on https would.
    user.http_client.cookies.set("loyalty_terminal", token, path=f"/terminal/{store}")
    await user.open(f"/terminal/{store}")
    await user.should_see(marker="terminal-pin", retries=WAIT)
    user.find(marker="terminal-pin").type(PIN)
    user.find(marker="terminal-unlock").click()
    await user.should_see("Staff: Anna", retries=WAIT)
    await _find(user, terminal["number"])
    await user.should_see(marker="terminal-stamp", retries=WAIT)

    await db.execute(
        update(TerminalDevice).values(revoked_at=datetime.now(UTC), revoked_by="admin:alice")
    )
    await db.commit()
    user.find(marker="terminal-stamp").click()
    await user.should_see(marker="terminal-refused", retries=WAIT)
    assert await _balance(db, terminal["number"]) == (0, 0)
    await user.open(f"/terminal/{store}")
    await user.should_see(marker="terminal-signed-out", retries=WAIT)


async def test_a_terminal_object_without_access_acts_on_nothing(
    user: User, terminal: dict[str, Any], db: AsyncSession
) -> None:
    """Every action checks the access on the server: a forged device token is refused even
    by a direct call of the handlers, bypassing what the page shows."""
    from admin_ui.pages.terminal_access import Access
    from admin_ui.pages.terminal_till import Terminal
    from admin_ui.queries.terminal import load_store
    from admin_ui.runtime import Runtime
    from core.settings import get_settings

    rt = Runtime(get_settings())
    await rt.start()
    try:
        async with rt.session() as session:
            info = await load_store(session, terminal["store"])
        assert info is not None
        await user.open(f"/terminal/{terminal['store']}")  # a client context for the elements
        with user:
            forged = Terminal(rt, info, Access(device_id=1, device_token="forged-token"))
            forged.build()
            forged.staff_id = terminal["staff_id"]  # as if the PIN had been typed
            forged.card = await _summary(rt, terminal["number"])
            forged.keys = {k: uuid.uuid4() for k in ("purchase", "stamp", "redeem_stamps")}
            forged._draw_card(None)
            forged.amount.value = "10"
            card = forged.card
            await forged.stamp()
            assert forged.refused.visible and forged.card is None
            forged.card = card  # the next handler called as if the page still showed it
            await forged.purchase()
            forged.card = card
            await forged.redeem_stamps()
            forged.search.value = terminal["number"]
            await forged.find()
            assert forged.card is None
        assert forged.refused.visible
        assert await _balance(db, terminal["number"]) == (0, 0)
        assert (
            await db.scalars(select(LedgerEntry.id).where(LedgerEntry.entry_type == "stamp_earned"))
        ).all() == []
    finally:
        await rt.stop()


async def _summary(rt: Any, number: str) -> Any:
    from admin_ui.queries.terminal import card_summary

    async with rt.session() as session:
        return await card_summary(session, number)


async def test_a_wrong_or_expired_code_pairs_nothing_and_tries_are_limited(
    user: User, terminal: dict[str, Any], db: AsyncSession
) -> None:
    store = terminal["store"]
    expired = await _pairing(db, store, minutes=-1)
    answer = await user.http_client.post(f"/terminal/{store}/pair", data={"code": expired})
    assert answer.headers["location"] == f"/terminal/{store}?pairing=failed"
    assert "loyalty_terminal" not in answer.cookies
    other_store = await _pairing(db, terminal["a_store_codes"][1])
    answer = await user.http_client.post(f"/terminal/{store}/pair", data={"code": other_store})
    assert answer.headers["location"] == f"/terminal/{store}?pairing=failed"
    await user.open(f"/terminal/{store}?pairing=failed")
    await user.should_see("This code is not valid for this store", retries=WAIT)
    for _ in range(10):
        await user.http_client.post(f"/terminal/{store}/pair", data={"code": "AAAA-AAAA"})
    good = await _pairing(db, store)
    answer = await user.http_client.post(f"/terminal/{store}/pair", data={"code": good})
    assert answer.headers["location"] == f"/terminal/{store}?pairing=limited"
    assert "loyalty_terminal" not in answer.cookies


async def test_an_admin_pairs_and_revokes_a_terminal_on_the_stores_page(
    user: User, terminal: dict[str, Any], db: AsyncSession
) -> None:
    await sign_in(user, ALICE)
    await user.open(f"/stores/{terminal['a_stores'][0]}")
    user.find(marker="terminal-pair-start").click()
    await user.should_see(marker="pairing-code", retries=WAIT)
    (code,) = texts(user, "pairing-code")
    assert len(code) == 9 and code[4] == "-"
    device = (await db.scalars(select(TerminalDevice))).one()
    assert device.pairing_code_hash == terminal_devices.digest(code)
    assert device.token_hash is None
    user.find(marker="pairing-code-done").click()
    await user.should_see("waiting for its code until", retries=WAIT)
    user.find(marker="terminal-revoke-Till").click()
    await user.should_see(marker="confirm-yes", retries=WAIT)
    user.find(marker="confirm-yes").click()
    await user.should_see("Terminal Till is revoked.", retries=WAIT)
    db.expire_all()
    device = (await db.scalars(select(TerminalDevice))).one()
    assert device.revoked_at is not None and device.revoked_by == "admin:alice"


# --- what a stamp and an amount are worth ------------------------------------------------------


async def test_add_a_stamp_under_a_minimum_purchase_carries_the_minimum(
    user: User, terminal: dict[str, Any], db: AsyncSession
) -> None:
    await db.execute(
        update(LoyaltyProgram)
        .where(LoyaltyProgram.id == terminal["a_program"])
        .values(type="stamps", minimum_purchase_cents=500)
    )
    await db.commit()
    await _unlock(user, terminal["store"])
    await _find(user, terminal["number"])
    await user.should_see(marker="terminal-stamp", retries=WAIT)
    user.find(marker="terminal-stamp").click()
    await user.should_see("Done: +1 stamp(s)", retries=WAIT)
    assert await _balance(db, terminal["number"]) == (1, 0)
    amount = await db.scalar(select(Purchase.amount_cents))
    assert amount == 500


async def test_a_hybrid_stamp_under_a_minimum_asks_for_the_amount(
    user: User, terminal: dict[str, Any], db: AsyncSession
) -> None:
    await db.execute(
        update(LoyaltyProgram)
        .where(LoyaltyProgram.id == terminal["a_program"])
        .values(minimum_purchase_cents=500)
    )
    await db.commit()
    await _unlock(user, terminal["store"])
    await _find(user, terminal["number"])
    await user.should_see(marker="terminal-stamp", retries=WAIT)
    user.find(marker="terminal-stamp").click()
    await user.should_see("Enter the purchase amount: it also earns points.", retries=WAIT)
    set_value(user, "terminal-amount", "6.00")
    user.find(marker="terminal-stamp").click()
    await user.should_see("Done: +1 stamp(s), +60 points", retries=WAIT)


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("-5", "The amount cannot be negative."),
        ("abc", "The amount must be a number, like 4.50."),
        ("1.234", "The amount has at most two decimals."),
        ("", "Enter the purchase amount."),
    ],
)
async def test_a_bad_amount_is_a_message_never_a_silent_zero(
    user: User, terminal: dict[str, Any], db: AsyncSession, typed: str, message: str
) -> None:
    await _unlock(user, terminal["store"])
    await _find(user, terminal["number"])
    await user.should_see(marker="terminal-purchase", retries=WAIT)
    set_value(user, "terminal-amount", typed)
    user.find(marker="terminal-purchase").click()
    await user.should_see(message, retries=WAIT)
    assert await _balance(db, terminal["number"]) == (0, 0)
    assert await db.scalar(select(Purchase.id)) is None
