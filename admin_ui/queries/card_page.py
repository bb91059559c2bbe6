"""What the customer's card page reads: the card (``domain.wallet_cards``), its recent
activity as plain rows, and the program's privacy notice."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.models import LedgerEntry, LedgerType, LoyaltyProgram
from domain.wallet_cards import WalletCard, wallet_card_by_link_token

__all__ = ["HistoryLine", "WalletCard", "card_by_link", "program_privacy_url", "recent_entries"]

HISTORY_LENGTH = 10


@dataclass(frozen=True)
class HistoryLine:
    """One ledger entry of a card, as the customer's page tells it."""

    occurred_at: datetime
    entry_type: LedgerType
    stamps_delta: int
    points_delta: int
    reward_description: str | None
    pending_delta: int = 0
    """The change to the pending points (CONTRACT.md 7.2); ``points_delta`` is the spendable
    part only."""


async def card_by_link(session: AsyncSession, link_token: str) -> WalletCard | None:
    """The live card whose page this secret opens, or ``None``."""
    return await wallet_card_by_link_token(session, link_token)


async def recent_entries(session: AsyncSession, card_id: int) -> list[HistoryLine]:
    """The card's last ledger entries, newest first."""
    rows = await session.scalars(
        select(LedgerEntry)
        .where(LedgerEntry.card_id == card_id)
        .order_by(LedgerEntry.occurred_at.desc(), LedgerEntry.id.desc())
        .limit(HISTORY_LENGTH)
    )
    return [
        HistoryLine(
            e.occurred_at,
            LedgerType(e.entry_type),
            e.stamps_delta,
            e.points_delta,
            e.reward_description,
            e.pending_delta,
        )
        for e in rows
    ]


async def program_privacy_url(session: AsyncSession, program_id: int) -> str | None:
    """The program's privacy notice address, if it has one."""
    return await session.scalar(
        select(LoyaltyProgram.privacy_url).where(LoyaltyProgram.id == program_id)
    )
