"""A merchant's campaigns (CONTRACT.md 7.1) as the admin panel runs them: a program's list,
one campaign's form data, and creating, changing, pausing, resuming, ending, deleting and
restoring one.

Every function is scoped to one merchant (``merchant_id``): a program or campaign of another
merchant is not found (``CampaignNotFound``), exactly as if it did not exist. The panel passes
the signed-in admin's merchant, or, for a platform admin, the merchant of the page. Values go
through the catalog's one validation and writes (``domain.catalog``), so a form refuses what
``loyalty provision`` refuses with the same sentences, by field (``InvalidFields``); a refusal
with no field to stand under is a ``CatalogRefusal``. Functions flush; the caller commits.

Campaigns are soft-deleted (``domain.soft_delete``), but ``Campaign`` is not among the models
the session hides by itself (``SOFT_DELETABLE``), so every query here says which rows it
wants; the engine's own SQL skips deleted campaigns likewise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.enums import CampaignStatus
from domain import catalog, soft_delete
from domain.catalog import CatalogRefusal
from domain.models import Campaign, LoyaltyProgram

__all__ = [
    "CampaignNotFound",
    "campaign_data",
    "create_campaign",
    "delete_campaign",
    "end_campaign",
    "get_campaign",
    "list_campaigns",
    "pause_campaign",
    "restore_campaign",
    "resume_campaign",
    "set_campaign_status",
    "update_campaign",
]

# Deleted rows are looked at on purpose; populate_existing, because soft_delete's UPDATE
# does not refresh the rows a session already holds.
_EVERY_ROW = {"include_deleted": True, "populate_existing": True}


class CampaignNotFound(CatalogRefusal):
    """The merchant has no such program or campaign (or it is deleted)."""


async def _find(
    session: AsyncSession, merchant_id: int, campaign_id: int
) -> tuple[Campaign, LoyaltyProgram] | None:
    row = (
        await session.execute(
            select(Campaign, LoyaltyProgram)
            .join(LoyaltyProgram, LoyaltyProgram.id == Campaign.program_id)
            .where(Campaign.id == campaign_id, LoyaltyProgram.merchant_id == merchant_id)
            .execution_options(**_EVERY_ROW)
        )
    ).first()
    return None if row is None else (row[0], row[1])


async def _live(
    session: AsyncSession, merchant_id: int, campaign_id: int
) -> tuple[Campaign, LoyaltyProgram]:
    found = await _find(session, merchant_id, campaign_id)
    if found is None or found[0].deleted_at is not None or found[1].deleted_at is not None:
        raise CampaignNotFound("this campaign does not exist or is deleted")
    return found


async def list_campaigns(
    session: AsyncSession, merchant_id: int, program_id: int, *, include_deleted: bool = False
) -> Sequence[Campaign]:
    """The program's campaigns by id (``code``), the deleted ones too when asked; none when
    the program is another merchant's. A deleted program's campaigns are listed all the same,
    for its page."""
    query = (
        select(Campaign)
        .join(LoyaltyProgram, LoyaltyProgram.id == Campaign.program_id)
        .where(Campaign.program_id == program_id, LoyaltyProgram.merchant_id == merchant_id)
        .order_by(Campaign.code, Campaign.id)
        .execution_options(**_EVERY_ROW)
    )
    if not include_deleted:
        query = query.where(Campaign.deleted_at.is_(None))
    return (await session.scalars(query)).all()


async def get_campaign(
    session: AsyncSession, merchant_id: int, campaign_id: int
) -> Campaign | None:
    """A campaign of the merchant, deleted or not (its page offers a restore), else ``None``."""
    found = await _find(session, merchant_id, campaign_id)
    return None if found is None else found[0]


def campaign_data(campaign: Campaign) -> dict[str, Any]:
    """A campaign as its form holds it: the fields of the provisioning file (``id`` is the
    code), which ``create_campaign`` and ``update_campaign`` take back unchanged.
    ``points_awarded`` is not among them: the engine's counter, read from the row."""
    return {
        "id": campaign.code,
        "name": campaign.name,
        "status": campaign.status.value,
        "starts_at": campaign.starts_at,
        "ends_at": campaign.ends_at,
        "days": list(campaign.days),
        "hours": campaign.hours,
        "skus": list(campaign.skus),
        "categories": list(campaign.categories),
        "multiplier": campaign.multiplier,
        "bonus_points": campaign.bonus_points,
        "min_basket_cents": campaign.min_basket_cents,
        "budget_points": campaign.budget_points,
        "max_awards_per_card": campaign.max_awards_per_card,
    }


async def create_campaign(
    session: AsyncSession, merchant_id: int, program_id: int, data: Mapping[str, Any]
) -> Campaign:
    """A new campaign of the merchant's live program from a form's ``data``, a draft unless it
    gives a status. ``InvalidFields`` names each bad field (the id already used in the
    program included); ``CampaignNotFound`` when the program is not the merchant's live one."""
    program = await session.scalar(
        select(LoyaltyProgram).where(
            LoyaltyProgram.id == program_id,
            LoyaltyProgram.merchant_id == merchant_id,
            LoyaltyProgram.deleted_at.is_(None),
        )
    )
    if program is None:
        raise CampaignNotFound("this program does not exist or is deleted")
    return await catalog.create_campaign(session, program, catalog.campaign_values(data))


async def update_campaign(
    session: AsyncSession, merchant_id: int, campaign_id: int, data: Mapping[str, Any]
) -> bool:
    """Save a live campaign's form: ``data`` states the whole campaign (a field left out takes
    its default), but a ``status`` left out is kept. ``InvalidFields`` by field, e.g. a
    ``budget_points`` under what the campaign has already awarded. Whether anything changed."""
    campaign, program = await _live(session, merchant_id, campaign_id)
    return await catalog.update_campaign(session, program, campaign, catalog.campaign_values(data))


async def set_campaign_status(
    session: AsyncSession, merchant_id: int, campaign_id: int, status: CampaignStatus
) -> bool:
    """Move a live campaign to ``status``: a draft or a paused campaign may become active, an
    active one paused, any one ended; an ended one stays ended, and none goes back to draft.
    ``CatalogRefusal`` says why not. Whether the status changed."""
    campaign, program = await _live(session, merchant_id, campaign_id)
    return await catalog.set_campaign_status(session, program, campaign, status)


async def pause_campaign(session: AsyncSession, merchant_id: int, campaign_id: int) -> bool:
    """Stop an active campaign for now (``set_campaign_status``)."""
    return await set_campaign_status(session, merchant_id, campaign_id, CampaignStatus.PAUSED)


async def resume_campaign(session: AsyncSession, merchant_id: int, campaign_id: int) -> bool:
    """Make a paused campaign, or a draft, active (``set_campaign_status``)."""
    return await set_campaign_status(session, merchant_id, campaign_id, CampaignStatus.ACTIVE)


async def end_campaign(session: AsyncSession, merchant_id: int, campaign_id: int) -> bool:
    """End a campaign for good (``set_campaign_status``)."""
    return await set_campaign_status(session, merchant_id, campaign_id, CampaignStatus.ENDED)


async def delete_campaign(
    session: AsyncSession,
    merchant_id: int,
    campaign_id: int,
    *,
    by: str,
    at: datetime | None = None,
) -> None:
    """Soft-delete a live campaign (``by``: who, as the soft-delete columns name them): it no
    longer applies, its id may be given to a new campaign, and it can be restored."""
    campaign, _ = await _live(session, merchant_id, campaign_id)
    await soft_delete.soft_delete(session, Campaign, [campaign.id], by=by, at=at)


async def restore_campaign(session: AsyncSession, merchant_id: int, campaign_id: int) -> None:
    """Bring back a deleted campaign as it was (its status included). ``CatalogRefusal`` when
    it is not deleted, when its program is deleted (restore the program first), or when a live
    campaign of the program has taken its id meanwhile."""
    found = await _find(session, merchant_id, campaign_id)
    if found is None:
        raise CampaignNotFound("this campaign does not exist")
    campaign, program = found
    if campaign.deleted_at is None:
        raise CatalogRefusal("this campaign is not deleted")
    if program.deleted_at is not None:
        raise CatalogRefusal("this campaign's program is deleted: restore the program first")
    taken = CatalogRefusal(
        f"cannot restore this campaign: the program has another live campaign {campaign.code!r}"
    )
    others = await session.scalar(
        select(Campaign.id).where(
            Campaign.program_id == program.id,
            Campaign.code == campaign.code,
            Campaign.deleted_at.is_(None),
        )
    )
    if others is not None:
        raise taken
    try:
        # A savepoint: losing a race for the id leaves the caller's transaction usable.
        async with session.begin_nested():
            campaign.deleted_at = None
            campaign.deleted_by = None
            campaign.deletion_id = None
    except IntegrityError:
        raise taken from None
