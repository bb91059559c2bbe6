"""The customer's card page, ``/card/{link_token}``, and its pass download.

What a customer sees when scanning their card's QR code or opening the link from their
welcome mail: balances with a grid of the stamps, the QR code to show at the checkout,
recent activity in plain words, the "Add to Apple Wallet" / "Add to Google Wallet" buttons
of the wallets that really work, and the merchant's privacy notice when the program has one.
In the customer's language (en, fr, de, lb), ``?lang=`` overriding it (the switch at the
top). One column on a phone, two from a tablet's width.

``/card/{link_token}/pass.pkpass`` serves the card's signed Apple pass. The link token is the
page's secret (whoever holds it sees the card and its QR code, so can use it), apart from
the QR token so an admin can rotate it; it never reaches a log line, and an unknown token
gets the same friendly not-found page as a deleted card.

The admin app calls :func:`register_card_page` once, where it defines its other pages.
"""

from __future__ import annotations

import base64
import html
import io
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import qrcode
from fastapi import Response
from fastapi.responses import HTMLResponse
from nicegui import app, ui
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from admin_ui.passkit import SessionSource, attach_database, pass_signer, pkpass_of
from admin_ui.public_widgets import language_switch, privacy_link, stamp_grid
from admin_ui.widgets import tag
from domain.models import LedgerEntry, LedgerType, LoyaltyProgram
from domain.wallet_cards import WalletCard, wallet_card_by_link_token
from loyalty.logs import get_logger
from wallet import (
    PKPASS_MIME_TYPE,
    SUPPORTED_LOCALES,
    WalletConfigError,
    WalletSettings,
    get_wallet_settings,
    save_link,
)
from wallet.cards import normalize_hex_color, normalize_locale

log = get_logger(__name__)

HISTORY_LENGTH = 10

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Your loyalty card",
        "stamps": "Stamps",
        "points": "Points",
        "reward_at": "At {target} stamps: {reward}",
        "card_number": "Card number",
        "show_code": "Show this code at the checkout.",
        "qr_alt": "The QR code of your card",
        "history": "Recent activity",
        "no_history": "No activity yet.",
        "inactive": "This card is inactive.",
        "apple": "Add to Apple Wallet",
        "google": "Add to Google Wallet",
        "not_found_title": "Card not found",
        "not_found": "This link does not lead to a card. Please check it, or ask the shop.",
        "no_apple_title": "Apple Wallet is not available",
        "no_apple": "This card cannot be added to Apple Wallet yet. Please show the card's "
        "page at the checkout instead.",
    },
    "fr": {
        "title": "Votre carte de fidélité",
        "stamps": "Tampons",
        "points": "Points",
        "reward_at": "À {target} tampons : {reward}",
        "card_number": "Numéro de carte",
        "show_code": "Présentez ce code en caisse.",
        "qr_alt": "Le code QR de votre carte",
        "history": "Activité récente",
        "no_history": "Aucune activité pour l'instant.",
        "inactive": "Cette carte est désactivée.",
        "apple": "Ajouter à Apple Wallet",
        "google": "Ajouter à Google Wallet",
        "not_found_title": "Carte introuvable",
        "not_found": "Ce lien ne mène à aucune carte. Vérifiez-le ou adressez-vous au magasin.",
        "no_apple_title": "Apple Wallet n'est pas disponible",
        "no_apple": "Cette carte ne peut pas encore être ajoutée à Apple Wallet. Présentez "
        "plutôt la page de la carte en caisse.",
    },
    "de": {
        "title": "Ihre Treuekarte",
        "stamps": "Stempel",
        "points": "Punkte",
        "reward_at": "Bei {target} Stempeln: {reward}",
        "card_number": "Kartennummer",
        "show_code": "Zeigen Sie diesen Code an der Kasse.",
        "qr_alt": "Der QR-Code Ihrer Karte",
        "history": "Letzte Aktivitäten",
        "no_history": "Noch keine Aktivität.",
        "inactive": "Diese Karte ist deaktiviert.",
        "apple": "Zu Apple Wallet hinzufügen",
        "google": "Zu Google Wallet hinzufügen",
        "not_found_title": "Karte nicht gefunden",
        "not_found": "Dieser Link führt zu keiner Karte. Bitte prüfen Sie ihn oder fragen "
        "Sie im Geschäft nach.",
        "no_apple_title": "Apple Wallet ist nicht verfügbar",
        "no_apple": "Diese Karte kann noch nicht zu Apple Wallet hinzugefügt werden. Zeigen "
        "Sie an der Kasse bitte die Seite der Karte.",
    },
    "lb": {
        "title": "Är Treiekaart",
        "stamps": "Stempelen",
        "points": "Punkten",
        "reward_at": "Bei {target} Stempelen: {reward}",
        "card_number": "Kaartennummer",
        "show_code": "Weist dëse Code un der Keess.",
        "qr_alt": "De QR-Code vun Ärer Kaart",
        "history": "Lescht Aktivitéiten",
        "no_history": "Nach keng Aktivitéit.",
        "inactive": "Dës Kaart ass desaktivéiert.",
        "apple": "An Apple Wallet derbäisetzen",
        "google": "An Google Wallet derbäisetzen",
        "not_found_title": "Kaart net fonnt",
        "not_found": "Dëse Link féiert op keng Kaart. Kontrolléiert e w.e.g. oder frot am "
        "Geschäft no.",
        "no_apple_title": "Apple Wallet ass net disponibel",
        "no_apple": "Dës Kaart kann nach net an Apple Wallet derbäigesat ginn. Weist w.e.g. "
        "d'Säit vun der Kaart un der Keess.",
    },
}

# What happened, one phrase per ledger entry type.
ENTRY_WORDS: dict[str, dict[LedgerType, str]] = {
    "en": {
        LedgerType.STAMP_EARNED: "Stamps collected",
        LedgerType.STAMP_REDEEMED: "Reward redeemed",
        LedgerType.STAMP_VOIDED: "Stamps cancelled (return)",
        LedgerType.STAMP_ADJUSTED: "Stamps adjusted by the shop",
        LedgerType.POINTS_EARNED: "Points earned",
        LedgerType.POINTS_REDEEMED: "Points spent on a reward",
        LedgerType.POINTS_VOIDED: "Points cancelled (return)",
        LedgerType.POINTS_EXPIRED: "Points expired",
        LedgerType.POINTS_ADJUSTED: "Points adjusted by the shop",
        LedgerType.WELCOME_BONUS: "Welcome bonus",
        LedgerType.CARD_CREATED: "Card created",
        LedgerType.CARD_DEACTIVATED: "Card deactivated",
        LedgerType.CARD_REACTIVATED: "Card reactivated",
    },
    "fr": {
        LedgerType.STAMP_EARNED: "Tampons obtenus",
        LedgerType.STAMP_REDEEMED: "Récompense utilisée",
        LedgerType.STAMP_VOIDED: "Tampons annulés (retour)",
        LedgerType.STAMP_ADJUSTED: "Tampons corrigés par le magasin",
        LedgerType.POINTS_EARNED: "Points gagnés",
        LedgerType.POINTS_REDEEMED: "Points échangés contre une récompense",
        LedgerType.POINTS_VOIDED: "Points annulés (retour)",
        LedgerType.POINTS_EXPIRED: "Points expirés",
        LedgerType.POINTS_ADJUSTED: "Points corrigés par le magasin",
        LedgerType.WELCOME_BONUS: "Bonus de bienvenue",
        LedgerType.CARD_CREATED: "Carte créée",
        LedgerType.CARD_DEACTIVATED: "Carte désactivée",
        LedgerType.CARD_REACTIVATED: "Carte réactivée",
    },
    "de": {
        LedgerType.STAMP_EARNED: "Stempel gesammelt",
        LedgerType.STAMP_REDEEMED: "Prämie eingelöst",
        LedgerType.STAMP_VOIDED: "Stempel storniert (Rückgabe)",
        LedgerType.STAMP_ADJUSTED: "Stempel vom Geschäft korrigiert",
        LedgerType.POINTS_EARNED: "Punkte gesammelt",
        LedgerType.POINTS_REDEEMED: "Punkte für eine Prämie eingelöst",
        LedgerType.POINTS_VOIDED: "Punkte storniert (Rückgabe)",
        LedgerType.POINTS_EXPIRED: "Punkte verfallen",
        LedgerType.POINTS_ADJUSTED: "Punkte vom Geschäft korrigiert",
        LedgerType.WELCOME_BONUS: "Willkommensbonus",
        LedgerType.CARD_CREATED: "Karte erstellt",
        LedgerType.CARD_DEACTIVATED: "Karte deaktiviert",
        LedgerType.CARD_REACTIVATED: "Karte reaktiviert",
    },
    "lb": {
        LedgerType.STAMP_EARNED: "Stempele gesammelt",
        LedgerType.STAMP_REDEEMED: "Belounung ageléist",
        LedgerType.STAMP_VOIDED: "Stempele storniert (Retour)",
        LedgerType.STAMP_ADJUSTED: "Stempele vum Geschäft korrigéiert",
        LedgerType.POINTS_EARNED: "Punkte gesammelt",
        LedgerType.POINTS_REDEEMED: "Punkte fir eng Belounung ageléist",
        LedgerType.POINTS_VOIDED: "Punkte storniert (Retour)",
        LedgerType.POINTS_EXPIRED: "Punkten ofgelaf",
        LedgerType.POINTS_ADJUSTED: "Punkte vum Geschäft korrigéiert",
        LedgerType.WELCOME_BONUS: "Wëllkommensbonus",
        LedgerType.CARD_CREATED: "Kaart erstallt",
        LedgerType.CARD_DEACTIVATED: "Kaart desaktivéiert",
        LedgerType.CARD_REACTIVATED: "Kaart reaktivéiert",
    },
}

# (singular, plural) of the two units.
UNITS: dict[str, dict[str, tuple[str, str]]] = {
    "en": {"stamps": ("stamp", "stamps"), "points": ("point", "points")},
    "fr": {"stamps": ("tampon", "tampons"), "points": ("point", "points")},
    "de": {"stamps": ("Stempel", "Stempel"), "points": ("Punkt", "Punkte")},
    "lb": {"stamps": ("Stempel", "Stempelen"), "points": ("Punkt", "Punkten")},
}

DATE_FORMATS: dict[str, str] = {
    "en": "%d/%m/%Y %H:%M",
    "fr": "%d/%m/%Y %H:%M",
    "de": "%d.%m.%Y %H:%M",
    "lb": "%d.%m.%Y %H:%M",
}


def page_language(customer_locale: str | None, override: str | None) -> str:
    """``?lang=`` when it names one of ours, else the customer's locale, else English."""
    if override:
        base = override.replace("_", "-").split("-", 1)[0].lower()
        if base in SUPPORTED_LOCALES:
            return base
    return normalize_locale(customer_locale or "en")


def text_of(language: str, key: str, **values: Any) -> str:
    """A text of the page in ``language``."""
    template = TEXTS.get(language, TEXTS["en"])[key]
    return template.format(**values) if values else template


def amount(language: str, unit: str, delta: int) -> str:
    """``+2 stamps``, ``−50 Punkte``: a signed change in words."""
    singular, plural = UNITS[language][unit]
    sign = "+" if delta > 0 else "−"
    return f"{sign}{abs(delta)} {singular if abs(delta) == 1 else plural}"


def describe_entry(language: str, entry: LedgerEntry) -> str:
    """One ledger entry as a customer reads it: what happened and what it changed."""
    words = ENTRY_WORDS.get(language, ENTRY_WORDS["en"])[LedgerType(entry.entry_type)]
    changes = [
        amount(language, unit, delta)
        for unit, delta in (("stamps", entry.stamps_delta), ("points", entry.points_delta))
        if delta
    ]
    detail = [*changes, entry.reward_description] if entry.reward_description else changes
    return f"{words}: {', '.join(detail)}" if detail else words


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


async def recent_entries(session: AsyncSession, card_id: int) -> list[LedgerEntry]:
    """The card's last ledger entries, newest first."""
    rows = await session.scalars(
        select(LedgerEntry)
        .where(LedgerEntry.card_id == card_id)
        .order_by(LedgerEntry.occurred_at.desc(), LedgerEntry.id.desc())
        .limit(HISTORY_LENGTH)
    )
    return list(rows.all())


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


async def program_privacy_url(session: AsyncSession, program_id: int) -> str | None:
    """The program's privacy notice address, if it has one."""
    return await session.scalar(
        select(LoyaltyProgram.privacy_url).where(LoyaltyProgram.id == program_id)
    )


def _balance(title: str, value: str, marker: str, label: str) -> None:
    with ui.column().classes("gap-0"):
        ui.label(title).style(f"color: {label}")
        tag(ui.label(value), marker).classes("text-3xl font-bold")


def _brand_card(card: WalletCard, language: str) -> None:
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
                _balance(text_of(language, "points"), str(card.points_balance), "points", label)
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


def _history(entries: list[LedgerEntry], language: str, zone: ZoneInfo) -> None:
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
    entries: list[LedgerEntry],
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
            _brand_card(card, language)
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
            card = await wallet_card_by_link_token(session, link_token)
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
            card = await wallet_card_by_link_token(session, link_token)
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
