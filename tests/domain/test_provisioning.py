"""Provisioning: the file's schema, path-named errors, create-or-update by code, idempotence."""

from __future__ import annotations

import copy
import json
import socket
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.enums import ExpiryPolicy
from core.settings import REPO_ROOT, get_settings
from domain import provisioning
from domain.catalog import field_path
from domain.models import (
    Campaign,
    LoyaltyProgram,
    Merchant,
    ProgramType,
    Reward,
    StaffPin,
    Store,
    WebhookEndpoint,
)
from domain.provisioning import ProvisioningError, ProvisioningSummary
from domain.staff_pins import add_pin, verify_pin
from domain.webhooks import WEBHOOK_EVENT_TYPES

DEMO = REPO_ROOT / "demo" / "demo.yaml"
NOON = datetime(2025, 3, 1, 12, tzinfo=UTC)


def demo() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(DEMO.read_text())
    return copy.deepcopy(data)


async def _provision(db: AsyncSession, data: Any) -> ProvisioningSummary:
    summary = await provisioning.apply(db, provisioning.parse(data))
    await db.commit()
    return summary


def _errors(data: Any) -> list[str]:
    with pytest.raises(ProvisioningError) as refused:
        provisioning.parse(data)
    return [str(e) for e in refused.value.errors]


async def _count(db: AsyncSession, model: type) -> int:
    return int(await db.scalar(select(func.count()).select_from(model)) or 0)


# -- the schema ------------------------------------------------------------------------------


def test_the_demo_file_is_valid() -> None:
    spec = provisioning.load_file(DEMO)
    assert [m.code for m in spec.merchants] == ["cafe-lux", "bakery-mie"]


def test_paths_are_written_as_in_the_contract() -> None:
    assert field_path(("merchants", 0, "program", "stamps_target")) == (
        "merchants[0].program.stamps_target"
    )
    assert field_path(("merchants", 2, "staff", 1, "pin")) == "merchants[2].staff[1].pin"
    assert field_path(()) == "(file)"


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (
            lambda d: d["merchants"][0]["program"].update(stamps_target=0),
            "merchants[0].program.stamps_target: must be >= 1",
        ),
        (
            lambda d: d["merchants"][0]["program"].update(type="loyalty"),
            "merchants[0].program.type: must be one of stamps, points, hybrid (got 'loyalty')",
        ),
        (
            lambda d: d["merchants"][1]["program"].update(currency="EURO"),
            "merchants[1].program.currency: unknown currency 'EURO' (an ISO 4217 code like EUR)",
        ),
        (
            lambda d: d["merchants"][1]["program"].update(currency="XYZ"),
            "merchants[1].program.currency: unknown currency 'XYZ' (an ISO 4217 code like EUR)",
        ),
        (
            lambda d: d["merchants"][0].update(timezone="Europe/Atlantis"),
            "merchants[0].timezone: unknown time zone 'Europe/Atlantis' "
            "(an IANA name like Europe/Luxembourg)",
        ),
        (
            lambda d: d["merchants"][0]["program"].update(stamp_target=8),
            "merchants[0].program.stamp_target: unknown field",
        ),
        (
            lambda d: d["merchants"][0]["program"].update(points_per_euro="10"),
            "merchants[0].program.points_per_euro: must be an integer",
        ),
        (
            lambda d: d["merchants"][0]["program"].update(max_daily_stamps=0),
            "merchants[0].program.max_daily_stamps: must be >= 1",
        ),
        (
            lambda d: d["merchants"][0]["program"]["points_rewards"][0].pop("points_required"),
            "merchants[0].program.points_rewards[0].points_required: required",
        ),
        (
            lambda d: d["merchants"][0]["stores"][1].update(code=""),
            "merchants[0].stores[1].code: must not be empty",
        ),
        (
            lambda d: d["merchants"][0]["staff"][0].update(pin=4821),
            'merchants[0].staff[0].pin: must be a quoted string of 4 to 8 digits, e.g. "4821"',
        ),
        (
            lambda d: d["merchants"][0]["staff"][0].update(pin="12"),
            'merchants[0].staff[0].pin: must be a quoted string of 4 to 8 digits, e.g. "4821"',
        ),
        (
            lambda d: d["merchants"][0]["program"].update(background_color="brown"),
            "merchants[0].program.background_color: must be a colour like #1F2937",
        ),
        (
            lambda d: d["merchants"][0]["settings"].update(allow_self_enrollment="yes"),
            "merchants[0].settings.allow_self_enrollment: must be true or false",
        ),
        (
            lambda d: d["merchants"][1].update(code="cafe-lux"),
            "merchants[1].code: duplicate merchant code 'cafe-lux' (also merchants[0].code)",
        ),
        (
            lambda d: d["merchants"][1]["stores"][0].update(code="LUX-02"),
            "merchants[1].stores[0].code: duplicate store code 'LUX-02' "
            "(also merchants[0].stores[1].code)",
        ),
        (
            lambda d: d["merchants"][0]["program"]["points_rewards"][2].update(id="coffee"),
            "merchants[0].program.points_rewards[2].id: duplicate reward id 'coffee' "
            "(also merchants[0].program.points_rewards[0].id)",
        ),
        (
            lambda d: d["merchants"][0]["staff"][1].update(store="LUX-01", pin="4821"),
            "merchants[0].staff[1].pin: same PIN as merchants[0].staff[0] at store LUX-01: "
            "two staff members of a store cannot share a PIN",
        ),
        (
            lambda d: d["merchants"][1]["program"].update(
                points_rewards=[{"id": "x", "name": "X", "points_required": 5}]
            ),
            "merchants[1].program.points_rewards: a stamps program has no points rewards "
            "(type points or hybrid)",
        ),
        (
            lambda d: d["merchants"][0]["program"].update(expiry_policy="weekly"),
            "merchants[0].program.expiry_policy: must be one of inactivity, rolling, "
            "calendar_year (got 'weekly')",
        ),
        (
            lambda d: d["merchants"][0]["program"].update(pending_days=-1),
            "merchants[0].program.pending_days: must be >= 0",
        ),
        (
            lambda d: d["merchants"][0]["program"].update(pending_days="14"),
            "merchants[0].program.pending_days: must be an integer",
        ),
        (
            lambda d: d["merchants"][0]["program"].update(pending_days=100_000),
            "merchants[0].program.pending_days: must be <= 36500",
        ),
        (
            lambda d: d["merchants"][0]["program"].update(expiry_reminder_days=-1),
            "merchants[0].program.expiry_reminder_days: must be >= 0",
        ),
        (
            lambda d: d["merchants"][0]["program"].update(
                expiry_policy="rolling", pending_days=365
            ),
            "merchants[0].program.pending_days: must be < points_expiration_days (365) when "
            "expiry_policy is rolling: the points would expire before they could be spent",
        ),
        (
            lambda d: d["merchants"][0]["program"]["tiers"][0].update(threshold_points=100),
            "merchants[0].program.tiers[0].threshold_points: the first tier starts at 0",
        ),
        (
            lambda d: d["merchants"][0]["program"]["tiers"][2].update(threshold_points=500),
            "merchants[0].program.tiers[2].threshold_points: must be above the previous "
            "tier's (500)",
        ),
        (
            lambda d: d["merchants"][0]["program"]["tiers"][1].update(multiplier=0),
            "merchants[0].program.tiers[1].multiplier: must be > 0",
        ),
        (
            lambda d: d["merchants"][0]["program"]["tiers"][1].update(multiplier=10.5),
            "merchants[0].program.tiers[1].multiplier: must be <= 10",
        ),
        (
            lambda d: d["merchants"][0]["program"]["tiers"][1].update(multiplier=1.2345),
            "merchants[0].program.tiers[1].multiplier: must have at most 3 decimal places",
        ),
        (
            lambda d: d["merchants"][0]["program"]["tiers"][2].update(id="silver"),
            "merchants[0].program.tiers[2].id: duplicate tier id 'silver' "
            "(also merchants[0].program.tiers[1].id)",
        ),
        (
            lambda d: d["merchants"][0]["program"]["tiers"][2].update(id="Gold!"),
            "merchants[0].program.tiers[2].id: must be lower-case letters, digits and '-'",
        ),
        (
            lambda d: d["merchants"][0]["program"]["tiers"][2].update(id="g" * 65),
            "merchants[0].program.tiers[2].id: must have at most 64 characters",
        ),
        (
            lambda d: d["merchants"][0]["program"]["tiers"][0].update(name=" "),
            "merchants[0].program.tiers[0].name: must not be empty",
        ),
        (
            lambda d: d["merchants"][0]["program"]["tiers"][0].update(name="x" * 101),
            "merchants[0].program.tiers[0].name: must have at most 100 characters",
        ),
        (
            lambda d: d["merchants"][0]["program"]["tiers"][0].pop("threshold_points"),
            "merchants[0].program.tiers[0].threshold_points: required",
        ),
        (
            lambda d: d["merchants"][0]["program"]["tiers"][0].update(level=1),
            "merchants[0].program.tiers[0].level: unknown field",
        ),
        (
            lambda d: d["merchants"][0]["program"].update(tier_window="monthly"),
            "merchants[0].program.tier_window: must be one of rolling_12_months, "
            "calendar_year (got 'monthly')",
        ),
        (
            lambda d: d["merchants"][0]["program"].update(tier_grace_days=-1),
            "merchants[0].program.tier_grace_days: must be >= 0",
        ),
        (
            lambda d: d["merchants"][0]["program"].update(tier_grace_days=3651),
            "merchants[0].program.tier_grace_days: must be <= 3650",
        ),
        (lambda d: d.pop("merchants"), "merchants: required"),
    ],
)
def test_a_file_that_breaks_the_schema_is_refused_with_the_path(change: Any, error: str) -> None:
    data = demo()
    change(data)
    assert _errors(data) == [error]


@pytest.mark.parametrize(
    "program",
    [
        # Pending as long as the points live, but they expire by inactivity, or by the year.
        {"pending_days": 365},
        {"pending_days": 400, "expiry_policy": "calendar_year"},
        # Points that never expire may be pending as long as the merchant likes.
        {"pending_days": 400, "expiry_policy": "rolling", "points_expiration_days": None},
        {"pending_days": 364, "expiry_policy": "rolling", "expiry_reminder_days": 0},
    ],
)
def test_pending_days_may_reach_the_expiry_only_when_points_do_not_expire_by_lot(
    program: dict[str, Any],
) -> None:
    data = demo()
    data["merchants"][0]["program"].update(program)
    assert provisioning.parse(data).merchants[0].program is not None


def test_every_error_is_reported_one_line_each() -> None:
    data = demo()
    data["merchants"][0]["program"]["stamps_target"] = 0
    data["merchants"][1].pop("name")
    assert _errors(data) == [
        "merchants[0].program.stamps_target: must be >= 1",
        "merchants[1].name: required",
    ]


def test_a_pin_is_never_echoed_in_an_error() -> None:
    data = demo()
    data["merchants"][0]["staff"][0]["pin"] = "48211234567"
    assert not any("48211234567" in e for e in _errors(data))


def test_unreadable_files_are_named(tmp_path: Path) -> None:
    twice = tmp_path / "twice.yaml"
    twice.write_text("merchants: []\nmerchants: []\n")
    broken = tmp_path / "broken.json"
    broken.write_text('{"merchants": [}')
    for path, error in [
        (twice, f"{twice}: invalid YAML at line 2, column 1: duplicate key 'merchants'"),
        (broken, f"{broken}: invalid JSON at line 1, column 16: Expecting value"),
        (tmp_path / "missing.yaml", f"{tmp_path / 'missing.yaml'}: cannot be read"),
    ]:
        with pytest.raises(ProvisioningError) as refused:
            provisioning.load_file(path)
        assert str(refused.value).startswith(error)


def test_json_files_are_read_too(tmp_path: Path) -> None:
    path = tmp_path / "demo.json"
    path.write_text(json.dumps(demo()))
    assert provisioning.load_file(path) == provisioning.load_file(DEMO)


# -- applying --------------------------------------------------------------------------------


async def test_the_demo_file_creates_everything(db: AsyncSession) -> None:
    summary = await _provision(db, demo())

    assert str(summary) == (
        "provisioned: merchants 2 created, 0 updated, 0 unchanged; "
        "stores 3 created, 0 updated, 0 unchanged; programs 2 created, 0 updated, 0 unchanged; "
        "rewards 3 created, 0 updated, 0 unchanged; campaigns 2 created, 0 updated, 0 unchanged; "
        "staff 2 created, 0 updated, 0 unchanged"
    )
    cafe = (await db.scalars(select(Merchant).where(Merchant.code == "cafe-lux"))).one()
    assert (cafe.name, cafe.timezone, cafe.allow_self_enrollment) == (
        "Café Lux",
        "Europe/Luxembourg",
        True,
    )
    program = (
        await db.scalars(select(LoyaltyProgram).where(LoyaltyProgram.merchant_id == cafe.id))
    ).one()
    assert program.type is ProgramType.HYBRID
    assert (program.stamps_target, program.points_per_euro, program.max_daily_stamps) == (10, 10, 5)
    assert program.point_value_cents == Decimal("0.5")
    assert program.background_color == "#3B2417"
    assert program.pin_lockout_minutes == 30
    assert program.activated_at is not None
    bakery_program = (
        await db.scalars(select(LoyaltyProgram).where(LoyaltyProgram.type == ProgramType.STAMPS))
    ).one()
    assert (bakery_program.stamps_target, bakery_program.label_color) == (8, "#F5DEB3")
    assert bakery_program.background_color == "#7C4A1E"
    assert bakery_program.foreground_color == "#FFFFFF"  # the model's default
    rewards = (await db.scalars(select(Reward).order_by(Reward.id))).all()
    assert [(r.code, r.points_required) for r in rewards] == [
        ("coffee", 100),
        ("pastry", 150),
        ("lunch", 600),
    ]
    assert (await verify_pin(db, "LUX-01", "4821", NOON)).name == "Anna"
    assert (await verify_pin(db, "LUX-02", "7305", NOON)).name == "Marc"


async def test_provisioning_the_same_file_again_changes_nothing(db: AsyncSession) -> None:
    await _provision(db, demo())
    before = {
        model.__tablename__: (
            await db.execute(select(model.id, model.updated_at).order_by(model.id))
        ).all()
        for model in (Merchant, Store, LoyaltyProgram, Reward, Campaign, StaffPin)
    }
    hashes = (await db.scalars(select(StaffPin.pin_hash).order_by(StaffPin.id))).all()

    summary = await _provision(db, demo())

    assert not summary.changed
    assert str(summary).startswith("nothing to change: merchants 0 created, 0 updated, 2 unchanged")
    after = {
        model.__tablename__: (
            await db.execute(select(model.id, model.updated_at).order_by(model.id))
        ).all()
        for model in (Merchant, Store, LoyaltyProgram, Reward, Campaign, StaffPin)
    }
    assert after == before
    assert (await db.scalars(select(StaffPin.pin_hash).order_by(StaffPin.id))).all() == hashes


async def test_a_changed_file_updates_by_code(db: AsyncSession) -> None:
    await _provision(db, demo())
    data = demo()
    cafe = data["merchants"][0]
    cafe["name"] = "Café Lux & Co"
    cafe["stores"][1]["name"] = "Kirchberg Centre"
    cafe["stores"].append({"code": "LUX-03", "name": "Belair"})
    cafe["program"]["stamps_target"] = 12
    cafe["program"]["points_rewards"] = [
        {"id": "coffee", "name": "Free coffee", "points_required": 120},
        {"id": "cake", "name": "Cake", "points_required": 200},
    ]
    cafe["staff"][0]["pin"] = "1357"

    summary = await _provision(db, data)

    assert summary.get("merchants", "updated") == 1
    assert (summary.get("stores", "created"), summary.get("stores", "updated")) == (1, 1)
    assert summary.get("programs", "updated") == 1
    assert [summary.get("rewards", o) for o in ("created", "updated", "deactivated")] == [1, 1, 2]
    assert (summary.get("staff", "updated"), summary.get("staff", "unchanged")) == (1, 1)
    rewards = {r.code: r for r in await db.scalars(select(Reward))}
    assert {c: (r.points_required, r.is_active) for c, r in rewards.items()} == {
        "coffee": (120, True),
        "pastry": (150, False),
        "lunch": (600, False),
        "cake": (200, True),
    }
    assert (await verify_pin(db, "LUX-01", "1357", NOON)).name == "Anna"
    assert await _count(db, StaffPin) == 2


async def test_a_reward_back_in_the_file_is_active_again(db: AsyncSession) -> None:
    await _provision(db, demo())
    data = demo()
    data["merchants"][0]["program"]["points_rewards"].pop()
    await _provision(db, data)

    summary = await _provision(db, demo())

    assert summary.get("rewards", "updated") == 1
    assert all(r.is_active for r in await db.scalars(select(Reward)))


async def test_what_the_file_leaves_out_is_left_as_it_is(db: AsyncSession) -> None:
    await _provision(db, demo())
    data = demo()
    bakery = data["merchants"][1]
    del bakery["program"]["max_daily_stamps"], bakery["program"]["background_color"]
    del bakery["settings"], bakery["stores"]

    summary = await _provision(db, data)

    assert not summary.changed
    program = (
        await db.scalars(select(LoyaltyProgram).where(LoyaltyProgram.type == ProgramType.STAMPS))
    ).one()
    assert (program.max_daily_stamps, program.background_color) == (1, "#7C4A1E")
    data["merchants"][1]["program"]["max_daily_stamps"] = None  # an explicit null clears it
    await _provision(db, data)
    await db.refresh(program)
    assert program.max_daily_stamps is None


async def test_pending_and_expiry_settings_are_written_on_create_and_update(
    db: AsyncSession,
) -> None:
    await _provision(db, demo())
    cafe = (
        await db.scalars(select(LoyaltyProgram).where(LoyaltyProgram.stamps_target == 10))
    ).one()
    # Left out of the file: v1's behaviour.
    assert (cafe.expiry_policy, cafe.pending_days, cafe.expiry_reminder_days) == (
        ExpiryPolicy.INACTIVITY,
        0,
        30,
    )
    data = demo()
    data["merchants"][0]["program"].update(
        expiry_policy="rolling", pending_days=14, expiry_reminder_days=7
    )
    data["merchants"].append(
        {
            "code": "shop-new",
            "name": "New shop",
            "program": {
                "type": "points",
                "points_per_euro": 1,
                "expiry_policy": "calendar_year",
                "pending_days": 30,
                "expiry_reminder_days": 60,
            },
        }
    )

    summary = await _provision(db, data)

    assert (summary.get("programs", "updated"), summary.get("programs", "created")) == (1, 1)
    settings = {
        code: (p.expiry_policy, p.pending_days, p.expiry_reminder_days)
        for p, code in (
            await db.execute(
                select(LoyaltyProgram, Merchant.code).join(
                    Merchant, Merchant.id == LoyaltyProgram.merchant_id
                )
            )
        ).all()
    }
    assert settings == {
        "cafe-lux": (ExpiryPolicy.ROLLING, 14, 7),
        "bakery-mie": (ExpiryPolicy.INACTIVITY, 0, 30),
        "shop-new": (ExpiryPolicy.CALENDAR_YEAR, 30, 60),
    }
    assert not (await _provision(db, data)).changed


DEMO_TIERS = [
    {"id": "member", "name": "Member", "threshold_points": 0, "multiplier": 1},
    {"id": "silver", "name": "Silver", "threshold_points": 500, "multiplier": 1.25},
    {"id": "gold", "name": "Gold", "threshold_points": 1500, "multiplier": 1.5},
]


async def _tier_settings(db: AsyncSession) -> dict[str, tuple[Any, str, int]]:
    db.expire_all()
    return {
        code: (p.tiers, p.tier_window, p.tier_grace_days)
        for p, code in (
            await db.execute(
                select(LoyaltyProgram, Merchant.code).join(
                    Merchant, Merchant.id == LoyaltyProgram.merchant_id
                )
            )
        ).all()
    }


async def test_tiers_are_written_on_create_and_update(db: AsyncSession) -> None:
    await _provision(db, demo())
    # The demo's café has three tiers; the bakery none, as in v1.
    assert await _tier_settings(db) == {
        "cafe-lux": (DEMO_TIERS, "rolling_12_months", 30),
        "bakery-mie": ([], "rolling_12_months", 0),
    }
    data = demo()
    cafe = data["merchants"][0]["program"]
    cafe["tiers"] = [
        {"id": "member", "name": "Member", "threshold_points": 0},  # multiplier 1 by default
        {"id": "vip", "name": "VIP", "threshold_points": 1000, "multiplier": "2.5"},
    ]
    cafe["tier_window"] = "calendar_year"
    del cafe["tier_grace_days"]  # left out: kept
    data["merchants"][1]["program"]["tier_grace_days"] = 7
    data["merchants"].append(
        {
            "code": "shop-new",
            "name": "New shop",
            "program": {"type": "points", "points_per_euro": 1, "tiers": DEMO_TIERS[:2]},
        }
    )

    summary = await _provision(db, data)

    assert (summary.get("programs", "updated"), summary.get("programs", "created")) == (2, 1)
    assert await _tier_settings(db) == {
        "cafe-lux": (
            [
                {"id": "member", "name": "Member", "threshold_points": 0, "multiplier": 1},
                {"id": "vip", "name": "VIP", "threshold_points": 1000, "multiplier": 2.5},
            ],
            "calendar_year",
            30,
        ),
        "bakery-mie": ([], "rolling_12_months", 7),
        "shop-new": (DEMO_TIERS[:2], "rolling_12_months", 0),
    }
    # Read back from the database, the same file changes nothing.
    assert not (await _provision(db, data)).changed
    # An empty list (or null) takes the tiers away: v1's behaviour.
    data["merchants"][0]["program"]["tiers"] = None
    assert (await _provision(db, data)).get("programs", "updated") == 1
    assert (await _tier_settings(db))["cafe-lux"][0] == []


async def test_bad_tiers_name_the_field_and_change_nothing(db: AsyncSession) -> None:
    await _provision(db, demo())
    data = demo()
    data["merchants"][0]["name"] = "Renamed"
    data["merchants"][0]["program"]["tier_grace_days"] = 60
    data["merchants"][0]["program"]["tiers"][2]["threshold_points"] = 400

    assert _errors(data) == [
        "merchants[0].program.tiers[2].threshold_points: must be above the previous tier's (500)"
    ]
    assert (await _tier_settings(db))["cafe-lux"] == (DEMO_TIERS, "rolling_12_months", 30)
    assert await db.scalar(select(Merchant.name).where(Merchant.code == "cafe-lux")) == "Café Lux"


async def _refused(db: AsyncSession, data: Any) -> list[str]:
    spec = provisioning.parse(data)
    with pytest.raises(ProvisioningError) as refused:
        await provisioning.apply(db, spec)
    await db.rollback()
    return [str(e) for e in refused.value.errors]


async def test_a_store_code_of_another_merchant_is_refused(db: AsyncSession) -> None:
    await _provision(db, demo())
    data = {
        "merchants": [{"code": "thief", "name": "T", "stores": [{"code": "LUX-01", "name": "X"}]}]
    }

    assert await _refused(db, data) == [
        "merchants[0].stores[0].code: store code 'LUX-01' already belongs to merchant 'cafe-lux'"
    ]
    assert await _count(db, Merchant) == 2


async def test_staff_of_an_unknown_store_is_refused(db: AsyncSession) -> None:
    data = demo()
    data["merchants"][0]["staff"][1]["store"] = "LUX-09"

    assert await _refused(db, data) == [
        "merchants[0].staff[1].store: unknown store 'LUX-09' (stores of cafe-lux: LUX-01, LUX-02)"
    ]
    assert await _count(db, Merchant) == 0  # nothing was created


async def test_staff_may_name_a_store_provisioned_before(db: AsyncSession) -> None:
    await _provision(db, demo())
    data = demo()
    data["merchants"][0]["stores"] = []
    data["merchants"][0]["staff"] = [{"store": "LUX-02", "name": "Paul", "pin": "2468"}]

    summary = await _provision(db, data)

    assert summary.get("staff", "created") == 1


async def test_a_pin_already_given_in_the_admin_panel_is_refused(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with db_sessions() as db:
        await _provision(db, demo())
        await add_pin(db, "LUX-01", "Zoe", "2468")
        await db.commit()
    data = demo()
    data["merchants"][0]["staff"].append({"store": "LUX-01", "name": "Paul", "pin": "2468"})
    data["merchants"][0]["name"] = "Renamed"

    async with db_sessions() as db:
        assert await _refused(db, data) == [
            "merchants[0].staff[2].pin: staff member 'Zoe' of store LUX-01 already has this PIN: "
            "two staff members of a store cannot share a PIN"
        ]
    async with db_sessions() as db:
        assert await db.scalar(select(Merchant.name).where(Merchant.code == "cafe-lux")) == (
            "Café Lux"
        )


async def test_a_timezone_postgresql_does_not_know_is_refused(db: AsyncSession) -> None:
    data = demo()
    spec = provisioning.parse(data)
    # A zone Python accepts but PostgreSQL's own zone database lacks (as can happen when the
    # two tz databases are of different ages) would break every ledger write of the merchant.
    odd = spec.merchants[0].model_copy(update={"timezone": "Factory/Nowhere"})
    spec = spec.model_copy(update={"merchants": [odd, spec.merchants[1]]})
    with pytest.raises(ProvisioningError) as refused:
        await provisioning.apply(db, spec)
    assert [str(e) for e in refused.value.errors] == [
        "merchants[0].timezone: time zone 'Factory/Nowhere' unknown to PostgreSQL"
    ]


async def test_pending_days_are_judged_with_the_policy_the_program_keeps(
    db: AsyncSession,
) -> None:
    data = demo()
    data["merchants"][0]["program"].update(expiry_policy="rolling", pending_days=14)
    await _provision(db, data)
    # A later file names the pending days alone: the program stays rolling, 365 days.
    later = demo()
    later["merchants"][0]["program"]["pending_days"] = 365
    later["merchants"][0]["name"] = "Renamed"

    assert await _refused(db, later) == [
        "merchants[0].program.pending_days: must be < points_expiration_days (365) when "
        "expiry_policy is rolling: the points would expire before they could be spent"
    ]
    program = (
        await db.scalars(select(LoyaltyProgram).where(LoyaltyProgram.stamps_target == 10))
    ).one()
    assert (program.expiry_policy, program.pending_days) == (ExpiryPolicy.ROLLING, 14)
    assert await db.scalar(select(Merchant.name).where(Merchant.code == "cafe-lux")) == "Café Lux"


async def test_a_bad_expiry_policy_names_the_field_and_changes_nothing(db: AsyncSession) -> None:
    await _provision(db, demo())
    data = demo()
    data["merchants"][0]["name"] = "Renamed"
    data["merchants"][0]["program"].update(expiry_policy="monthly", pending_days=7)

    assert _errors(data) == [
        "merchants[0].program.expiry_policy: must be one of inactivity, rolling, "
        "calendar_year (got 'monthly')"
    ]
    program = (
        await db.scalars(select(LoyaltyProgram).where(LoyaltyProgram.stamps_target == 10))
    ).one()
    assert (program.expiry_policy, program.pending_days) == (ExpiryPolicy.INACTIVITY, 0)
    assert await db.scalar(select(Merchant.name).where(Merchant.code == "cafe-lux")) == "Café Lux"


# -- webhooks --------------------------------------------------------------------------------


def _with_webhooks(*hooks: dict[str, Any]) -> dict[str, Any]:
    data = demo()
    data["merchants"][0]["webhooks"] = list(hooks)
    return data


def _allow_private(monkeypatch: pytest.MonkeyPatch, allowed: bool) -> None:
    monkeypatch.setenv("LOYALTY_WEBHOOK_ALLOW_PRIVATE", str(allowed).lower())
    get_settings.cache_clear()


HOOK = "https://hooks.example/loyalty"
ALL_TYPES = list(WEBHOOK_EVENT_TYPES)


@pytest.fixture
def public_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """``hooks.example`` and ``other.example`` resolve to a public address, nothing else;
    private addresses are refused."""
    _allow_private(monkeypatch, False)

    def getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        if host in ("hooks.example", "other.example"):
            address = "93.184.215.14"
        elif host.replace(".", "").isdigit():  # an IP literal resolves to itself
            address = host
        else:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.mark.usefixtures("public_dns")
@pytest.mark.parametrize(
    ("hooks", "error"),
    [
        (
            [{"url": HOOK, "events": ["event.processed"]}, {"url": HOOK + "/2", "events": ["x"]}],
            "merchants[0].webhooks[1].events[0]: unknown type 'x' (one of event.processed, "
            "card.balance_changed, points.expiring, reward.available, tier.changed)",
        ),
        (
            [{"url": HOOK, "events": []}],
            "merchants[0].webhooks[0].events: choose at least one type",
        ),
        (
            [{"url": HOOK, "events": "event.processed"}],
            "merchants[0].webhooks[0].events: must be a list",
        ),
        ([{"events": ALL_TYPES}], "merchants[0].webhooks[0].url: required"),
        (
            [{"url": "http://hooks.example/x", "events": ALL_TYPES}],
            "merchants[0].webhooks[0].url: must be an https:// address",
        ),
        (
            [{"url": "https://127.0.0.1:8443/x", "events": ALL_TYPES}],
            "merchants[0].webhooks[0].url: 127.0.0.1, a loopback address: only public "
            "addresses are allowed",
        ),
        (
            [{"url": "https://nowhere.example/x", "events": ALL_TYPES}],
            "merchants[0].webhooks[0].url: host nowhere.example cannot be resolved",
        ),
        (
            [{"url": HOOK, "events": ALL_TYPES, "secret": "short"}],
            "merchants[0].webhooks[0].secret: must have at least 16 characters",
        ),
        (
            [{"url": HOOK, "events": ALL_TYPES, "active": "yes"}],
            "merchants[0].webhooks[0].active: must be true or false",
        ),
        (
            [{"url": HOOK, "events": ALL_TYPES, "retries": 3}],
            "merchants[0].webhooks[0].retries: unknown field",
        ),
        (
            [
                {"url": HOOK, "events": ALL_TYPES},
                {"url": "HTTPS://Hooks.Example:443/loyalty#x", "events": ["tier.changed"]},
            ],
            "merchants[0].webhooks[1].url: duplicate webhook URL 'https://hooks.example/loyalty' "
            "(also merchants[0].webhooks[0].url)",
        ),
    ],
)
def test_webhooks_are_refused_by_path(hooks: list[dict[str, Any]], error: str) -> None:
    assert _errors(_with_webhooks(*hooks)) == [error]


def test_private_webhook_urls_pass_when_the_setting_allows_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _allow_private(monkeypatch, True)
    spec = provisioning.parse(
        _with_webhooks({"url": "http://127.0.0.1:8080/x", "events": ["tier.changed"]})
    )
    assert spec.merchants[0].webhooks[0].url == "http://127.0.0.1:8080/x"


@pytest.mark.usefixtures("public_dns")
async def test_webhooks_are_created_then_matched_by_url_and_updated(db: AsyncSession) -> None:
    first = _with_webhooks(
        {"url": HOOK, "events": ["tier.changed", "card.balance_changed"], "description": "Shop"},
        {"url": "https://other.example/h", "events": ALL_TYPES, "secret": "s" * 24},
    )
    summary = await _provision(db, first)
    assert str(summary).endswith("; webhooks 2 created, 0 updated, 0 unchanged")
    endpoints = (await db.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id))).all()
    hook, other = endpoints
    assert (hook.url, hook.event_types, hook.description, hook.is_active) == (
        HOOK,
        ["card.balance_changed", "tier.changed"],
        "Shop",
        True,
    )
    assert hook.secret.startswith("whsec_")
    assert other.secret == "s" * 24
    generated, stamps = hook.secret, [(e.id, e.updated_at) for e in endpoints]

    again = await _provision(db, first)
    assert str(again).startswith("nothing to change")
    assert str(again).endswith("; webhooks 0 created, 0 updated, 2 unchanged")
    assert [(e.id, e.updated_at) for e in endpoints] == stamps

    # Matched by the URL as normalised; what the file leaves out stays, a secret replaces.
    later = _with_webhooks(
        {"url": "HTTPS://hooks.example:443/loyalty", "events": ["event.processed"]},
        {
            "url": "https://other.example/h",
            "events": ALL_TYPES,
            "secret": "t" * 24,
            "active": False,
        },
    )
    assert str(await _provision(db, later)).endswith("; webhooks 0 created, 2 updated, 0 unchanged")
    await db.refresh(hook)
    await db.refresh(other)
    assert (hook.event_types, hook.description, hook.is_active, hook.secret) == (
        ["event.processed"],
        "Shop",
        True,
        generated,
    )
    assert (other.secret, other.is_active) == ("t" * 24, False)


@pytest.mark.usefixtures("public_dns")
async def test_endpoints_missing_from_the_file_are_left_alone(db: AsyncSession) -> None:
    await _provision(db, _with_webhooks({"url": HOOK, "events": ALL_TYPES}))
    summary = await _provision(
        db, _with_webhooks({"url": "https://other.example/", "events": ["tier.changed"]})
    )
    assert str(summary).endswith("; webhooks 1 created, 0 updated, 0 unchanged")
    rows = (
        await db.execute(
            select(WebhookEndpoint.url, WebhookEndpoint.is_active, WebhookEndpoint.deleted_at)
        )
    ).all()
    assert sorted(rows) == [(HOOK, True, None), ("https://other.example/", True, None)]
    # A file without webhooks says nothing of them.
    assert "webhooks" not in str(await _provision(db, demo()))


@pytest.mark.usefixtures("public_dns")
async def test_a_webhook_refused_while_applying_names_its_field_and_changes_nothing(
    db: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The setting changed between reading the file and applying it.
    _allow_private(monkeypatch, True)
    spec = provisioning.parse(
        _with_webhooks(
            {"url": "https://other.example/", "events": ALL_TYPES},
            {"url": "https://10.0.0.8/x", "events": ALL_TYPES},
        )
    )
    _allow_private(monkeypatch, False)
    with pytest.raises(ProvisioningError) as refused:
        await provisioning.apply(db, spec)
    await db.rollback()
    assert [str(e) for e in refused.value.errors] == [
        "merchants[0].webhooks[1].url: 10.0.0.8, a private address: only public addresses are "
        "allowed"
    ]
    assert await _count(db, Merchant) == 0
    assert await _count(db, WebhookEndpoint) == 0
