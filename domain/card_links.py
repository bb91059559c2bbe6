"""The customer's card page link: its secret, its URL, rotating it when it leaked, and closing
every public way to a card (page link and QR code) when its customer is erased."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from urllib.parse import quote

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.audit_trail import record_change
from domain.identifiers import new_qr_token
from domain.models import LoyaltyCard


def new_link_token() -> str:
    """256 random bits, URL-safe: the card page's secret."""
    return secrets.token_urlsafe(32)


def card_page_path(link_token: str) -> str:
    """The card page's path on the public site."""
    return f"/card/{quote(link_token, safe='')}"


def card_page_url(public_base: str, link_token: str) -> str:
    """The card page's absolute URL, as a message to the customer carries it."""
    return public_base.rstrip("/") + card_page_path(link_token)


async def rotate_link(session: AsyncSession, card_id: int) -> str:
    """Give the card a new page link (the old one stops working at once); the caller commits.

    The QR code and the wallet passes keep working: they carry the QR token, not this one.
    """
    token = new_link_token()
    merchant_id = await session.scalar(
        update(LoyaltyCard)
        .where(LoyaltyCard.id == card_id)
        .values(link_token=token)
        .returning(LoyaltyCard.merchant_id)
    )
    # A bulk update: the audit trail's flush hook does not see it. The token itself is a
    # secret, which the trail stores as "[secret changed]".
    await record_change(
        session,
        action="rotate_link",
        entity="card",
        entity_id=card_id,
        merchant_id=merchant_id,
        before={"link_token": "old"},
        after={"link_token": token},
    )
    return token


async def close_public_access(session: AsyncSession, card_ids: Sequence[int]) -> None:
    """Give the cards a new page link and a new QR token that nobody was ever given, so the
    customer's card page, its pass download and the printed or saved QR code find nothing any
    more (an erased customer's card, ``domain.customer_data``); the caller commits.

    Deleted cards too: a restore must not bring an old link back to life. The pass's
    authentication token is left alone: the devices holding the pass still have to fetch it
    once more to learn that it is void.
    """
    for card_id in card_ids:
        await session.execute(
            update(LoyaltyCard)
            .where(LoyaltyCard.id == card_id)
            .values(link_token=new_link_token(), qr_token=new_qr_token())
            .execution_options(include_deleted=True)
        )
