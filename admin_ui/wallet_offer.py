"""Which wallet buttons a card's page may offer: only those that really work, so a button
never leads a customer to a refusal."""

from __future__ import annotations

from admin_ui.passkit import pass_signer
from core.logs import get_logger
from domain.wallet_cards import WalletCard
from wallet import WalletConfigError, WalletSettings, save_link

log = get_logger(__name__)


def google_save_link(card: WalletCard, settings: WalletSettings) -> str | None:
    """The "Add to Google Wallet" link, or None when it cannot be offered.

    With the program's logo the link carries the whole class and object, so it works before
    the wallet sync has created them; without one only a synced object can be linked.
    """
    if not settings.google_enabled:
        return None
    try:
        if card.logo_url:
            return save_link(card.pass_card(), settings, program=card.pass_program())
        if card.google_object_id:
            return save_link(card.pass_card(), settings)
    except (WalletConfigError, ValueError) as exc:
        log.warning("google_save_link_unavailable", error=str(exc)[:200])
    return None


def apple_pass_available(settings: WalletSettings) -> bool:
    """True when a pass can really be signed, so the Apple button never leads to a refusal.

    The settings naming every file is not enough: a missing or mismatched certificate would
    only show on the customer's phone. The signer is loaded once and kept (``pass_signer``).
    """
    if not settings.apple_enabled:
        return False
    try:
        pass_signer(settings)
    except WalletConfigError as exc:
        log.warning("apple_pass_unavailable", error=str(exc)[:200])
        return False
    return True
