"""The catalog service: one validation and one set of writes for the admin panel's forms and
``loyalty provision`` (the file's own paths are in ``test_provisioning``)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.enums import ExpiryPolicy
from domain import catalog
from domain.catalog import CatalogRefusal, FieldError, InvalidFields, RewardLine
from domain.models import LoyaltyProgram, ProgramType, Reward
from domain.staff_pins import active_pins, add_pin
from tests.domain import factories

NOON = datetime(2025, 3, 1, 12, tzinfo=UTC)
LATER = datetime(2025, 4, 1, 9, tzinfo=UTC)


def _form(**changes: Any) -> dict[str, Any]:
    """A program's settings as the panel's form sends them."""
    data: dict[str, Any] = {
        "name": " Coffee card ",
        "type": "hybrid",
        "background_color": "#1f2937",
        "point_value_cents": Decimal("0.5"),
        "points_rewards": [
            {"id": "coffee", "name": "Coffee", "points_required": 100, "is_active": True},
            {"id": "cake", "name": "Cake", "points_required": 200, "is_active": False},
        ],
    }
    data.update(changes)
    return data


# -- validation ------------------------------------------------------------------------------


def test_a_form_program_comes_out_normalised() -> None:
    change = catalog.program_change(_form())

    assert change.values == {
        "name": "Coffee card",
        "type": ProgramType.HYBRID,
        "background_color": "#1F2937",
        "point_value_cents": Decimal("0.5"),
    }
    assert change.rewards == (
        RewardLine("coffee", "Coffee", 100, None, True),
        RewardLine("cake", "Cake", 200, None, False),
    )


def test_form_problems_are_named_by_field_with_the_files_sentences() -> None:
    data = _form(stamps_target=0, currency="XYZ")
    data["points_rewards"][1]["id"] = "coffee"

    assert catalog.check_program(data) == [
        FieldError("currency", "unknown currency 'XYZ' (an ISO 4217 code like EUR)"),
        FieldError("stamps_target", "must be >= 1"),
        FieldError("points_rewards[1].id", "duplicate reward code 'coffee'"),
    ]


def test_the_reward_rules_speak_the_files_words_in_a_file() -> None:
    rewards = [{"id": "coffee"}, {"id": "coffee"}]
    at = "merchants[0].program.points_rewards"

    assert catalog.reward_rules(ProgramType.STAMPS, rewards, at=at, style="file") == [
        FieldError(at, "a stamps program has no points rewards (type points or hybrid)"),
        FieldError(f"{at}[1].id", f"duplicate reward id 'coffee' (also {at}[0].id)"),
    ]


def test_a_stamps_program_may_keep_switched_off_rewards() -> None:
    data = _form(type="stamps")
    data["points_rewards"] = [data["points_rewards"][1]]  # the cake, switched off

    assert catalog.check_program(data) == []
    data["points_rewards"][0]["is_active"] = True
    assert [p.path for p in catalog.check_program(data)] == ["points_rewards"]


def test_pending_and_expiry_settings_come_out_as_the_columns() -> None:
    change = catalog.program_change(
        _form(expiry_policy="rolling", pending_days=14, expiry_reminder_days=7)
    )

    assert change.values["expiry_policy"] is ExpiryPolicy.ROLLING
    assert (change.values["pending_days"], change.values["expiry_reminder_days"]) == (14, 7)


def test_pending_and_expiry_problems_are_named_by_field() -> None:
    data = _form(expiry_policy="weekly", pending_days=-1, expiry_reminder_days=1.5)

    assert catalog.check_program(data) == [
        FieldError("pending_days", "must be >= 0"),
        FieldError(
            "expiry_policy",
            "must be one of inactivity, rolling, calendar_year (got 'weekly')",
        ),
        FieldError("expiry_reminder_days", "must be an integer"),
    ]
    rolling = _form(expiry_policy="rolling", points_expiration_days=30, pending_days=30)
    assert catalog.check_program(rolling) == [
        FieldError(
            "pending_days",
            "must be < points_expiration_days (30) when expiry_policy is rolling: "
            "the points would expire before they could be spent",
        )
    ]
    assert catalog.check_program({**rolling, "pending_days": 29}) == []
    # Named with another field's problem too, so a form shows both at once; once per field.
    assert [e.path for e in catalog.check_program({**rolling, "currency": "XYZ"})] == [
        "currency",
        "pending_days",
    ]
    too_long = {**rolling, "pending_days": 40_000}
    assert catalog.check_program(too_long) == [FieldError("pending_days", "must be <= 36500")]
    assert catalog.check_program({**rolling, "expiry_policy": "inactivity"}) == []


def test_tiers_come_out_as_the_columns_json() -> None:
    tiers = [
        {"id": " member ", "name": "Member", "threshold_points": 0, "multiplier": Decimal(1)},
        {"id": "silver", "name": "Silver", "threshold_points": 500, "multiplier": Decimal("1.25")},
    ]
    change = catalog.program_change(
        _form(tiers=tiers, tier_window="calendar_year", tier_grace_days=30)
    )

    assert change.values["tiers"] == [
        {"id": "member", "name": "Member", "threshold_points": 0, "multiplier": 1},
        {"id": "silver", "name": "Silver", "threshold_points": 500, "multiplier": 1.25},
    ]
    assert isinstance(change.values["tiers"][0]["multiplier"], int)
    assert (change.values["tier_window"], change.values["tier_grace_days"]) == (
        "calendar_year",
        30,
    )
    assert catalog.program_change(_form(tiers=[])).values["tiers"] == []


def test_tier_problems_are_named_by_row_and_field() -> None:
    tiers = [
        {"id": "member", "name": "Member", "threshold_points": 10, "multiplier": Decimal(1)},
        {"id": "silver", "name": "", "threshold_points": 500, "multiplier": Decimal(0)},
        {"id": "silver", "name": "Gold", "threshold_points": 500, "multiplier": Decimal(2)},
        {"id": "Top!", "name": "Top", "threshold_points": -1, "multiplier": Decimal(11)},
    ]

    assert catalog.check_program(
        _form(tiers=tiers, tier_window="monthly", tier_grace_days=4000)
    ) == [
        FieldError("tiers[1].name", "must not be empty"),
        FieldError("tiers[1].multiplier", "must be > 0"),
        FieldError("tiers[3].id", "must be lower-case letters, digits and '-'"),
        FieldError("tiers[3].threshold_points", "must be >= 0"),
        FieldError("tiers[3].multiplier", "must be <= 10"),
        FieldError(
            "tier_window", "must be one of rolling_12_months, calendar_year (got 'monthly')"
        ),
        FieldError("tier_grace_days", "must be <= 3650"),
        # Judged on the raw values too, so the form shows them with the others.
        FieldError("tiers[0].threshold_points", "the first tier starts at 0"),
        FieldError("tiers[2].id", "duplicate tier id 'silver'"),
        FieldError("tiers[2].threshold_points", "must be above the previous tier's (500)"),
    ]


def test_the_tier_rules_speak_the_files_words_in_a_file() -> None:
    at = "merchants[0].program.tiers"
    tiers = [
        {"id": "member", "threshold_points": 0},
        {"id": "member", "threshold_points": 0},
        {"id": "gold", "threshold_points": 1500},
    ]

    assert catalog.tier_rules(tiers, at=at, style="file") == [
        FieldError(f"{at}[1].id", f"duplicate tier id 'member' (also {at}[0].id)"),
        FieldError(f"{at}[1].threshold_points", "must be above the previous tier's (0)"),
    ]
    assert catalog.tier_rules([], at=at, style="file") == []


def test_a_merchant_form_is_flat() -> None:
    data = {
        "code": "bad code!",
        "name": "",
        "timezone": "Europe/Luxembourg",
        "allow_self_enrollment": "yes",
        "allow_cross_location_redemption": True,
    }

    with pytest.raises(InvalidFields) as refused:
        catalog.merchant_values(data)
    assert [e.path for e in refused.value.errors] == ["code", "name", "allow_self_enrollment"]


# -- writes ----------------------------------------------------------------------------------


async def test_a_program_made_active_has_its_activation_time_whoever_makes_it(
    db: AsyncSession,
) -> None:
    merchant = await factories.merchant(db)
    change = catalog.program_change({"type": "stamps", "name": "Card", "is_active": False})
    program = await catalog.create_program(db, merchant.id, change.values, at=NOON)
    assert program.activated_at is None

    on = catalog.program_change(_form(is_active=True, type="stamps", points_rewards=[]))
    assert await catalog.update_program(db, program, on.values, at=LATER)
    assert program.activated_at == LATER
    assert not await catalog.update_program(db, program, on.values, at=NOON)
    assert program.activated_at == LATER

    with pytest.raises(CatalogRefusal, match="already has a program"):
        await catalog.create_program(db, merchant.id, change.values, at=NOON)


async def test_an_update_is_judged_with_the_expiry_settings_the_program_keeps(
    db: AsyncSession,
) -> None:
    merchant = await factories.merchant(db)
    values = {
        "type": ProgramType.POINTS,
        "expiry_policy": ExpiryPolicy.ROLLING,
        "points_expiration_days": 90,
        "pending_days": 14,
    }
    program = await catalog.create_program(db, merchant.id, values, at=NOON)

    with pytest.raises(InvalidFields) as refused:
        await catalog.update_program(db, program, {"pending_days": 90}, at=LATER)
    assert [e.path for e in refused.value.errors] == ["pending_days"]
    with pytest.raises(InvalidFields):
        await catalog.update_program(db, program, {"points_expiration_days": 14}, at=LATER)
    assert (program.pending_days, program.points_expiration_days) == (14, 90)
    # Under another policy the points no longer expire by lot: the pending days may stay.
    change = {"expiry_policy": ExpiryPolicy.CALENDAR_YEAR, "points_expiration_days": 14}
    assert await catalog.update_program(db, program, change, at=LATER)
    assert (program.expiry_policy, program.pending_days) == (ExpiryPolicy.CALENDAR_YEAR, 14)
    with pytest.raises(InvalidFields):
        await catalog.create_program(
            db, (await factories.merchant(db, "m2")).id, {**values, "pending_days": 90}, at=NOON
        )


async def test_tiers_are_written_on_create_and_update_and_read_back_unchanged(
    db: AsyncSession,
) -> None:
    merchant = await factories.merchant(db)
    tiers = [
        {"id": "member", "name": "Member", "threshold_points": 0, "multiplier": Decimal(1)},
        {"id": "gold", "name": "Gold", "threshold_points": 1500, "multiplier": Decimal("1.5")},
    ]
    change = catalog.program_change({"type": "points", "tiers": tiers, "tier_grace_days": 30})
    program_id = (await catalog.create_program(db, merchant.id, change.values, at=NOON)).id
    await db.commit()
    db.expire_all()

    stored = await db.get(LoyaltyProgram, program_id)
    assert stored is not None
    assert (stored.tiers, stored.tier_window, stored.tier_grace_days) == (
        [
            {"id": "member", "name": "Member", "threshold_points": 0, "multiplier": 1},
            {"id": "gold", "name": "Gold", "threshold_points": 1500, "multiplier": 1.5},
        ],
        "rolling_12_months",
        30,
    )
    assert not await catalog.update_program(db, stored, change.values, at=LATER)
    fewer = catalog.program_change({"type": "points", "tiers": tiers[:1]})
    assert await catalog.update_program(db, stored, fewer.values, at=LATER)
    assert [t["id"] for t in stored.tiers] == ["member"]


async def test_a_catalog_is_stated_whole_and_missing_rewards_are_deactivated(
    db: AsyncSession,
) -> None:
    merchant = await factories.merchant(db)
    program = await catalog.create_program(db, merchant.id, {"type": ProgramType.POINTS}, at=NOON)
    lines = catalog.program_change(_form()).rewards
    assert lines is not None

    first = await catalog.put_rewards(db, program.id, lines)
    again = await catalog.put_rewards(db, program.id, lines)
    last = await catalog.put_rewards(db, program.id, lines[:1])

    assert first == {"created": 2}
    assert again == {"unchanged": 2}
    assert last == {"unchanged": 1}  # the cake was already switched off
    rewards = {r.code: r.is_active for r in await db.scalars(select(Reward))}
    assert rewards == {"coffee": True, "cake": False}


async def test_codes_in_use_and_zones_postgresql_lacks_are_refused(db: AsyncSession) -> None:
    values = catalog.merchant_values(
        {
            "code": "m-1",
            "name": "M",
            "timezone": "Europe/Luxembourg",
            "allow_self_enrollment": True,
            "allow_cross_location_redemption": True,
        }
    )
    merchant = await catalog.create_merchant(db, values)
    store = await catalog.create_store(db, merchant.id, "S-1", "Shop")

    with pytest.raises(CatalogRefusal, match="the merchant code 'm-1' is already used"):
        await catalog.create_merchant(db, values)
    with pytest.raises(CatalogRefusal, match="'S-1' is already used by a live store"):
        await catalog.create_store(db, merchant.id, "S-1", "Again")
    # A zone Python may know and PostgreSQL not: every ledger write of the merchant would fail.
    with pytest.raises(CatalogRefusal, match="time zone 'Factory/Nowhere' unknown to Postgre"):
        await catalog.update_merchant(db, merchant, {"timezone": "Factory/Nowhere"})
    assert not await catalog.update_store(db, store, {"code": "S-1", "name": "Shop"})
    assert await catalog.update_store(db, store, {"name": "Main shop"})


async def test_staff_are_given_a_pin_once_and_named_within_limits(db: AsyncSession) -> None:
    merchant = await factories.merchant(db)
    store = await factories.store(db, merchant, "S-1")
    await add_pin(db, "S-1", "Anna", "4821", rounds=4)
    active = await catalog.pin_holder("4821", await active_pins(db, store.id))
    assert active is not None and active.name == "Anna"

    assert await catalog.put_staff(db, store.id, "Anna", "4821", active, rounds=4) == "unchanged"
    assert await catalog.put_staff(db, store.id, "Anna", "1357", active, rounds=4) == "updated"
    assert await catalog.put_staff(db, store.id, "Marc", "2468", None, rounds=4) == "created"
    with pytest.raises(CatalogRefusal, match="the name must have at most 100 characters"):
        await catalog.add_staff(db, "S-1", "x" * 101, "9753")


def test_the_program_columns_of_a_change_are_the_models() -> None:
    change = catalog.program_change(_form())
    assert set(change.values) <= set(LoyaltyProgram.__table__.columns.keys())
