"""The staff terminal of a store: the PIN and its lockout, finding a card, purchases, stamps
and redemptions through the engine, once per click."""

from __future__ import annotations

from typing import Any

import pytest
from nicegui.testing import User
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.models import LedgerEntry, LoyaltyCard, LoyaltyProgram, StaffPin
from domain.staff_pins import add_pin
from tests.admin_ui.helpers import MAIN_FILE, WAIT, enrol, set_value, status_of, texts

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
    await user.open(f"/terminal/{terminal['store']}")
    await user.should_not_see(marker="terminal-search")
    for left in ("2 tries", "1 try"):
        user.find(marker="terminal-pin").type("0000")
        user.find(marker="terminal-unlock").click()
        await user.should_see(f"Wrong PIN: {left} left before the lock.", retries=WAIT)
    user.find(marker="terminal-pin").type("0000")
    user.find(marker="terminal-unlock").click()
    await user.should_see("Too many wrong PINs: this terminal is locked until", retries=WAIT)
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
    await user.open(f"/terminal/{people['b_store_codes'][0]}")
    await user.should_see("No PIN needed at this store", retries=WAIT)
    await _find(user, number)
    await user.should_see(marker="terminal-stamp", retries=WAIT)
    user.find(marker="terminal-stamp").click()
    await user.should_see("1 / 10 stamps", retries=WAIT)
