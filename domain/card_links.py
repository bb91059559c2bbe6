"""The customer's card page link: its secret, its URL, and rotating it when it leaked."""

from __future__ import annotations

import secrets
from urllib.parse import quote

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

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
    await session.execute(
        update(LoyaltyCard).where(LoyaltyCard.id == card_id).values(link_token=token)
    )
    return token
