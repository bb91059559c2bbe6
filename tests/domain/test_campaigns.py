"""Campaigns and non-earning categories (CONTRACT.md 7.1): the file's schema and paths, creating
and updating by code, the engine's counter left alone, and the admin panel's service
(``domain.campaigns``) with its merchant scoping.

Long (about 630 lines) because every refusal's sentence is checked by its exact path, one
case each, beside the service's stories; split, the cases would lose their shared seeds.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from typer.testing import CliRunner

from core.enums import CampaignStatus
from domain import campaigns, catalog, provisioning
from domain.campaigns import CampaignNotFound
from domain.catalog import CatalogRefusal, FieldError, InvalidFields
from domain.models import Campaign, LoyaltyProgram, Merchant, ProgramType
from domain.provisioning import ProvisioningError, ProvisioningSummary
from tests.domain import factories
from tests.domain.test_cli import cli, run  # noqa: F401 - the runner fixture
from tests.domain.test_provisioning import demo

AT = "merchants[0].program.campaigns"
NOON = datetime(2025, 3, 1, 12, tzinfo=UTC)
RFC3339 = "must be an RFC 3339 time with an offset, e.g. 2026-01-01T00:00:00+01:00"
HOURS = "must be HH:MM-HH:MM with the start before the end"


def _errors(data: Any) -> list[str]:
    with pytest.raises(ProvisioningError) as refused:
        provisioning.parse(data)
    return [str(e) for e in refused.value.errors]


async def _provision(db: AsyncSession, data: Any) -> ProvisioningSummary:
    summary = await provisioning.apply(db, provisioning.parse(data))
    await db.commit()
    return summary


async def _refused(db: AsyncSession, data: Any) -> list[str]:
    spec = provisioning.parse(data)
    with pytest.raises(ProvisioningError) as refused:
        await provisioning.apply(db, spec)
    await db.rollback()
    return [str(e) for e in refused.value.errors]


async def _campaigns(db: AsyncSession) -> dict[str, Campaign]:
    rows = await db.scalars(
        select(Campaign).order_by(Campaign.id).execution_options(populate_existing=True)
    )
    return {c.code: c for c in rows if c.deleted_at is None}


def _cafe_campaign(data: dict[str, Any], k: int) -> dict[str, Any]:
    found: dict[str, Any] = data["merchants"][0]["program"]["campaigns"][k]
    return found


# -- the file's schema -----------------------------------------------------------------------


def test_the_demo_campaigns_come_out_normalised() -> None:
    data = demo()
    pastry = _cafe_campaign(data, 0)
    pastry.update(
        days=["fri", "mon", "wed"],
        hours="20:00-24:00",
        skus=["CRO-1", "CRO-1", " PAC-2 "],
        starts_at="2026-01-01T00:00:00Z",
        ends_at=datetime(2026, 7, 1, tzinfo=timezone(timedelta(hours=2))),
        multiplier="1.5",
    )
    data["merchants"][0]["program"]["non_earning_categories"] = [
        "gift-card",
        "deposit",
        "gift-card",
    ]

    program = provisioning.parse(data).merchants[0].program
    assert program is not None and program.campaigns is not None

    spec = program.campaigns[0]
    assert program.non_earning_categories == ["gift-card", "deposit"]
    assert (spec.days, spec.hours) == (["mon", "wed", "fri"], "20:00-24:00")
    assert spec.skus == ["CRO-1", "PAC-2"]
    assert spec.starts_at == datetime(2026, 1, 1, tzinfo=UTC)
    assert spec.ends_at == datetime(2026, 6, 30, 22, tzinfo=UTC)
    assert spec.multiplier == Decimal("1.5")
    assert spec.status is None  # active when created, kept when updated
    assert program.campaigns[1].budget_points == 10_000


def _set(k: int, **values: Any) -> Any:
    return lambda d: _cafe_campaign(d, k).update(values)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (_set(0, id="Pastry"), f"{AT}[0].id: must be lower-case letters, digits and '-'"),
        (_set(0, id="pastry_pm"), f"{AT}[0].id: must be lower-case letters, digits and '-'"),
        (_set(0, id=""), f"{AT}[0].id: must not be empty"),
        (_set(0, id="x" * 65), f"{AT}[0].id: must have at most 64 characters"),
        (
            _set(1, id="pastry-afternoons"),
            f"{AT}[1].id: duplicate campaign id 'pastry-afternoons' (also {AT}[0].id)",
        ),
        (lambda d: _cafe_campaign(d, 0).pop("name"), f"{AT}[0].name: required"),
        (_set(0, name="x" * 201), f"{AT}[0].name: must have at most 200 characters"),
        (
            _set(0, status="running"),
            f"{AT}[0].status: must be one of draft, active, paused, ended (got 'running')",
        ),
        (_set(0, starts_at="2026-01-01T00:00:00"), f"{AT}[0].starts_at: {RFC3339}"),
        (_set(0, starts_at=datetime(2026, 1, 1)), f"{AT}[0].starts_at: {RFC3339}"),
        (_set(0, ends_at=date(2026, 1, 1)), f"{AT}[0].ends_at: {RFC3339}"),
        (_set(0, ends_at="2026-02-30T00:00:00+01:00"), f"{AT}[0].ends_at: {RFC3339}"),
        (
            _set(0, starts_at="2026-02-01T00:00:00+01:00", ends_at="2026-01-31T23:00:00Z"),
            f"{AT}[0].ends_at: must be after starts_at",
        ),
        (
            _set(0, days=["tue", "tuesday"]),
            f"{AT}[0].days[1]: must be one of mon, tue, wed, thu, fri, sat, sun (got 'tuesday')",
        ),
        (_set(0, days=["tue", "wed", "tue"]), f"{AT}[0].days: duplicate day 'tue'"),
        (_set(0, days="tue"), f"{AT}[0].days: must be a list"),
        (_set(0, hours="17:00-14:00"), f"{AT}[0].hours: {HOURS}"),
        (_set(0, hours="14:00-14:00"), f"{AT}[0].hours: {HOURS}"),
        (_set(0, hours="22:00-24:01"), f"{AT}[0].hours: {HOURS}"),
        (_set(0, hours="9:00-12:00"), f"{AT}[0].hours: {HOURS}"),
        (_set(0, hours="14:60-17:00"), f"{AT}[0].hours: {HOURS}"),
        (_set(0, hours=840), f"{AT}[0].hours: must be a string (quote it)"),
        (_set(0, skus=["CRO-1", ""]), f"{AT}[0].skus[1]: must not be empty"),
        (_set(0, categories=["x" * 65]), f"{AT}[0].categories[0]: must have at most 64 characters"),
        (_set(0, categories=[12]), f"{AT}[0].categories[0]: must be a string (quote it)"),
        (_set(0, multiplier=0), f"{AT}[0].multiplier: must be > 0"),
        (_set(0, multiplier=-2), f"{AT}[0].multiplier: must be > 0"),
        (_set(0, multiplier=101), f"{AT}[0].multiplier: must be <= 100"),
        (_set(0, multiplier=1.2345), f"{AT}[0].multiplier: must have at most 3 decimal places"),
        (_set(0, multiplier="double"), f"{AT}[0].multiplier: must be a number"),
        (
            _set(0, multiplier=1),
            f"{AT}[0].multiplier: the campaign changes nothing: give it a multiplier other "
            "than 1 or bonus points above 0",
        ),
        (_set(1, bonus_points=-1), f"{AT}[1].bonus_points: must be >= 0"),
        (_set(1, bonus_points=2.5), f"{AT}[1].bonus_points: must be an integer"),
        (_set(1, min_basket_cents=-1), f"{AT}[1].min_basket_cents: must be >= 0"),
        (_set(1, budget_points=0), f"{AT}[1].budget_points: must be >= 1"),
        (_set(1, max_awards_per_card=0), f"{AT}[1].max_awards_per_card: must be >= 1"),
        (_set(1, points_awarded=0), f"{AT}[1].points_awarded: unknown field"),
        (
            lambda d: d["merchants"][1]["program"].update(
                campaigns=[{"id": "x", "name": "X", "bonus_points": 5}]
            ),
            "merchants[1].program.campaigns: a stamps program runs no campaigns (they change "
            "points: type points or hybrid)",
        ),
        (
            lambda d: d["merchants"][0]["program"].update(non_earning_categories=["gift-card", ""]),
            "merchants[0].program.non_earning_categories[1]: must not be empty",
        ),
        (
            lambda d: d["merchants"][0]["program"].update(non_earning_categories="gift-card"),
            "merchants[0].program.non_earning_categories: must be a list",
        ),
    ],
)
def test_a_bad_campaign_is_refused_with_its_path(change: Any, error: str) -> None:
    data = demo()
    change(data)
    assert _errors(data) == [error]


def test_campaigns_in_a_stamps_program_may_be_stopped_ones() -> None:
    data = demo()
    data["merchants"][1]["program"]["campaigns"] = [
        {"id": "old", "name": "Old", "bonus_points": 5, "status": "ended"}
    ]
    provisioning.parse(data)


def test_a_form_campaign_speaks_the_files_sentences_by_field() -> None:
    data = {"id": "Bad", "name": "X", "hours": "17:00-14:00", "multiplier": 1}

    assert catalog.check_campaign(data) == [
        FieldError("id", "must be lower-case letters, digits and '-'"),
        FieldError("hours", "must be HH:MM-HH:MM with the start before the end"),
    ]
    assert catalog.check_campaign({"id": "ok", "name": "X"}) == [
        FieldError(
            "multiplier",
            "the campaign changes nothing: give it a multiplier other than 1 or bonus points "
            "above 0",
        )
    ]
    assert catalog.campaign_values({"id": "ok", "name": " X ", "multiplier": "2"}) == {
        "code": "ok",
        "name": "X",
        "starts_at": None,
        "ends_at": None,
        "days": [],
        "hours": None,
        "skus": [],
        "categories": [],
        "multiplier": Decimal(2),
        "bonus_points": 0,
        "min_basket_cents": 0,
        "budget_points": None,
        "max_awards_per_card": None,
    }


def test_the_campaign_columns_are_the_models() -> None:
    values = catalog.campaign_values(
        {"id": "ok", "name": "X", "bonus_points": 1, "status": "paused"}
    )
    assert set(values) <= set(Campaign.__table__.columns.keys()) - {"points_awarded"}


# -- provisioning ----------------------------------------------------------------------------


async def test_the_demo_file_creates_its_campaigns_active(db: AsyncSession) -> None:
    summary = await _provision(db, demo())

    assert summary.get("campaigns", "created") == 2
    cafe = await db.scalar(select(LoyaltyProgram).join(Merchant).where(Merchant.code == "cafe-lux"))
    assert cafe is not None and cafe.non_earning_categories == ["gift-card"]
    rows = await _campaigns(db)
    assert set(rows) == {"pastry-afternoons", "big-basket-bonus"}
    pastry, basket = rows["pastry-afternoons"], rows["big-basket-bonus"]
    assert pastry.program_id == cafe.id
    assert (pastry.status, pastry.days, pastry.hours) == (
        CampaignStatus.ACTIVE,
        ["mon", "tue", "wed", "thu", "fri"],
        "14:00-17:00",
    )
    assert (pastry.categories, pastry.skus, pastry.multiplier) == (["pastry"], [], Decimal(2))
    assert (pastry.bonus_points, pastry.budget_points, pastry.points_awarded) == (0, None, 0)
    assert (basket.multiplier, basket.bonus_points, basket.min_basket_cents) == (
        Decimal(1),
        50,
        3000,
    )
    assert (basket.budget_points, basket.max_awards_per_card) == (10_000, None)


async def test_a_program_without_the_new_fields_keeps_v1_behaviour(db: AsyncSession) -> None:
    data = demo()
    del data["merchants"][0]["program"]["non_earning_categories"]
    del data["merchants"][0]["program"]["campaigns"]

    summary = await _provision(db, data)

    assert summary.get("campaigns", "created") == 0
    assert (await _campaigns(db)) == {}
    programs = (await db.scalars(select(LoyaltyProgram))).all()
    assert [p.non_earning_categories for p in programs] == [[], ["gift-card"]]


async def test_re_provisioning_updates_campaigns_by_id_and_leaves_the_others(
    db: AsyncSession,
) -> None:
    await _provision(db, demo())
    before = await _campaigns(db)
    data = demo()
    program = data["merchants"][0]["program"]
    program["campaigns"] = [
        {**program["campaigns"][0], "multiplier": 3, "hours": "15:00-18:00"},
        {"id": "tuesday", "name": "Double Tuesday", "days": ["tue"], "multiplier": 2},
    ]
    program["non_earning_categories"] = ["gift-card", "deposit"]

    summary = await _provision(db, data)

    assert [summary.get("campaigns", o) for o in ("created", "updated", "unchanged")] == [1, 1, 0]
    assert "campaigns 1 created, 1 updated, 0 unchanged" in str(summary)
    after = await _campaigns(db)
    assert set(after) == {"pastry-afternoons", "big-basket-bonus", "tuesday"}
    assert after["pastry-afternoons"].id == before["pastry-afternoons"].id
    pastry = after["pastry-afternoons"]
    assert (pastry.multiplier, pastry.hours) == (Decimal(3), "15:00-18:00")
    # Not named by the file: left as it was, still running.
    assert after["big-basket-bonus"].status is CampaignStatus.ACTIVE
    assert after["tuesday"].status is CampaignStatus.ACTIVE
    cafe = await db.scalar(select(LoyaltyProgram).where(LoyaltyProgram.type == ProgramType.HYBRID))
    assert cafe is not None and cafe.non_earning_categories == ["gift-card", "deposit"]

    again = await _provision(db, data)
    assert not again.changed
    assert again.get("campaigns", "unchanged") == 2


async def test_a_campaign_is_stated_whole_but_keeps_the_status_the_panel_gave_it(
    db: AsyncSession,
) -> None:
    await _provision(db, demo())
    pastry = (await _campaigns(db))["pastry-afternoons"]
    cafe = await db.get(LoyaltyProgram, pastry.program_id)
    assert cafe is not None
    assert await campaigns.pause_campaign(db, cafe.merchant_id, pastry.id)
    await db.commit()
    data = demo()
    del _cafe_campaign(data, 0)["days"]  # left out: every day again

    await _provision(db, data)

    pastry = (await _campaigns(db))["pastry-afternoons"]
    assert (pastry.status, pastry.days) == (CampaignStatus.PAUSED, [])
    _cafe_campaign(data, 0)["status"] = "active"  # the file may name one
    await _provision(db, data)
    assert (await _campaigns(db))["pastry-afternoons"].status is CampaignStatus.ACTIVE


async def test_points_awarded_is_the_engines_and_a_budget_under_it_is_refused(
    db: AsyncSession,
) -> None:
    await _provision(db, demo())
    # What the engine would have done under the row's lock.
    await db.execute(
        update(Campaign).where(Campaign.code == "big-basket-bonus").values(points_awarded=4_200)
    )
    await db.commit()
    data = demo()
    _cafe_campaign(data, 1)["budget_points"] = 20_000
    await _provision(db, data)
    basket = (await _campaigns(db))["big-basket-bonus"]
    assert (basket.budget_points, basket.points_awarded) == (20_000, 4_200)

    data["merchants"][0]["name"] = "Renamed"
    _cafe_campaign(data, 1)["budget_points"] = 4_000

    assert await _refused(db, data) == [
        f"{AT}[1].budget_points: cannot be lower than the 4200 points the campaign has "
        "already awarded"
    ]
    assert await db.scalar(select(Merchant.name).where(Merchant.code == "cafe-lux")) == "Café Lux"
    assert (await _campaigns(db))["big-basket-bonus"].budget_points == 20_000
    _cafe_campaign(data, 1)["budget_points"] = 4_200  # exactly spent is allowed
    await _provision(db, data)


async def test_an_ended_campaign_is_not_revived_by_a_file(db: AsyncSession) -> None:
    await _provision(db, demo())
    data = demo()
    _cafe_campaign(data, 0)["status"] = "ended"
    await _provision(db, data)
    _cafe_campaign(data, 0)["status"] = "active"
    _cafe_campaign(data, 1)["bonus_points"] = 80

    assert await _refused(db, data) == [
        f"{AT}[0].status: the campaign has ended: it cannot be active again (create a new campaign)"
    ]
    assert (await _campaigns(db))["big-basket-bonus"].bonus_points == 50


async def test_the_cli_refuses_a_bad_campaign_with_exit_2_and_changes_nothing(
    cli: CliRunner,  # noqa: F811 - the fixture
    db_sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> None:
    async with db_sessions() as db:
        await _provision(db, demo())
        await db.execute(update(Campaign).values(points_awarded=100))
        await db.commit()
    data = demo()
    data["merchants"][0]["program"]["stamps_target"] = 12
    _cafe_campaign(data, 1)["budget_points"] = 50
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data, allow_unicode=True))

    result = await run(cli, "provision", str(bad))

    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"{AT}[1].budget_points: cannot be lower than the 100 points the campaign has "
        "already awarded"
    ]
    async with db_sessions() as db:
        assert (
            await db.scalar(
                select(LoyaltyProgram.stamps_target).where(
                    LoyaltyProgram.type == ProgramType.HYBRID
                )
            )
            == 10
        )


# -- the admin panel's service ---------------------------------------------------------------


async def _merchant_with_program(
    db: AsyncSession, code: str, program_type: ProgramType = ProgramType.HYBRID
) -> tuple[Merchant, LoyaltyProgram]:
    merchant = await factories.merchant(db, code)
    program = await factories.program(db, merchant, type=program_type, points_per_euro=10)
    return merchant, program


def _form(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "double-tuesday",
        "name": "Double points on Tuesday afternoons",
        "days": ["tue"],
        "hours": "14:00-17:00",
        "categories": ["pastry"],
        "multiplier": Decimal(2),
        "budget_points": 1_000,
    }
    data.update(changes)
    return data


async def test_a_campaign_made_in_the_panel_is_a_draft_until_activated(db: AsyncSession) -> None:
    merchant, program = await _merchant_with_program(db, "m1")

    made = await campaigns.create_campaign(db, merchant.id, program.id, _form())

    assert (made.code, made.status, made.days, made.budget_points) == (
        "double-tuesday",
        CampaignStatus.DRAFT,
        ["tue"],
        1_000,
    )
    assert campaigns.campaign_data(made) == {**_form(), "status": "draft"} | {
        "starts_at": None,
        "ends_at": None,
        "skus": [],
        "bonus_points": 0,
        "min_basket_cents": 0,
        "max_awards_per_card": None,
    }
    await db.commit()
    stored = await campaigns.get_campaign(db, merchant.id, made.id)
    assert stored is not None
    # What the form shows is what it saves back: nothing to change.
    assert not await campaigns.update_campaign(
        db, merchant.id, made.id, campaigns.campaign_data(stored)
    )
    assert await campaigns.resume_campaign(db, merchant.id, made.id)
    assert made.status is CampaignStatus.ACTIVE
    active = await campaigns.create_campaign(
        db, merchant.id, program.id, _form(id="b", status="active")
    )
    assert active.status is CampaignStatus.ACTIVE


async def test_the_panel_is_refused_by_field(db: AsyncSession) -> None:
    merchant, program = await _merchant_with_program(db, "m1")
    made = await campaigns.create_campaign(db, merchant.id, program.id, _form())
    await campaigns.create_campaign(db, merchant.id, program.id, _form(id="other"))

    with pytest.raises(InvalidFields) as refused:
        await campaigns.create_campaign(db, merchant.id, program.id, _form(hours="9-17"))
    assert refused.value.errors == (
        FieldError("hours", "must be HH:MM-HH:MM with the start before the end"),
    )
    with pytest.raises(InvalidFields) as refused:
        await campaigns.create_campaign(
            db, merchant.id, program.id, _form(status="ended", multiplier=1)
        )
    assert [e.path for e in refused.value.errors] == ["multiplier"]
    with pytest.raises(InvalidFields) as refused:
        await campaigns.create_campaign(db, merchant.id, program.id, _form())
    assert refused.value.errors == (
        FieldError("id", "the program already has a campaign 'double-tuesday'"),
    )
    with pytest.raises(InvalidFields) as refused:
        await campaigns.update_campaign(db, merchant.id, made.id, _form(id="other"))
    assert [e.path for e in refused.value.errors] == ["id"]


async def test_the_panel_updates_a_campaign_whole_and_never_its_counter(db: AsyncSession) -> None:
    merchant, program = await _merchant_with_program(db, "m1")
    made = await campaigns.create_campaign(db, merchant.id, program.id, _form(status="active"))
    await db.execute(update(Campaign).where(Campaign.id == made.id).values(points_awarded=700))

    changed = _form(id="double-tue", days=["tue", "thu"], budget_points=2_000)
    del changed["hours"]
    assert await campaigns.update_campaign(db, merchant.id, made.id, changed)
    assert not await campaigns.update_campaign(db, merchant.id, made.id, changed)

    assert (made.code, made.days, made.hours, made.budget_points, made.points_awarded) == (
        "double-tue",
        ["tue", "thu"],
        None,
        2_000,
        700,
    )
    assert made.status is CampaignStatus.ACTIVE  # no status in the form: kept
    with pytest.raises(InvalidFields) as refused:
        await campaigns.update_campaign(db, merchant.id, made.id, {**changed, "budget_points": 699})
    assert refused.value.errors == (
        FieldError(
            "budget_points",
            "cannot be lower than the 700 points the campaign has already awarded",
        ),
    )
    assert await campaigns.update_campaign(
        db, merchant.id, made.id, {**changed, "budget_points": None}
    )


async def test_pause_resume_and_end(db: AsyncSession) -> None:
    merchant, program = await _merchant_with_program(db, "m1")
    made = await campaigns.create_campaign(db, merchant.id, program.id, _form())

    with pytest.raises(CatalogRefusal, match="a draft has not started: it cannot be paused"):
        await campaigns.pause_campaign(db, merchant.id, made.id)
    assert await campaigns.resume_campaign(db, merchant.id, made.id)
    assert not await campaigns.resume_campaign(db, merchant.id, made.id)
    assert await campaigns.pause_campaign(db, merchant.id, made.id)
    assert made.status is CampaignStatus.PAUSED
    with pytest.raises(CatalogRefusal, match="it cannot go back to draft"):
        await campaigns.set_campaign_status(db, merchant.id, made.id, CampaignStatus.DRAFT)
    assert await campaigns.resume_campaign(db, merchant.id, made.id)
    assert await campaigns.end_campaign(db, merchant.id, made.id)
    with pytest.raises(CatalogRefusal, match="the campaign has ended: it cannot be active again"):
        await campaigns.resume_campaign(db, merchant.id, made.id)
    with pytest.raises(InvalidFields, match="status: the campaign has ended"):
        await campaigns.update_campaign(db, merchant.id, made.id, _form(status="paused"))
    await db.commit()
    assert (await _campaigns(db))["double-tuesday"].status is CampaignStatus.ENDED


async def test_a_stamps_program_runs_no_campaign(db: AsyncSession) -> None:
    merchant, program = await _merchant_with_program(db, "m1", ProgramType.STAMPS)
    draft = await campaigns.create_campaign(db, merchant.id, program.id, _form())

    with pytest.raises(CatalogRefusal, match="a stamps program runs no campaigns"):
        await campaigns.resume_campaign(db, merchant.id, draft.id)
    with pytest.raises(InvalidFields) as refused:
        await campaigns.create_campaign(db, merchant.id, program.id, _form(id="b", status="active"))
    assert [e.path for e in refused.value.errors] == ["status"]


async def test_delete_and_restore(db: AsyncSession) -> None:
    merchant, program = await _merchant_with_program(db, "m1")
    made = await campaigns.create_campaign(db, merchant.id, program.id, _form(status="active"))
    other = await campaigns.create_campaign(db, merchant.id, program.id, _form(id="other"))

    await campaigns.delete_campaign(db, merchant.id, made.id, by="admin:anna", at=NOON)

    assert [c.code for c in await campaigns.list_campaigns(db, merchant.id, program.id)] == [
        "other"
    ]
    listed = await campaigns.list_campaigns(db, merchant.id, program.id, include_deleted=True)
    assert [(c.code, c.deleted_by) for c in listed] == [
        ("double-tuesday", "admin:anna"),
        ("other", None),
    ]
    found = await campaigns.get_campaign(db, merchant.id, made.id)
    assert found is not None and found.deleted_at == NOON
    for change in (
        campaigns.update_campaign(db, merchant.id, made.id, _form()),
        campaigns.pause_campaign(db, merchant.id, made.id),
        campaigns.delete_campaign(db, merchant.id, made.id, by="admin:anna"),
    ):
        with pytest.raises(CampaignNotFound, match="does not exist or is deleted"):
            await change
    with pytest.raises(CatalogRefusal, match="this campaign is not deleted"):
        await campaigns.restore_campaign(db, merchant.id, other.id)

    await campaigns.restore_campaign(db, merchant.id, made.id)

    assert (made.deleted_at, made.deleted_by, made.status) == (None, None, CampaignStatus.ACTIVE)
    assert len(await campaigns.list_campaigns(db, merchant.id, program.id)) == 2


async def test_a_deleted_campaigns_id_may_be_reused_and_then_it_stays_deleted(
    db: AsyncSession,
) -> None:
    merchant, program = await _merchant_with_program(db, "m1")
    old = await campaigns.create_campaign(db, merchant.id, program.id, _form())
    await campaigns.delete_campaign(db, merchant.id, old.id, by="admin:anna")
    await campaigns.create_campaign(db, merchant.id, program.id, _form(name="Again"))

    with pytest.raises(CatalogRefusal, match="the program has another live campaign"):
        await campaigns.restore_campaign(db, merchant.id, old.id)
    assert old.deleted_at is not None


async def test_a_campaign_of_a_deleted_program_comes_back_with_it(db: AsyncSession) -> None:
    merchant, program = await _merchant_with_program(db, "m1")
    made = await campaigns.create_campaign(db, merchant.id, program.id, _form())
    await campaigns.delete_campaign(db, merchant.id, made.id, by="admin:anna")
    program.deleted_at = NOON
    await db.flush()

    with pytest.raises(CatalogRefusal, match="restore the program first"):
        await campaigns.restore_campaign(db, merchant.id, made.id)
    with pytest.raises(CampaignNotFound, match="this program does not exist or is deleted"):
        await campaigns.create_campaign(db, merchant.id, program.id, _form(id="new"))
    assert (
        len(await campaigns.list_campaigns(db, merchant.id, program.id, include_deleted=True)) == 1
    )


async def test_another_merchants_campaigns_are_not_found(db: AsyncSession) -> None:
    mine, my_program = await _merchant_with_program(db, "m1")
    theirs, their_program = await _merchant_with_program(db, "m2")
    made = await campaigns.create_campaign(db, theirs.id, their_program.id, _form(status="active"))
    deleted = await campaigns.create_campaign(db, theirs.id, their_program.id, _form(id="x"))
    await campaigns.delete_campaign(db, theirs.id, deleted.id, by="admin:zoe")

    assert await campaigns.list_campaigns(db, mine.id, their_program.id, include_deleted=True) == []
    assert await campaigns.get_campaign(db, mine.id, made.id) is None
    for attempt in (
        campaigns.create_campaign(db, mine.id, their_program.id, _form(id="mine")),
        campaigns.update_campaign(db, mine.id, made.id, _form(name="Mine now")),
        campaigns.pause_campaign(db, mine.id, made.id),
        campaigns.end_campaign(db, mine.id, made.id),
        campaigns.delete_campaign(db, mine.id, made.id, by="admin:anna"),
        campaigns.restore_campaign(db, mine.id, deleted.id),
    ):
        with pytest.raises(CampaignNotFound):
            await attempt
    await db.refresh(made)
    assert (made.name, made.status, made.deleted_at) == (
        "Double points on Tuesday afternoons",
        CampaignStatus.ACTIVE,
        None,
    )
    # The same code in another merchant's program is another campaign.
    await campaigns.create_campaign(db, mine.id, my_program.id, _form())
