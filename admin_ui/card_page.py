"""The customer's card page, ``/card/{link_token}``, and its pass download.

What a customer sees when scanning their card's QR code or opening the link from their
welcome mail: balances with a grid of the stamps (and the points pending and the next points
to expire, CONTRACT.md 7.2 and 7.3; the tier and what the next one takes, 7.4), the QR code
to show at the checkout, recent activity in plain words, the "Add to Apple Wallet" / "Add to
Google Wallet" buttons of the wallets that really work, and the merchant's privacy notice
when the program has one.
In the customer's language (en, fr, de, lb), ``?lang=`` overriding it (the switch at the
top). One column on a phone, two from a tablet's width.

``/card/{link_token}/pass.pkpass`` serves the card's signed Apple pass. The link token is the
page's secret (whoever holds it sees the card and its QR code, so can use it), apart from
the QR token so an admin can rotate it; it never reaches a log line, and an unknown token
gets the same friendly not-found page as a deleted card.

Its words are in ``admin_ui.card_texts``, what it reads in ``admin_ui.queries.card_page``,
which wallet buttons it may show in ``admin_ui.wallet_offer``. The admin app calls
:func:`register_card_page` once, where it defines its other pages.
"""

from __future__ import annotations

import base64
import html
import io
from datetime import UTC, datetime
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import qrcode
from fastapi import Response
from fastapi.responses import HTMLResponse
from nicegui import app, ui

from admin_ui import formatting
from admin_ui.card_texts import (
    DATE_FORMATS,
    TEXTS,
    describe_entry,
    expiry_words,
    page_language,
    pending_words,
    text_of,
    tier_progress_words,
)
from admin_ui.passkit import SessionSource, attach_database, pkpass_of
from admin_ui.public_widgets import language_switch, privacy_link, stamp_grid
from admin_ui.queries.card_page import (
    HistoryLine,
    WalletCard,
    card_by_link,
    program_privacy_url,
    recent_entries,
)
from admin_ui.wallet_offer import apple_pass_available, google_save_link
from admin_ui.widgets import tag
from core.logs import get_logger
from wallet import PKPASS_MIME_TYPE, WalletConfigError, WalletSettings, get_wallet_settings
from wallet.cards import normalize_hex_color

log = get_logger(__name__)

__all__ = ["TEXTS", "qr_data_url", "register_card_page"]


def qr_data_url(data: str) -> str:
    """A PNG of the QR code of ``data``, as a ``data:`` URL."""
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=8, border=2)
    code.add_data(data)
    code.make(fit=True)
    buffer = io.BytesIO()
    code.make_image().save(buffer)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _colour(value: str, fallback: str) -> str:
    # Normalised, so a colour typed into the admin panel can never inject CSS.
    try:
        return normalize_hex_color(value)
    except ValueError:
        return fallback


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def friendly_page(language: str, title_key: str, text_key: str, status: int) -> HTMLResponse:
    """A small standalone HTML page (for the plain routes, outside NiceGUI)."""
    title = html.escape(text_of(language, title_key))
    body = html.escape(text_of(language, text_key))
    return HTMLResponse(
        f'<!doctype html><html lang="{language}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title></head>"
        '<body style="font-family: system-ui, sans-serif; max-width: 32rem; margin: 3rem auto; '
        f'padding: 0 1rem"><h1>{title}</h1><p>{body}</p></body></html>',
        status_code=status,
    )


def _not_found(language: str) -> None:
    ui.context.client.status_code = 404
    ui.page_title(text_of(language, "not_found_title"))
    with tag(ui.column(), "card-not-found").classes("w-full max-w-md mx-auto p-6 gap-2"):
        ui.label(text_of(language, "not_found_title")).classes("text-2xl font-semibold")
        ui.label(text_of(language, "not_found"))


def _balance(title: str, value: str, marker: str, label: str) -> None:
    with ui.column().classes("gap-0"):
        ui.label(title).style(f"color: {label}")
        tag(ui.label(value), marker).classes("text-3xl font-bold")


def brand_card(card: WalletCard, language: str) -> None:
    """The card in the program's colours: who, the balances, the stamp grid, the reward."""
    background = _colour(card.background_color, "#1F2937")
    foreground = _colour(card.foreground_color, "#FFFFFF")
    label = _colour(card.label_color, "#D1D5DB")
    kind = card.pass_card().program_type
    with (
        tag(ui.card(), "brand-card")
        .classes("w-full gap-1 break-words")
        .style(f"background-color: {background}; color: {foreground}")
    ):
        ui.label(card.merchant_name).classes("text-xl font-semibold")
        ui.label(card.program_name).style(f"color: {label}")
        if card.customer_name:
            ui.label(card.customer_name).style(f"color: {label}")
        with ui.row().classes("gap-8 pt-2"):
            if kind.stamps_enabled:
                _balance(
                    text_of(language, "stamps"),
                    f"{card.stamp_count} / {card.stamps_target}",
                    "stamps",
                    label,
                )
            if kind.points_enabled:
                with ui.column().classes("gap-0"):
                    _balance(
                        text_of(language, "points"),
                        formatting.number(card.points_balance, locale=language),
                        "points",
                        label,
                    )
                    if card.points_pending > 0:
                        pending = ui.label(pending_words(language, card.points_pending))
                        tag(pending, "points-pending").style(f"color: {label}")
            _tier(card, language, label)
        _next_expiry(card, language, label)
        if kind.stamps_enabled:
            grid = stamp_grid(
                card.stamp_count,
                card.stamps_target,
                language=language,
                reward=card.reward_description,
                filled_color=foreground,
                empty_color=label,
                mark_color=background,
            )
            if grid is not None:
                grid.classes("my-2")
            if card.reward_description:
                ui.label(
                    text_of(
                        language,
                        "reward_at",
                        target=card.stamps_target,
                        reward=card.reward_description,
                    )
                ).style(f"color: {label}")


def _tier(card: WalletCard, language: str, label: str) -> None:
    """The card's tier and what the next one takes (CONTRACT.md 7.4); nothing without tiers."""
    tier = card.tier
    if tier is None:
        return
    with ui.column().classes("gap-0"):
        _balance(text_of(language, "tier"), tier.name, "tier", label)
        if tier.next_name is not None and tier.points_to_next is not None:
            words = tier_progress_words(language, tier.points_to_next, tier.next_name)
            tag(ui.label(words), "tier-next").style(f"color: {label}")


def _next_expiry(card: WalletCard, language: str, label: str) -> None:
    """The next points to expire (CONTRACT.md 7.3), on the merchant's calendar."""
    expiry = card.pass_card().next_expiry
    if expiry is None:
        return
    points, day = expiry
    today = datetime.now(UTC).astimezone(_zone(card.merchant_timezone)).date()
    words = expiry_words(language, points, day, today)
    tag(ui.label(words), "points-expiry").style(f"color: {label}")


def _code_panel(card: WalletCard, language: str, settings: WalletSettings, page_path: str) -> None:
    """The QR code to show at the checkout, the card number and the wallet buttons."""
    button = "w-full max-w-xs text-center px-4 py-3 rounded-lg bg-black text-white no-underline"
    with ui.card().classes("w-full items-center gap-2"):
        qr = tag(ui.image(qr_data_url(card.qr_token)), "qr").classes("w-56 h-56 max-w-full")
        # Shown at once: a fading-in code would make the cashier's scanner wait.
        qr.props("no-spinner no-transition")
        qr.props["alt"] = text_of(language, "qr_alt")
        ui.label(text_of(language, "show_code")).classes("text-sm text-slate-600 text-center")
        ui.label(f"{text_of(language, 'card_number')}: {card.card_number}").classes(
            "font-mono text-sm text-center"
        )
        # Only the wallets that really work: a button must never lead to a refusal.
        if apple_pass_available(settings):
            apple = ui.link(text_of(language, "apple"), f"{page_path}/pass.pkpass")
            tag(apple, "apple-wallet").classes(button + " mt-2")
        google = google_save_link(card, settings)
        if google is not None:
            link = ui.link(text_of(language, "google"), google, new_tab=True)
            # No Referer: the card page's address is the card's secret.
            link.props["rel"] = "noopener noreferrer"
            tag(link, "google-wallet").classes(button)


def _history(entries: list[HistoryLine], language: str, zone: ZoneInfo) -> None:
    with ui.card().classes("w-full gap-2"):
        ui.label(text_of(language, "history")).classes("text-lg font-semibold")
        if not entries:
            ui.label(text_of(language, "no_history")).classes("text-slate-600")
        with tag(ui.column(), "history").classes("w-full gap-2"):
            for entry in entries:
                when = entry.occurred_at.astimezone(zone).strftime(DATE_FORMATS[language])
                # The date keeps its line; the words wrap beside it on a narrow phone.
                with ui.row(wrap=False).classes("w-full justify-between items-baseline gap-3"):
                    ui.label(describe_entry(language, entry)).classes("min-w-0 break-words")
                    ui.label(when).classes("text-sm text-slate-600 whitespace-nowrap shrink-0")


def _render(
    card: WalletCard,
    entries: list[HistoryLine],
    language: str,
    settings: WalletSettings,
    link_token: str,
    privacy_url: str | None,
) -> None:
    page_path = f"/card/{quote(link_token, safe='')}"
    ui.page_title(f"{card.merchant_name} · {text_of(language, 'title')}")
    ui.query("body").classes("bg-slate-100")
    page = ui.column().classes("w-full max-w-md md:max-w-3xl mx-auto px-0 sm:px-2 md:pt-6 gap-4")
    # Screen readers pronounce the page in its language, whatever the <html> says.
    page.props["lang"] = language
    with page:
        language_switch(language, page_path)
        if not card.is_active:
            tag(ui.label(text_of(language, "inactive")), "inactive").classes(
                "w-full text-center rounded-lg bg-red-50 text-red-700 font-semibold p-3"
            )
        with ui.element("div").classes("w-full grid grid-cols-1 md:grid-cols-2 gap-4"):
            brand_card(card, language)
            _code_panel(card, language, settings, page_path)
        _history(entries, language, _zone(card.merchant_timezone))
        with ui.row().classes("w-full justify-center pb-2"):
            privacy_link(privacy_url, language)


def register_card_page(
    *, sessions: SessionSource | None = None, wallet_settings: WalletSettings | None = None
) -> None:
    """Define the page ``/card/{link_token}`` and the route ``/card/{link_token}/pass.pkpass``.

    ``sessions`` returns the app's session factory; without it the page opens a database of
    its own with NiceGUI's app. ``wallet_settings`` defaults to the environment's.
    """
    source = sessions or attach_database(app)

    def settings() -> WalletSettings:
        return wallet_settings if wallet_settings is not None else get_wallet_settings()

    @ui.page("/card/{link_token}")
    async def card_page(link_token: str, lang: str | None = None) -> None:
        async with source()() as session:
            card = await card_by_link(session, link_token)
            if card is None:
                _not_found(page_language(None, lang))
                return
            entries = await recent_entries(session, card.card_id)
            privacy_url = await program_privacy_url(session, card.program_id)
        _render(
            card, entries, page_language(card.locale, lang), settings(), link_token, privacy_url
        )

    @app.get("/card/{link_token}/pass.pkpass", include_in_schema=False)
    async def card_pass(link_token: str, lang: str | None = None) -> Response:
        current = settings()
        language = page_language(None, lang)
        if not current.apple_enabled:
            return friendly_page(language, "no_apple_title", "no_apple", 404)
        async with source()() as session:
            card = await card_by_link(session, link_token)
        if card is None:
            return friendly_page(language, "not_found_title", "not_found", 404)
        try:
            data = await pkpass_of(card, current)
        except WalletConfigError as exc:
            log.error("card_pass_unavailable", error=str(exc))
            return friendly_page(
                page_language(card.locale, lang), "no_apple_title", "no_apple", 404
            )
        return Response(
            content=data,
            media_type=PKPASS_MIME_TYPE,
            headers={
                "Content-Disposition": 'attachment; filename="loyalty-card.pkpass"',
                # The pass carries the card's secrets: no shared cache may keep it.
                "Cache-Control": "private, no-store",
            },
        )
