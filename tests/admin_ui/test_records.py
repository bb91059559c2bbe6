"""Merchants, stores, programs and customers: lists with search and server-side pages,
creation, editing, soft delete behind a confirmation, the deleted switches, and restore."""

from __future__ import annotations

from typing import Any

from nicegui.testing import User
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.enums import ExpiryPolicy
from domain.models import Customer, LoyaltyProgram, Merchant, Reward, Store
from tests.admin_ui.helpers import (
    ALICE,
    MAIN_FILE,
    PLATFORM,
    WAIT,
    element_error,
    enrol,
    set_value,
    sign_in,
    texts,
    value_of,
)
from tests.support.seed import seed_merchant

pytestmark = MAIN_FILE


async def test_a_platform_admin_creates_a_merchant_with_a_store_and_a_program(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    await sign_in(user, PLATFORM, to="/merchants")
    user.find(marker="new-merchant").click()
    await user.should_see(marker="merchant-create", retries=WAIT)
    user.find(marker="merchant-code").type("bakery-1")
    user.find(marker="merchant-name").type("The Bakery")
    user.find(marker="merchant-create").click()
    await user.should_see("The Bakery (bakery-1)", retries=WAIT)

    user.find(marker="new-store").click()
    await user.should_see(marker="store-create", retries=WAIT)
    user.find(marker="store-code").type("BAK-01")
    user.find(marker="store-name").type("Main street")
    user.find(marker="store-create").click()
    await user.should_see("BAK-01", retries=WAIT)

    user.find(marker="program-create").click()
    await user.should_see(marker="program-save", retries=WAIT)

    merchant = (await db.scalars(select(Merchant).where(Merchant.code == "bakery-1"))).one()
    assert merchant.name == "The Bakery"
    assert merchant.timezone == "Europe/Luxembourg"
    store = (await db.scalars(select(Store).where(Store.code == "BAK-01"))).one()
    assert store.merchant_id == merchant.id
    program = (
        await db.scalars(select(LoyaltyProgram).where(LoyaltyProgram.merchant_id == merchant.id))
    ).one()
    assert program.type.value == "stamps"
    assert program.require_staff_pin  # a program made in the panel asks for a staff PIN


async def test_merchant_fields_are_validated_on_the_page(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    await sign_in(user, PLATFORM, to="/merchants")
    user.find(marker="new-merchant").click()
    await user.should_see(marker="merchant-create", retries=WAIT)
    user.find(marker="merchant-code").type("bad code!")
    # The time zone is chosen from the IANA list, searched by typing; none chosen is named.
    (zone,) = user.find(marker="merchant-timezone").elements
    assert zone.options["America/New_York"] == "America/New York"  # type: ignore[attr-defined]
    assert "Europe/Atlantis" not in zone.options  # type: ignore[attr-defined]
    set_value(user, "merchant-timezone", None)
    user.find(marker="merchant-create").click()
    await user.should_see(marker="merchant-errors", retries=WAIT)
    assert "must be letters, digits" in (element_error(user, "merchant-code") or "")
    assert "required" in (element_error(user, "merchant-name") or "") or "must not be empty" in (
        element_error(user, "merchant-name") or ""
    )
    assert element_error(user, "merchant-timezone") == "choose a time zone from the list"
    # The summary names the inputs by their labels, never by the form's field paths.
    (summary,) = texts(user, "merchant-errors")
    assert summary.startswith("Please correct: Code: must be letters, digits")
    assert "Time zone: choose a time zone from the list" in summary
    assert await db.scalar(select(func.count()).select_from(Merchant)) == 2


async def test_a_merchant_code_in_use_is_refused_with_a_message(
    user: User, people: dict[str, Any]
) -> None:
    await sign_in(user, PLATFORM, to="/merchants")
    user.find(marker="new-merchant").click()
    await user.should_see(marker="merchant-create", retries=WAIT)
    user.find(marker="merchant-code").type(people["a_code"])
    user.find(marker="merchant-name").type("Copycat")
    user.find(marker="merchant-create").click()
    await user.should_see(f"The merchant code '{people['a_code']}' is already used.", retries=WAIT)


async def test_delete_asks_first_then_only_deleted_finds_it_and_restore_brings_it_back(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    code = people["b_code"]
    await sign_in(user, PLATFORM, to="/merchants")
    await user.should_see(f"merchant-delete-{code}", retries=WAIT)

    user.find(marker=f"merchant-delete-{code}").click()
    await user.should_see(marker="confirm-dialog", retries=WAIT)
    user.find(marker="confirm-no").click()
    await user.should_not_see(marker="confirm-dialog", retries=WAIT)
    merchant = await db.get(Merchant, people["b"])
    assert merchant is not None and merchant.deleted_at is None

    user.find(marker=f"merchant-delete-{code}").click()
    await user.should_see(marker="confirm-dialog", retries=WAIT)
    user.find(marker="confirm-yes").click()
    await user.should_see(f"Merchant {code} deleted.", retries=WAIT)
    await user.should_not_see(f"merchant-delete-{code}", retries=WAIT)
    db.expire_all()
    merchant = await db.get(Merchant, people["b"], execution_options={"include_deleted": True})
    assert merchant is not None and merchant.deleted_by == "admin:root"
    # The cascade hid its store and program with it.
    assert await db.scalar(select(Store.id).where(Store.id == people["b_stores"][0])) is None

    user.find(marker="merchants-only-deleted").click()
    await user.should_see(f"merchant-restore-{code}", retries=WAIT)
    await user.should_not_see(people["a_code"])
    user.find(marker="merchants-show-deleted").click()  # both live and deleted
    await user.should_see(people["a_code"], retries=WAIT)
    await user.should_see(f"merchant-restore-{code}")

    user.find(marker=f"merchant-restore-{code}").click()
    await user.should_see(f"Merchant {code} restored.", retries=WAIT)
    assert await db.scalar(select(Store.id).where(Store.id == people["b_stores"][0])) is not None
    assert (
        await db.scalar(select(LoyaltyProgram.id).where(LoyaltyProgram.merchant_id == people["b"]))
        == people["b_program"]
    )


async def test_restoring_a_merchant_whose_code_was_reused_says_why(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    await sign_in(user, PLATFORM, to="/merchants")
    user.find(marker=f"merchant-delete-{people['b_code']}").click()
    await user.should_see(marker="confirm-yes", retries=WAIT)
    user.find(marker="confirm-yes").click()
    await user.should_see(f"Merchant {people['b_code']} deleted.", retries=WAIT)
    await seed_merchant(db, code=people["b_code"], stores=0)  # the code, taken again

    user.find(marker="merchants-only-deleted").click()
    await user.should_see(f"merchant-restore-{people['b_code']}", retries=WAIT)
    user.find(marker=f"merchant-restore-{people['b_code']}").click()
    await user.should_see(
        f"the merchant code '{people['b_code']}' is now used by another live merchant",
        retries=WAIT,
    )
    db.expire_all()
    still = await db.get(Merchant, people["b"], execution_options={"include_deleted": True})
    assert still is not None and still.deleted_at is not None


async def test_a_store_deleted_with_its_merchant_is_restored_through_the_merchant(
    user: User, people: dict[str, Any]
) -> None:
    await sign_in(user, PLATFORM, to="/merchants")
    user.find(marker=f"merchant-delete-{people['b_code']}").click()
    await user.should_see(marker="confirm-yes", retries=WAIT)
    user.find(marker="confirm-yes").click()
    await user.should_see(f"Merchant {people['b_code']} deleted.", retries=WAIT)
    await user.open("/stores")
    user.find(marker="stores-only-deleted").click()
    code = people["b_store_codes"][0]
    await user.should_see(f"store-restore-{code}", retries=WAIT)
    user.find(marker=f"store-restore-{code}").click()
    await user.should_see("restore the merchant first", retries=WAIT)


async def test_lists_are_searched_and_paged_by_the_database(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    for i in range(45):
        db.add(Store(merchant_id=people["a"], code=f"page-{i:02d}", name=f"Branch {i}"))
    await db.commit()
    await sign_in(user, PLATFORM, to="/stores")
    await user.should_see(marker="stores-pager", retries=WAIT)
    assert texts(user, "stores-pager") == ["Page 1 of 3 · 48 in all"]
    assert len(user.find(marker="stores-row").elements) == 20
    user.find(marker="stores-next").click()
    await user.should_see("Page 2 of 3 · 48 in all", retries=WAIT)
    user.find(marker="stores-next").click()
    await user.should_see("Page 3 of 3 · 48 in all", retries=WAIT)
    assert len(user.find(marker="stores-row").elements) == 8

    user.find(marker="stores-search").type("page-1")
    user.find(marker="stores-search").trigger("keydown.enter")
    await user.should_see("Page 1 of 1 · 10 in all", retries=WAIT)
    assert len(user.find(marker="stores-row").elements) == 10
    # A search text is data, never a pattern: "%" matches a literal percent sign only.
    user.find(marker="stores-search").clear()
    user.find(marker="stores-search").type("%")
    user.find(marker="stores-search").trigger("keydown.enter")
    await user.should_see(marker="stores-empty", retries=WAIT)


async def test_a_merchant_admin_edits_their_store_and_deletes_it(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    store_id = people["a_stores"][1]
    await sign_in(user, ALICE, to=f"/stores/{store_id}")
    await user.should_see(marker="store-save", retries=WAIT)
    user.find(marker="store-name").clear()
    user.find(marker="store-name").type("Renamed shop")
    user.find(marker="store-save").click()
    await user.should_see("Store saved.", retries=WAIT)
    store = await db.get(Store, store_id)
    assert store is not None
    await db.refresh(store)
    assert store.name == "Renamed shop"

    user.find(marker="store-code").clear()
    user.find(marker="store-code").type(people["b_store_codes"][0])  # another merchant's code
    user.find(marker="store-save").click()
    await user.should_see("is already used by a live store", retries=WAIT)

    user.find(marker="store-delete").click()
    await user.should_see(marker="confirm-yes", retries=WAIT)
    user.find(marker="confirm-yes").click()
    await user.should_see(f"Store {people['a_store_codes'][1]} deleted.", retries=WAIT)
    assert await db.scalar(select(Store.id).where(Store.id == store_id)) is None


async def test_program_settings_refuse_bad_values_with_messages_on_the_page(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    await sign_in(user, PLATFORM, to=f"/programs/{people['a_program']}")
    await user.should_see(marker="program-save", retries=WAIT)
    user.find(marker="program-stamps_target").elements.pop().value = 0  # type: ignore[attr-defined]
    user.find(marker="program-background_color").clear()
    user.find(marker="program-background_color").type("blue")
    user.find(marker="program-stamps_reward_value_cents").clear()
    user.find(marker="program-stamps_reward_value_cents").type("2.555")
    user.find(marker="reward-0-points_required").elements.pop().value = 0  # type: ignore[attr-defined]
    user.find(marker="program-save").click()
    await user.should_see(marker="program-errors", retries=WAIT)
    assert element_error(user, "program-stamps_target") == "must be at least 1"
    assert element_error(user, "program-background_color") == "must be a colour like #1F2937"
    assert element_error(user, "program-stamps_reward_value_cents") == (
        "must have at most 2 decimals"
    )
    assert element_error(user, "reward-0-points_required") == "must be at least 1"
    # Named in words above the save button, never by their paths.
    (box,) = texts(user, "program-errors")
    assert "Stamps for a reward: must be at least 1" in box
    assert "Background colour: must be a colour like #1F2937" in box
    assert "Stamp card reward value: must have at most 2 decimals" in box
    assert "Reward 1, points: must be at least 1" in box
    assert "_" not in box and "[" not in box
    await user.should_not_see("Traceback")
    program = await db.get(LoyaltyProgram, people["a_program"])
    assert program is not None
    assert (program.stamps_target, program.stamps_reward_value_cents) == (10, 0)


async def test_program_settings_and_the_rewards_catalog_are_saved(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    await sign_in(user, ALICE, to=f"/programs/{people['a_program']}")
    await user.should_see(marker="program-save", retries=WAIT)
    user.find(marker="program-stamps_target").elements.pop().value = 8  # type: ignore[attr-defined]
    user.find(marker="program-background_color").clear()
    user.find(marker="program-background_color").type("#112233")
    user.find(marker="reward-add").click()
    await user.should_see(marker="reward-1-id", retries=WAIT)
    user.find(marker="reward-1-id").type("cake")
    user.find(marker="reward-1-name").type("Slice of cake")
    user.find(marker="reward-1-points_required").elements.pop().value = 120  # type: ignore[attr-defined]
    user.find(marker="reward-0-remove").click()  # the coffee goes: deactivated, not deleted
    user.find(marker="program-save").click()
    await user.should_see("Program saved.", retries=WAIT)
    db.expire_all()
    program = await db.get(LoyaltyProgram, people["a_program"])
    assert program is not None
    assert (program.stamps_target, program.background_color) == (8, "#112233")
    rewards = {
        r.code: (r.name, r.points_required, r.is_active)
        for r in await db.scalars(select(Reward).where(Reward.program_id == program.id))
    }
    assert rewards == {"coffee": ("coffee", 50, False), "cake": ("Slice of cake", 120, True)}


def _set(user: User, marker: str, value: Any) -> None:
    """Set a number or select input's value, as a person choosing it does."""
    user.find(marker=marker).elements.pop().value = value  # type: ignore[attr-defined]


async def test_the_expiry_policy_pending_and_reminder_days_are_saved(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    await sign_in(user, ALICE, to=f"/programs/{people['a_program']}")
    await user.should_see(marker="program-save", retries=WAIT)
    await user.should_see(
        "A change applies to points earned from now on; points already earned keep their expiry."
    )
    await user.should_not_see(marker="program-expiry_policy-change")
    _set(user, "program-expiry_policy", "rolling")
    await user.should_see(marker="program-expiry_policy-change", retries=WAIT)
    await user.should_see(
        "Changing from “After inactivity” to “Rolling (each purchase's points)”: only points "
        "earned after saving follow the new policy; points already earned keep their expiry."
    )
    _set(user, "program-points_expiration_days", 365)
    _set(user, "program-pending_days", 14)
    _set(user, "program-expiry_reminder_days", 7)
    user.find(marker="program-save").click()
    await user.should_see("Program saved.", retries=WAIT)
    # Saved: the policy chosen is the program's, nothing is about to change any more.
    await user.should_not_see(marker="program-expiry_policy-change")
    db.expire_all()
    program = await db.get(LoyaltyProgram, people["a_program"])
    assert program is not None
    assert (
        program.expiry_policy,
        program.points_expiration_days,
        program.pending_days,
        program.expiry_reminder_days,
    ) == (ExpiryPolicy.ROLLING, 365, 14, 7)
    # The page shows what was saved, the policy by its label.
    await sign_in(user, ALICE, to=f"/programs/{people['a_program']}")
    await user.should_see(marker="program-save", retries=WAIT)
    (policy,) = user.find(marker="program-expiry_policy").elements
    assert policy.value == "rolling"  # type: ignore[attr-defined]
    assert policy.options["rolling"] == "Rolling (each purchase's points)"  # type: ignore[attr-defined]


async def test_pending_and_reminder_days_refused_are_named_under_their_fields(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    await sign_in(user, PLATFORM, to=f"/programs/{people['a_program']}")
    await user.should_see(marker="program-save", retries=WAIT)
    _set(user, "program-expiry_policy", "rolling")
    _set(user, "program-points_expiration_days", 30)
    _set(user, "program-pending_days", 30)
    _set(user, "program-expiry_reminder_days", -1)
    user.find(marker="program-save").click()
    await user.should_see(marker="program-errors", retries=WAIT)
    assert element_error(user, "program-pending_days") == (
        "must be less than “Points expire after days” (30) when “Points expire” is rolling: "
        "the points would expire before they could be spent"
    )
    assert element_error(user, "program-expiry_reminder_days") == "must not be negative"
    await user.should_not_see("Traceback")
    program = await db.get(LoyaltyProgram, people["a_program"])
    assert program is not None
    assert (program.expiry_policy, program.pending_days, program.expiry_reminder_days) == (
        ExpiryPolicy.INACTIVITY,
        0,
        30,
    )


async def test_a_duplicate_reward_code_is_named(user: User, people: dict[str, Any]) -> None:
    await sign_in(user, PLATFORM, to=f"/programs/{people['a_program']}")
    await user.should_see(marker="reward-add", retries=WAIT)
    user.find(marker="reward-add").click()
    await user.should_see(marker="reward-1-id", retries=WAIT)
    user.find(marker="reward-1-id").type("coffee")
    user.find(marker="reward-1-name").type("Another coffee")
    user.find(marker="reward-1-points_required").elements.pop().value = 10  # type: ignore[attr-defined]
    user.find(marker="program-save").click()
    await user.should_see(marker="program-errors", retries=WAIT)
    assert element_error(user, "reward-1-id") == "duplicate reward code 'coffee'"


def _tier(user: User, index: int, code: str, name: str, threshold: int, multiplier: float) -> None:
    """Fill the tiers table's row ``index`` (its id only when the row is new)."""
    if code:
        user.find(marker=f"tier-{index}-id").type(code)
    user.find(marker=f"tier-{index}-name").type(name)
    _set(user, f"tier-{index}-threshold_points", threshold)
    _set(user, f"tier-{index}-multiplier", multiplier)


async def test_tiers_their_window_and_grace_days_are_saved(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    await sign_in(user, ALICE, to=f"/programs/{people['a_program']}")
    await user.should_see(marker="tier-add", retries=WAIT)
    await user.should_see(
        "A card moves up as soon as its qualifying points (points earned in the window, net of "
        "returns; welcome bonus and adjustments excluded) reach a tier, and down only at the "
        "daily run after the grace days."
    )
    for index, tier in enumerate(
        [("member", "Member", 0, 1), ("silver", "Silver", 500, 1.25), ("gold", "Gold", 900, 2)]
    ):
        user.find(marker="tier-add").click()
        await user.should_see(marker=f"tier-{index}-id", retries=WAIT)
        _tier(user, index, *tier)
    user.find(marker="tier-2-remove").click()  # the gold goes again before saving
    user.find(marker="tier-add").click()
    await user.should_see(marker="tier-3-id", retries=WAIT)
    _tier(user, 3, "gold", "Gold", 1500, 1.5)
    (window,) = user.find(marker="program-tier_window").elements
    assert window.options == {  # type: ignore[attr-defined]
        "rolling_12_months": "Rolling 12 months",
        "calendar_year": "Calendar year",
    }
    _set(user, "program-tier_window", "calendar_year")
    _set(user, "program-tier_grace_days", 14)
    user.find(marker="program-save").click()
    await user.should_see("Program saved.", retries=WAIT)

    db.expire_all()
    program = await db.get(LoyaltyProgram, people["a_program"])
    assert program is not None
    assert (program.tiers, program.tier_window, program.tier_grace_days) == (
        [
            {"id": "member", "name": "Member", "threshold_points": 0, "multiplier": 1},
            {"id": "silver", "name": "Silver", "threshold_points": 500, "multiplier": 1.25},
            {"id": "gold", "name": "Gold", "threshold_points": 1500, "multiplier": 1.5},
        ],
        "calendar_year",
        14,
    )
    # The page shows what was saved; a saved tier keeps its id.
    await sign_in(user, ALICE, to=f"/programs/{people['a_program']}")
    await user.should_see(marker="tier-2-id", retries=WAIT)
    (gold,) = user.find(marker="tier-2-id").elements
    assert (gold.value, gold.enabled) == ("gold", False)  # type: ignore[attr-defined]
    assert value_of(user, "tier-1-multiplier") == 1.25
    assert value_of(user, "program-tier_window") == "calendar_year"
    assert value_of(user, "program-tier_grace_days") == 14


async def test_tiers_refused_are_named_under_their_fields(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    await sign_in(user, PLATFORM, to=f"/programs/{people['a_program']}")
    await user.should_see(marker="tier-add", retries=WAIT)
    for index, tier in enumerate(
        [("member", "Member", 0, 1), ("silver", "Silver", 500, 0), ("gold", "Gold", 400, 1.5)]
    ):
        user.find(marker="tier-add").click()
        await user.should_see(marker=f"tier-{index}-id", retries=WAIT)
        _tier(user, index, *tier)
    _set(user, "program-tier_grace_days", -1)
    user.find(marker="program-save").click()
    await user.should_see(marker="program-errors", retries=WAIT)
    assert element_error(user, "tier-1-multiplier") == "must be more than 0"
    assert element_error(user, "tier-2-threshold_points") == (
        "must be above the previous tier's (500)"
    )
    assert element_error(user, "program-tier_grace_days") == "must not be negative"
    assert element_error(user, "tier-0-threshold_points") is None
    await user.should_not_see("Traceback")
    db.expire_all()
    program = await db.get(LoyaltyProgram, people["a_program"])
    assert program is not None
    assert (program.tiers, program.tier_grace_days) == ([], 0)


async def test_no_tiers_is_said_only_while_the_tiers_table_is_empty(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    await sign_in(user, ALICE, to=f"/programs/{people['a_program']}")
    await user.should_see(marker="tier-add", retries=WAIT)
    assert texts(user, "program-tiers-empty") == ["No tiers: every card earns alike."]
    user.find(marker="tier-add").click()
    await user.should_see(marker="tier-0-id", retries=WAIT)
    await user.should_not_see(marker="program-tiers-empty", retries=WAIT)
    user.find(marker="tier-0-remove").click()
    await user.should_see(marker="program-tiers-empty", retries=WAIT)

    # A program with tiers never says it has none.
    await db.execute(
        update(LoyaltyProgram)
        .where(LoyaltyProgram.id == people["a_program"])
        .values(
            tiers=[
                {"id": "member", "name": "Member", "threshold_points": 0, "multiplier": 1},
                {"id": "gold", "name": "Gold", "threshold_points": 500, "multiplier": 2},
            ]
        )
    )
    await db.commit()
    await user.open(f"/programs/{people['a_program']}")
    await user.should_see(marker="tier-1-id", retries=WAIT)
    await user.should_not_see(marker="program-tiers-empty")
    await user.should_not_see("No tiers")
    user.find(marker="tier-0-remove").click()
    await user.should_not_see(marker="program-tiers-empty", retries=WAIT)  # one is left
    user.find(marker="tier-1-remove").click()
    await user.should_see("No tiers: every card earns alike.", retries=WAIT)


async def test_restoring_a_program_when_the_merchant_has_a_new_one_says_why(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    await sign_in(user, PLATFORM, to="/programs")
    await user.should_see(f"program-delete-{people['b_program']}", retries=WAIT)
    user.find(marker=f"program-delete-{people['b_program']}").click()
    await user.should_see(marker="confirm-yes", retries=WAIT)
    user.find(marker="confirm-yes").click()
    await user.should_see("Program deleted.", retries=WAIT)
    db.add(LoyaltyProgram(merchant_id=people["b"], type="points"))
    await db.commit()
    user.find(marker="programs-only-deleted").click()
    await user.should_see(f"program-restore-{people['b_program']}", retries=WAIT)
    user.find(marker=f"program-restore-{people['b_program']}").click()
    await user.should_see("has another live program now", retries=WAIT)


async def test_customers_are_listed_edited_deleted_and_restored(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    await enrol(db, people["a_store_codes"][0], "jane@example.com", first_name="Jane")
    await enrol(db, people["a_store_codes"][0], "john@example.com")
    customer_id = await db.scalar(select(Customer.id).where(Customer.email == "jane@example.com"))
    await sign_in(user, ALICE, to="/customers")
    await user.should_see("jane@example.com", retries=WAIT)
    await user.should_see("john@example.com")

    await user.open(f"/customers/{customer_id}")
    await user.should_see(marker="customer-save", retries=WAIT)
    user.find(marker="customer-email").clear()
    user.find(marker="customer-email").type("john@example.com")
    user.find(marker="customer-save").click()
    await user.should_see("Another customer of this merchant has the email", retries=WAIT)
    user.find(marker="customer-email").clear()
    user.find(marker="customer-email").type("not an email")
    user.find(marker="customer-save").click()
    await user.should_see("is not an email address", retries=WAIT)
    user.find(marker="customer-email").clear()
    user.find(marker="customer-email").type("Jane.Doe@Example.com")
    user.find(marker="customer-last_name").type("Doe")
    user.find(marker="customer-save").click()
    await user.should_see("Customer saved.", retries=WAIT)
    db.expire_all()
    customer = await db.get(Customer, customer_id)
    assert customer is not None
    assert (customer.email, customer.last_name) == ("jane.doe@example.com", "Doe")

    user.find(marker="customer-delete").click()
    await user.should_see(marker="confirm-yes", retries=WAIT)
    user.find(marker="confirm-yes").click()
    await user.should_see("Customer deleted.", retries=WAIT)
    await user.should_see(marker="customers-only-deleted", retries=WAIT)
    user.find(marker="customers-only-deleted").click()
    await user.should_see(f"customer-restore-{customer_id}", retries=WAIT)
    assert len(user.find(marker="customers-row").elements) == 1  # not John, who is live
    user.find(marker=f"customer-restore-{customer_id}").click()
    await user.should_see("Customer restored.", retries=WAIT)
    assert await db.scalar(select(Customer.id).where(Customer.id == customer_id)) is not None


async def test_staff_enrol_a_customer_from_the_panel_and_land_on_the_new_card(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    await sign_in(user, ALICE, to="/customers")
    user.find(marker="new-customer").click()
    await user.should_see(marker="enrol-submit", retries=WAIT)
    user.find(marker="enrol-email").type("not-an-email")
    user.find(marker="enrol-submit").click()
    await user.should_see("customer.email: not an email address", retries=WAIT)
    user.find(marker="enrol-email").clear()
    user.find(marker="enrol-email").type("Walk.In@Example.com")
    user.find(marker="enrol-first-name").type("Walk")
    user.find(marker="enrol-submit").click()
    await user.should_see(marker="adjust-submit", retries=WAIT)  # the card's page
    customer = (
        await db.scalars(select(Customer).where(Customer.email == "walk.in@example.com"))
    ).one()
    assert (customer.merchant_id, customer.first_name) == (people["a"], "Walk")
