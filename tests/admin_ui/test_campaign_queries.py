"""The panel's campaign services: scoped to the admin's merchant whatever id they are given,
refusals by field, and the trial on past traffic, which writes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from admin_ui import domain_api
from admin_ui.problems import DomainRefusal, FieldsRefused
from admin_ui.queries import campaigns
from admin_ui.queries.admins import Principal
from admin_ui.queries.common import PageRequest
from core.enums import CampaignStatus
from domain.models import Base, Campaign, UserRole
from tests.admin_ui.helpers import enrol, purchase

ROOT = Principal(1, "root", UserRole.PLATFORM_ADMIN, None)
EVERY = PageRequest("", "all", 0, 50)
LIVE = PageRequest("", "live", 0, 50)
PASTRY = {"sku": "croissant", "category": "pastry", "quantity": 2, "amount_cents": 500}
COFFEE = {"sku": "espresso", "category": "drink", "quantity": 1, "amount_cents": 300}


def _admins(people: dict[str, Any]) -> tuple[Principal, Principal]:
    return (
        Principal(2, "alice", UserRole.MERCHANT_ADMIN, people["a"]),
        Principal(3, "bob", UserRole.MERCHANT_ADMIN, people["b"]),
    )


def _form(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "double-pastry",
        "name": "Double points on pastries",
        "categories": ["pastry"],
        "multiplier": 2,
    }
    data.update(changes)
    return data


async def _created(db: AsyncSession, me: Principal, program_id: int, **changes: Any) -> int:
    scope = await campaigns.program_scope(db, me, program_id)
    assert scope is not None
    campaign_id = await campaigns.create_campaign(db, me, scope, _form(**changes))
    await db.commit()
    return campaign_id


async def test_a_merchant_admin_reaches_only_their_merchants_campaigns(
    db: AsyncSession, people: dict[str, Any]
) -> None:
    alice, bob = _admins(people)
    mine = await _created(db, alice, people["a_program"])
    theirs = await _created(db, bob, people["b_program"])

    assert await campaigns.program_scope(db, alice, people["b_program"]) is None
    assert await campaigns.find_campaign(db, alice, theirs) is None
    found = await campaigns.find_campaign(db, alice, mine)
    assert found is not None and found[0].status == "draft"
    for write in (
        campaigns.update_campaign(db, alice, theirs, _form(name="Mine now")),
        campaigns.move_campaign(db, alice, theirs, "activate"),
        campaigns.delete_campaign(db, alice, theirs),
        campaigns.restore_campaign(db, alice, theirs),
    ):
        with pytest.raises(DomainRefusal, match="does not exist"):
            await write
    await db.rollback()
    # A scope made for merchant b lists nothing for Alice: the service takes her merchant.
    b_scope = await campaigns.program_scope(db, ROOT, people["b_program"])
    assert b_scope is not None
    assert (await campaigns.list_campaign_rows(db, alice, b_scope, EVERY)).items == []
    # The platform admin reaches both, each through its own merchant.
    assert [r.id for r in (await campaigns.list_campaign_rows(db, ROOT, b_scope, EVERY)).items] == [
        theirs
    ]
    assert await campaigns.move_campaign(db, ROOT, theirs, "activate")
    await db.commit()
    b_campaign = await db.get(Campaign, theirs)
    assert b_campaign is not None and b_campaign.status is CampaignStatus.ACTIVE
    a_campaign = await db.get(Campaign, mine)
    assert a_campaign is not None and a_campaign.name == "Double points on pastries"


async def test_refusals_name_their_fields(db: AsyncSession, people: dict[str, Any]) -> None:
    alice, _ = _admins(people)
    first = await _created(db, alice, people["a_program"], budget_points=1000)
    scope = await campaigns.program_scope(db, alice, people["a_program"])
    assert scope is not None
    with pytest.raises(FieldsRefused) as taken:
        await campaigns.create_campaign(db, alice, scope, _form())
    assert [(p.path, p.message) for p in taken.value.problems] == [
        ("id", "the program already has a campaign 'double-pastry'")
    ]
    await db.rollback()
    await db.execute(update(Campaign).where(Campaign.id == first).values(points_awarded=700))
    await db.commit()
    with pytest.raises(FieldsRefused) as under:
        await campaigns.update_campaign(db, alice, first, _form(budget_points=500))
    assert [p.path for p in under.value.problems] == ["budget_points"]
    assert "700 points" in under.value.problems[0].message


async def test_status_moves_delete_and_restore(db: AsyncSession, people: dict[str, Any]) -> None:
    alice, _ = _admins(people)
    campaign_id = await _created(db, alice, people["a_program"])
    with pytest.raises(DomainRefusal, match="a draft has not started: it cannot be paused"):
        await campaigns.move_campaign(db, alice, campaign_id, "pause")
    await db.rollback()
    for move, status in (("activate", "active"), ("pause", "paused"), ("resume", "active")):
        await campaigns.move_campaign(db, alice, campaign_id, move)  # type: ignore[arg-type]
        await db.commit()
        found = await campaigns.find_campaign(db, alice, campaign_id)
        assert found is not None and found[0].status == status
    assert found is not None
    scope = found[1]
    await campaigns.delete_campaign(db, alice, campaign_id)
    await db.commit()
    assert (await campaigns.list_campaign_rows(db, alice, scope, LIVE)).items == []
    (deleted,) = (await campaigns.list_campaign_rows(db, alice, scope, EVERY)).items
    assert deleted.deleted_by == "admin:alice"
    await campaigns.restore_campaign(db, alice, campaign_id)
    await db.commit()
    (back,) = (await campaigns.list_campaign_rows(db, alice, scope, LIVE)).items
    assert (back.id, back.status, back.deleted_at) == (campaign_id, "active", None)
    await campaigns.move_campaign(db, alice, campaign_id, "end")
    await db.commit()
    with pytest.raises(DomainRefusal, match="has ended"):
        await campaigns.move_campaign(db, alice, campaign_id, "resume")


async def test_the_list_is_searched_and_paged(db: AsyncSession, people: dict[str, Any]) -> None:
    alice, _ = _admins(people)
    for i in range(5):
        await _created(db, alice, people["a_program"], id=f"c-{i}", name=f"Campaign {i}")
    scope = await campaigns.program_scope(db, alice, people["a_program"])
    assert scope is not None
    rows = await campaigns.list_campaign_rows(db, alice, scope, PageRequest("", "live", 2, 2))
    assert ([r.code for r in rows.items], rows.total) == (["c-2", "c-3"], 5)
    found = await campaigns.list_campaign_rows(db, alice, scope, PageRequest("IGN 4", "live", 0, 9))
    assert [r.code for r in found.items] == ["c-4"]


async def _table_counts(db: AsyncSession) -> dict[str, int]:
    counts = {}
    for table in Base.metadata.sorted_tables:
        # Table names come from the model, not from input.
        query = f'SELECT count(*) FROM "{table.name}"'  # noqa: S608
        counts[table.name] = int(await db.scalar(text(query)) or 0)
    return counts


async def test_a_trial_of_unsaved_values_reports_and_writes_nothing(
    db: AsyncSession, people: dict[str, Any]
) -> None:
    store = people["a_store_codes"][0]
    card = await enrol(db, store, "trial@example.com")
    # Three days ago at 15:00 UTC, and the day before: 8 EUR each, 5 of them pastries.
    day = datetime.now(UTC).replace(hour=15, minute=0, second=0, microsecond=0)
    for at in (day - timedelta(days=3), day - timedelta(days=4)):
        await purchase(db, store, card, 800, at, [PASTRY, COFFEE])
    saved = await _created(db, _admins(people)[0], people["a_program"], multiplier=3)
    before = await _table_counts(db)
    campaign_row = await db.get(Campaign, saved)
    assert campaign_row is not None
    updated_at = campaign_row.updated_at

    report = await domain_api.try_campaign(
        db,
        people["a_code"],
        _form(budget_points=60),  # the form's values, not the saved multiplier of 3
        day - timedelta(days=30),
        day,
    )

    # 10 points a euro: 80 points a purchase, 50 more for the pastries, 60 in all at most.
    assert (report.purchases, report.points_without) == (2, 160)
    (figures,) = report.campaigns
    assert (figures.purchases_matched, len(figures.cards), figures.points_awarded) == (2, 1, 60)
    assert report.points_with == 220
    assert figures.budget_ran_out_at == day - timedelta(days=3)
    assert figures.cost_cents == 60  # a point is worth a cent
    assert await _table_counts(db) == before
    db.expire_all()
    again = await db.get(Campaign, saved)
    assert again is not None and (again.multiplier, again.updated_at) == (Decimal(3), updated_at)
    assert await db.scalar(select(func.count()).select_from(Campaign)) == 1


async def test_a_trial_refuses_invalid_values_by_field(
    db: AsyncSession, people: dict[str, Any]
) -> None:
    now = datetime.now(UTC)
    with pytest.raises(FieldsRefused) as refused:
        await domain_api.try_campaign(
            db, people["a_code"], _form(multiplier=1), now - timedelta(days=1), now
        )
    assert [p.path for p in refused.value.problems] == ["multiplier"]
