"""A program's campaigns as the panel lists and edits them (CONTRACT.md 7.1), through the
merchant-scoped campaign service (``domain.campaigns``).

That service touches only the campaigns of the merchant it is given. A merchant admin gives
their own merchant, whatever the URL names; a platform admin gives the merchant of the
program or campaign the page shows. So another merchant's program or campaign is "not found"
for a merchant admin, exactly as if it did not exist. Writes flush; the caller commits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from admin_ui.problems import DomainRefusal
from admin_ui.queries.admins import Principal
from admin_ui.queries.common import ALL, PageRequest, Rows, catalog_refusals
from domain import campaigns
from domain.models import Campaign, LoyaltyProgram, Merchant

StatusMove = Literal["activate", "pause", "resume", "end"]


@dataclass(frozen=True)
class ProgramScope:
    """The program whose campaigns a page shows, with what its pages need of it: the
    merchant (whose clock the campaigns run on), the currency and the value of a point."""

    program_id: int
    program_name: str
    program_type: str
    merchant_id: int
    merchant_code: str
    merchant_name: str
    timezone: str
    currency: str
    point_value_cents: Decimal
    deleted_at: datetime | None

    @property
    def earns_points(self) -> bool:
        """Whether the program gives points at all (campaigns change points only)."""
        return self.program_type != "stamps"


@dataclass(frozen=True)
class CampaignRow:
    """A campaign as the list and its page show it; ``form`` is what its form holds
    (``domain.campaigns.campaign_data``)."""

    id: int
    program_id: int
    code: str
    name: str
    status: str
    points_awarded: int
    budget_points: int | None
    max_awards_per_card: int | None
    multiplier: Decimal
    bonus_points: int
    skus: tuple[str, ...]
    categories: tuple[str, ...]
    form: Mapping[str, Any]
    deleted_at: datetime | None
    deleted_by: str | None


def _row(c: Campaign) -> CampaignRow:
    return CampaignRow(
        id=c.id,
        program_id=c.program_id,
        code=c.code,
        name=c.name,
        status=c.status.value,
        points_awarded=c.points_awarded,
        budget_points=c.budget_points,
        max_awards_per_card=c.max_awards_per_card,
        multiplier=c.multiplier,
        bonus_points=c.bonus_points,
        skus=tuple(c.skus),
        categories=tuple(c.categories),
        form=campaigns.campaign_data(c),
        deleted_at=c.deleted_at,
        deleted_by=c.deleted_by,
    )


async def program_scope(
    session: AsyncSession, me: Principal, program_id: int
) -> ProgramScope | None:
    """The program, deleted or not, when this admin may see its merchant; else ``None``."""
    row = (
        await session.execute(
            select(LoyaltyProgram, Merchant)
            .join(Merchant, Merchant.id == LoyaltyProgram.merchant_id)
            .where(LoyaltyProgram.id == program_id)
            .execution_options(**ALL)
        )
    ).first()
    if row is None or not me.sees(row[0].merchant_id):
        return None
    program: LoyaltyProgram = row[0]
    merchant: Merchant = row[1]
    return ProgramScope(
        program_id=program.id,
        program_name=program.name,
        program_type=program.type.value,
        merchant_id=merchant.id,
        merchant_code=merchant.code,
        merchant_name=merchant.name,
        timezone=merchant.timezone,
        currency=program.currency,
        point_value_cents=program.point_value_cents,
        deleted_at=program.deleted_at or merchant.deleted_at,
    )


def _merchant(me: Principal, page_merchant: int) -> int:
    # A merchant admin's own merchant, never one a URL led to: the service then answers
    # "not found" for anything else.
    if me.is_platform:
        return page_merchant
    if me.merchant_id is None:
        raise DomainRefusal("this admin belongs to no merchant")
    return me.merchant_id


async def list_campaign_rows(
    session: AsyncSession, me: Principal, scope: ProgramScope, request: PageRequest
) -> Rows[CampaignRow]:
    """The program's campaigns matching the search (name or id), as the deleted switches
    ask. A program has a handful of campaigns: they are read whole and paged here."""
    found = await campaigns.list_campaigns(
        session,
        _merchant(me, scope.merchant_id),
        scope.program_id,
        include_deleted=request.mode != "live",
    )
    rows = [_row(c) for c in found]
    if request.mode == "deleted":
        rows = [r for r in rows if r.deleted_at is not None]
    needle = request.search.casefold()
    if needle:
        rows = [r for r in rows if needle in r.name.casefold() or needle in r.code.casefold()]
    # Live campaigns first, then by id: a deleted one keeps its place among its kind.
    rows.sort(key=lambda r: (r.deleted_at is not None, r.code, r.id))
    return Rows(rows[request.offset : request.offset + request.limit], len(rows))


async def _campaign_merchant(session: AsyncSession, me: Principal, campaign_id: int) -> int | None:
    if not me.is_platform:
        return _merchant(me, 0)
    return await session.scalar(
        select(LoyaltyProgram.merchant_id)
        .join(Campaign, Campaign.program_id == LoyaltyProgram.id)
        .where(Campaign.id == campaign_id)
        .execution_options(**ALL)
    )


async def find_campaign(
    session: AsyncSession, me: Principal, campaign_id: int
) -> tuple[CampaignRow, ProgramScope] | None:
    """A campaign (deleted or not: its page offers a restore) and its program, when it is of
    a merchant this admin sees; else ``None``."""
    merchant_id = await _campaign_merchant(session, me, campaign_id)
    if merchant_id is None:
        return None
    campaign = await campaigns.get_campaign(session, merchant_id, campaign_id)
    if campaign is None:
        return None
    scope = await program_scope(session, me, campaign.program_id)
    if scope is None:
        return None
    return _row(campaign), scope


async def _writable(session: AsyncSession, me: Principal, campaign_id: int) -> int:
    merchant_id = await _campaign_merchant(session, me, campaign_id)
    if merchant_id is None:
        raise DomainRefusal("this campaign does not exist or is deleted")
    return merchant_id


async def create_campaign(
    session: AsyncSession, me: Principal, scope: ProgramScope, data: Mapping[str, Any]
) -> int:
    """A new campaign of the program from the form's ``data``, a draft; its id.
    ``FieldsRefused`` names each bad field (an id the program already uses included)."""
    with catalog_refusals():
        campaign = await campaigns.create_campaign(
            session, _merchant(me, scope.merchant_id), scope.program_id, data
        )
    return campaign.id


async def update_campaign(
    session: AsyncSession, me: Principal, campaign_id: int, data: Mapping[str, Any]
) -> bool:
    """Save a campaign's form (its status is kept); whether anything changed.
    ``FieldsRefused`` names each bad field (a budget under what it has awarded included)."""
    merchant_id = await _writable(session, me, campaign_id)
    with catalog_refusals():
        return await campaigns.update_campaign(session, merchant_id, campaign_id, data)


_MOVES = {
    "activate": campaigns.resume_campaign,
    "resume": campaigns.resume_campaign,
    "pause": campaigns.pause_campaign,
    "end": campaigns.end_campaign,
}


async def move_campaign(
    session: AsyncSession, me: Principal, campaign_id: int, move: StatusMove
) -> bool:
    """Activate (a draft), pause, resume or end a campaign; ``DomainRefusal`` says why not.
    Whether its status changed."""
    merchant_id = await _writable(session, me, campaign_id)
    with catalog_refusals():
        return await _MOVES[move](session, merchant_id, campaign_id)


async def delete_campaign(session: AsyncSession, me: Principal, campaign_id: int) -> None:
    """Soft-delete a campaign: it stops applying, and can be restored."""
    merchant_id = await _writable(session, me, campaign_id)
    with catalog_refusals():
        await campaigns.delete_campaign(session, merchant_id, campaign_id, by=me.actor)


async def restore_campaign(session: AsyncSession, me: Principal, campaign_id: int) -> None:
    """Bring a deleted campaign back as it was; ``DomainRefusal`` says why not (its id taken
    again meanwhile, its program deleted)."""
    merchant_id = await _writable(session, me, campaign_id)
    with catalog_refusals():
        await campaigns.restore_campaign(session, merchant_id, campaign_id)
