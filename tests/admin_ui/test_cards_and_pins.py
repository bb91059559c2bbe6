"""A card's page (balances, ledger, wallet sync state, deactivate, adjust) and the staff PINs
of a store (add, change, remove, unlock; a PIN is shown once)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from nicegui import ui
from nicegui.testing import User
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from admin_ui.runtime import raw_connection
from core.enums import ExpiryPolicy
from domain.engine.batch import Inbound, process_batch
from domain.hashing import check_secret
from domain.models import (
    LedgerEntry,
    LoyaltyCard,
    LoyaltyProgram,
    PointLot,
    StaffPin,
    Store,
    TierChange,
    WalletSyncState,
)
from streams.commands import to_command
from streams.inputs import PurchaseReturned
from streams.topics import Topic
from tests.admin_ui.helpers import (
    ALICE,
    MAIN_FILE,
    PLATFORM,
    WAIT,
    enrol,
    purchase,
    set_value,
    sign_in,
    texts,
)

pytestmark = MAIN_FILE


async def _card_id(db: AsyncSession, number: str) -> int:
    card_id = await db.scalar(select(LoyaltyCard.id).where(LoyaltyCard.card_number == number))
    assert card_id is not None
    return card_id


async def test_a_card_page_shows_balances_ledger_and_wallet_state(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    number = await enrol(db, people["a_store_codes"][0], "kim@example.com")
    card_id = await _card_id(db, number)
    db.add(
        WalletSyncState(
            card_id=card_id,
            wallet="google",
            synced_version=0,
            attempts=3,
            last_error="HTTP 503 from Google",
            last_error_at=datetime.now(UTC) - timedelta(minutes=5),
        )
    )
    await db.commit()
    await sign_in(user, ALICE, to=f"/cards/{card_id}")
    await user.should_see(f"Card {number}", retries=WAIT)
    assert texts(user, "card-stamps") == ["0 / 10"]
    assert texts(user, "card-status") == ["active"]
    await user.should_see("card created")  # the ledger's first entry
    await user.should_see(marker="wallet-row")
    await user.should_see("HTTP 503 from Google")
    await user.should_see("1 change not sent yet")
    # No internal words: no "Version" figure, no "admin:alice".
    await user.should_not_see("Version")
    await user.should_not_see("version")
    # A program without tiers: no tier, no tier history.
    await user.should_not_see(marker="card-tier")
    await user.should_not_see(marker="card-tier-next")
    await user.should_not_see("Tier history")


async def test_a_card_page_shows_the_tier_and_the_tier_history(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    card_id = await _card_id(db, await enrol(db, people["a_store_codes"][0], "tia@example.com"))
    await db.execute(
        update(LoyaltyProgram)
        .where(LoyaltyProgram.id == people["a_program"])
        .values(
            tiers=[
                {"id": "bronze", "name": "Bronze", "threshold_points": 0, "multiplier": 1},
                {"id": "silver", "name": "Silver", "threshold_points": 500, "multiplier": 1.25},
                {"id": "gold", "name": "Gold", "threshold_points": 1000, "multiplier": 1.5},
            ]
        )
    )
    await db.execute(
        update(LoyaltyCard)
        .where(LoyaltyCard.id == card_id)
        .values(points_balance=900, tier="silver", qualifying_points=770)
    )
    at = datetime(2026, 3, 1, 9, tzinfo=UTC)
    for days, before, after, points in [
        (0, None, "bronze", 0),
        (10, "bronze", "silver", 520),
        (40, "silver", "gold", 1010),
        (70, "gold", "old-tier", 980),  # a tier the program no longer has: its id
        (90, "old-tier", "silver", 770),  # down, at a daily run
    ]:
        db.add(
            TierChange(
                card_id=card_id,
                merchant_id=people["a"],
                from_tier=before,
                to_tier=after,
                qualifying_points=points,
                occurred_at=at + timedelta(days=days),
            )
        )
    await db.commit()

    await sign_in(user, ALICE, to=f"/cards/{card_id}")
    await user.should_see(marker="card-tier", retries=WAIT)
    assert texts(user, "card-points") == ["900"]
    assert texts(user, "card-tier") == ["Silver"]
    assert texts(user, "card-qualifying") == ["770"]
    assert texts(user, "card-tier-next") == ["230 points to Gold"]
    await user.should_see("Tier history")
    await user.should_see("Page 1 of 1 · 5 in all")
    (table,) = user.find(marker="tier-history-list").elements
    cells = [e.text for e in table.descendants() if isinstance(e, ui.label)]
    # On the merchant's clock (Luxembourg): 09:00 UTC is 10:00 in winter, 11:00 in summer.
    rows = [cells[i : i + 4] for i in range(cells.index("2026-05-30 11:00 CEST"), len(cells), 4)]
    assert rows == [  # newest first
        ["2026-05-30 11:00 CEST", "old-tier", "Silver", "770"],
        ["2026-05-10 11:00 CEST", "Gold", "old-tier", "980"],
        ["2026-04-10 11:00 CEST", "Silver", "Gold", "1,010"],
        ["2026-03-11 10:00 CET", "Bronze", "Silver", "520"],
        ["2026-03-01 10:00 CET", "—", "Bronze", "0"],
    ]


async def test_a_card_at_the_top_tier_without_changes_yet(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    card_id = await _card_id(db, await enrol(db, people["a_store_codes"][0], "top@example.com"))
    await db.execute(
        update(LoyaltyProgram)
        .where(LoyaltyProgram.id == people["a_program"])
        .values(
            tiers=[
                {"id": "member", "name": "Member", "threshold_points": 0, "multiplier": 1},
                {"id": "vip", "name": "VIP", "threshold_points": 300, "multiplier": 2},
            ]
        )
    )
    await db.execute(
        update(LoyaltyCard)
        .where(LoyaltyCard.id == card_id)
        .values(tier="vip", qualifying_points=450)
    )
    await db.commit()
    await sign_in(user, ALICE, to=f"/cards/{card_id}")
    await user.should_see(marker="card-tier", retries=WAIT)
    assert texts(user, "card-tier") == ["VIP"]
    assert texts(user, "card-tier-next") == ["top tier"]
    await user.should_see("No tier change yet.")


async def test_a_card_page_shows_pending_points_the_next_expiry_and_the_open_lots(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    card_id = await _card_id(db, await enrol(db, people["a_store_codes"][0], "lou@example.com"))
    await db.execute(
        update(LoyaltyProgram)
        .where(LoyaltyProgram.id == people["a_program"])
        .values(points_expiration_days=365, expiry_policy=ExpiryPolicy.CALENDAR_YEAR)
    )
    now = datetime.now(UTC)
    # Calendar-year points of 2025 go at the start of 2027, Luxembourg time: the last day to
    # spend them is 31 December 2026.
    new_year = datetime(2027, 1, 1, tzinfo=ZoneInfo("Europe/Luxembourg"))
    lots = [
        (1, 30, 30, None, None, False),  # kept by inactivity
        (2, 150, 120, new_year, None, False),
        (3, 40, 40, datetime(2028, 1, 1, tzinfo=UTC), now + timedelta(days=5), True),
        (4, 10, 0, new_year, None, False),  # spent: not open
    ]
    for lot_no, points, remaining, expires, releases, pending in lots:
        db.add(
            PointLot(
                card_id=card_id,
                lot_no=lot_no,
                merchant_id=people["a"],
                points=points,
                remaining=remaining,
                earned_at=datetime(2025, 6, lot_no, 9, tzinfo=UTC),
                releases_at=releases,
                expires_at=expires,
                pending=pending,
            )
        )
    await db.execute(
        update(LoyaltyCard)
        .where(LoyaltyCard.id == card_id)
        .values(
            points_balance=150,
            points_pending=40,
            dated_points=160,
            lot_count=4,
            next_expiry_at=new_year,
            next_expiry_points=120,
            last_activity_at=now,
        )
    )
    await db.commit()

    await sign_in(user, ALICE, to=f"/cards/{card_id}")
    await user.should_see(marker="card-next-expiry", retries=WAIT)
    assert texts(user, "card-points") == ["150"]
    assert texts(user, "card-pending") == ["40"]
    assert texts(user, "card-next-expiry") == [
        "Next expiry: 120 points expire on 31 Dec 2026 (merchant's time)."
    ]
    # Open lots only, those spent first (expiring first) first.
    await user.should_see("Page 1 of 1 · 3 in all")
    (table,) = user.find(marker="lots-list").elements
    cells = [e.text for e in table.descendants() if isinstance(e, ui.label)]
    assert [c for c in cells if c.startswith("#")] == ["#2", "#3", "#1"]
    # Their times on the merchant's clock, as the next expiry reads it (the table says so):
    # lot 2 goes at midnight in Luxembourg, 23:00 UTC the day before.
    assert texts(user, "lots-zone") == ["Times on the merchant's clock (Europe/Luxembourg)."]
    assert "2027-01-01 00:00 CET" in cells
    assert "2025-06-02 11:00 CEST" in cells  # earned at 09:00 UTC in June
    assert not [c for c in cells if c.endswith("UTC")], cells
    releases = (now + timedelta(days=5)).astimezone(ZoneInfo("Europe/Luxembourg"))
    assert f"pending until {releases.strftime('%Y-%m-%d %H:%M %Z')}" in cells
    idle = (now + timedelta(days=365)).astimezone(ZoneInfo("Europe/Luxembourg"))
    assert f"if idle, {idle.day} {idle.strftime('%b %Y')}" in cells
    assert "#4" not in cells


def _ledger_rows(user: User) -> list[list[str]]:
    """The ledger's rows as the page shows them: when (on the merchant's clock), entry,
    stamps, points, balance after, store, by whom, detail."""
    (table,) = user.find(marker="ledger-list").elements
    cells = [e.text for e in table.descendants() if isinstance(e, ui.label)]
    starts = [i for i, c in enumerate(cells) if re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d CES?T", c)]
    return [cells[i : i + 8] for i in starts]


async def test_the_ledger_shows_points_earned_and_voided_while_pending(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    await db.execute(
        update(LoyaltyProgram)
        .where(LoyaltyProgram.id == people["a_program"])
        .values(pending_days=14)
    )
    await db.commit()
    store = people["a_store_codes"][0]
    number = await enrol(db, store, "pia@example.com")
    card_id = await _card_id(db, number)
    now = datetime.now(UTC)
    # 12 EUR at 10 points a euro: 120 points, pending for 14 days (CONTRACT.md 7.2): the
    # entry's points_delta is 0, its pending_delta +120.
    await purchase(db, store, number, 1200, now - timedelta(minutes=2))
    order = (
        await db.scalars(
            select(LedgerEntry.order_reference).where(
                LedgerEntry.card_id == card_id, LedgerEntry.entry_type == "points_earned"
            )
        )
    ).one()
    # A return of 5 EUR voids its share of the points from the purchase's own pending lot.
    message = PurchaseReturned.model_validate(
        {
            "event_id": str(uuid.uuid4()),
            "type": "purchase.returned",
            "occurred_at": (now - timedelta(minutes=1)).isoformat(),
            "store_code": store,
            "order_reference": order,
            "refund_amount_cents": 500,
            "card": {"card_number": number},
        }
    )
    outcome = await process_batch(
        await raw_connection(db), [Inbound(Topic.RETURNS.value, to_command(message))], now
    )
    await db.commit()
    assert outcome.results[0].status == "applied", outcome.results
    entries = {
        e.entry_type.value: (e.points_delta, e.pending_delta)
        for e in await db.scalars(select(LedgerEntry).where(LedgerEntry.card_id == card_id))
    }
    assert entries["points_earned"] == (0, 120)
    assert entries["points_voided"] == (0, -50)

    await sign_in(user, ALICE, to=f"/cards/{card_id}")
    await user.should_see(marker="ledger-list", retries=WAIT)
    assert texts(user, "card-points") == ["0"]
    assert texts(user, "card-pending") == ["70"]
    points = {row[1]: row[3] for row in _ledger_rows(user)}
    assert points["points earned"] == "+120 pending"
    assert points["points voided"] == "-50 pending"
    assert points["card created"] == ""


async def test_a_card_without_points_due_says_so(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    card_id = await _card_id(db, await enrol(db, people["a_store_codes"][0], "mo@example.com"))
    await sign_in(user, ALICE, to=f"/cards/{card_id}")
    await user.should_see(marker="card-next-expiry", retries=WAIT)
    assert texts(user, "card-pending") == ["0"]
    assert texts(user, "card-next-expiry") == ["No points due to expire."]
    await user.should_see("No open lot: the card holds no points.")


async def test_a_card_without_wallet_state_says_so(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    card_id = await _card_id(db, await enrol(db, people["a_store_codes"][0], "lee@example.com"))
    await sign_in(user, PLATFORM, to=f"/cards/{card_id}")
    await user.should_see(marker="wallet-none", retries=WAIT)


async def test_a_manual_adjustment_needs_a_reason_and_is_applied_once(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    number = await enrol(db, people["a_store_codes"][0], "max@example.com")
    card_id = await _card_id(db, number)
    await sign_in(user, ALICE, to=f"/cards/{card_id}")
    await user.should_see(marker="adjust-submit", retries=WAIT)
    set_value(user, "adjust-stamps", 4)
    set_value(user, "adjust-points", 30)
    user.find(marker="adjust-submit").click()
    await user.should_see("A reason is required for a manual adjustment.", retries=WAIT)

    set_value(user, "adjust-stamps", -1)
    user.find(marker="adjust-reason").type("typo")
    user.find(marker="adjust-submit").click()
    await user.should_see("The card has 0 stamps; cannot remove 1.", retries=WAIT)

    set_value(user, "adjust-stamps", 4)
    user.find(marker="adjust-reason").clear()
    user.find(marker="adjust-reason").type("birthday gift")
    button = user.find(marker="adjust-submit")
    button.click()
    button.click()  # a double click
    await user.should_see("4 / 10", retries=WAIT)
    db.expire_all()
    card = (await db.scalars(select(LoyaltyCard).where(LoyaltyCard.id == card_id))).one()
    assert (card.stamp_count, card.points_balance) == (4, 30)
    await user.should_see("birthday gift")  # in the ledger, with the admin who did it
    await user.should_see("alice (panel)")
    await user.should_not_see("admin:alice")


async def test_deactivate_then_reactivate_a_card(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    card_id = await _card_id(db, await enrol(db, people["a_store_codes"][0], "ola@example.com"))
    await sign_in(user, ALICE, to=f"/cards/{card_id}")
    await user.should_see(marker="card-deactivate", retries=WAIT)
    user.find(marker="status-reason").type("card reported lost")
    user.find(marker="card-deactivate").click()
    await user.should_see(marker="confirm-yes", retries=WAIT)
    user.find(marker="confirm-yes").click()
    await user.should_see(marker="card-reactivate", retries=WAIT)
    assert texts(user, "card-status") == ["deactivated"]
    user.find(marker="card-reactivate").click()
    await user.should_see(marker="card-deactivate", retries=WAIT)
    assert texts(user, "card-status") == ["active"]
    await user.should_see("card reported lost")


async def test_cards_are_found_by_number_email_or_qr_text_and_deleted_and_restored(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    first = await enrol(db, people["a_store_codes"][0], "pat@example.com")
    await enrol(db, people["a_store_codes"][0], "quinn@example.com")
    token = await db.scalar(select(LoyaltyCard.qr_token).where(LoyaltyCard.card_number == first))
    await sign_in(user, ALICE, to="/cards")
    await user.should_see("Page 1 of 1 · 2 in all", retries=WAIT)
    for search in (first.replace("-", ""), "pat@", str(token)):
        user.find(marker="cards-search").clear()
        user.find(marker="cards-search").trigger("keydown.enter")
        await user.should_see("Page 1 of 1 · 2 in all", retries=WAIT)
        user.find(marker="cards-search").type(search)
        user.find(marker="cards-search").trigger("keydown.enter")
        await user.should_see("Page 1 of 1 · 1 in all", retries=WAIT)
        await user.should_see(first)
    user.find(marker=f"card-delete-{first}").click()
    await user.should_see(marker="confirm-yes", retries=WAIT)
    user.find(marker="confirm-yes").click()
    await user.should_see(f"Card {first} deleted.", retries=WAIT)
    user.find(marker="cards-only-deleted").click()
    await user.should_see(f"card-restore-{first}", retries=WAIT)
    user.find(marker=f"card-restore-{first}").click()
    await user.should_see(f"Card {first} restored.", retries=WAIT)


async def test_a_staff_pin_is_shown_once_and_changed_removed_and_unlocked(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    store_id = people["a_stores"][0]
    await sign_in(user, ALICE, to=f"/stores/{store_id}")
    await user.should_see(marker="pin-add", retries=WAIT)
    user.find(marker="pin-new-name").type("Anna")
    user.find(marker="pin-new-pin").type("4821")
    user.find(marker="pin-add").click()
    await user.should_see(marker="pin-shown", retries=WAIT)
    assert texts(user, "pin-shown") == ["4821"]
    staff = (await db.scalars(select(StaffPin).where(StaffPin.name == "Anna"))).one()
    assert check_secret("4821", staff.pin_hash)

    user.find(marker="pin-new-name").clear()
    user.find(marker="pin-new-name").type("Ben")
    user.find(marker="pin-new-pin").clear()
    user.find(marker="pin-new-pin").type("4821")
    user.find(marker="pin-add").click()
    await user.should_see("already has this PIN", retries=WAIT)

    user.find(marker="pin-new-pin").clear()  # blank: a PIN is generated
    user.find(marker="pin-add").click()
    await user.should_see("pin-change-Ben", retries=WAIT)
    (generated,) = [pin for pin in texts(user, "pin-shown") if pin != "4821"]
    assert generated.isdigit() and len(generated) == 6

    # Never shown again: a fresh page has no trace of either PIN.
    await user.open(f"/stores/{store_id}")
    await user.should_see(marker="pin-add", retries=WAIT)
    await user.should_not_see(marker="pin-shown")
    await user.should_not_see("4821")

    user.find(marker="pin-change-Anna").click()
    await user.should_see(marker="pin-change-save", retries=WAIT)
    user.find(marker="pin-change-value").type("12")
    user.find(marker="pin-change-save").click()
    await user.should_see("A PIN is 4 to 8 digits.", retries=WAIT)
    user.find(marker="pin-change-value").clear()
    user.find(marker="pin-change-value").type("777777")
    user.find(marker="pin-change-save").click()
    await user.should_see(marker="pin-shown", retries=WAIT)
    await db.refresh(staff)
    assert check_secret("777777", staff.pin_hash)

    user.find(marker="pin-remove-Ben").click()
    await user.should_see(marker="confirm-yes", retries=WAIT)
    user.find(marker="confirm-yes").click()
    await user.should_see("The PIN of Ben is removed.", retries=WAIT)
    await user.should_not_see("pin-change-Ben")

    store = await db.get(Store, store_id)
    assert store is not None
    store.pin_locked_until = datetime.now(UTC) + timedelta(minutes=20)
    await db.commit()
    await user.open(f"/stores/{store_id}")
    await user.should_see(marker="pins-locked", retries=WAIT)
    user.find(marker="pins-unlock").click()
    await user.should_see("The store's PINs are unlocked.", retries=WAIT)
    await db.refresh(store)
    assert store.pin_locked_until is None
