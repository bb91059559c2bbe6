"""The words of the customer's card page, in English, French, German and Luxembourgish: its
texts, what each ledger entry means, the units and the date formats. The sentences of pending
points, of the next expiry and of what the next tier takes are the wallets' own
(``wallet.i18n``), so the page and the Google card say the same."""

from __future__ import annotations

from datetime import date
from typing import Any

from admin_ui.queries.card_page import HistoryLine
from core.enums import LedgerType
from wallet import SUPPORTED_LOCALES, i18n
from wallet.cards import normalize_locale

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Your loyalty card",
        "stamps": "Stamps",
        "points": "Points",
        "tier": "Tier",
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
        "tier": "Niveau",
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
        "tier": "Stufe",
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
        "tier": "Niveau",
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
        LedgerType.POINTS_RELEASED: "Pending points now available",
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
        LedgerType.POINTS_RELEASED: "Points en attente désormais disponibles",
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
        LedgerType.POINTS_RELEASED: "Ausstehende Punkte jetzt verfügbar",
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
        LedgerType.POINTS_RELEASED: "Ausstoend Punkten elo disponibel",
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

# Beside an amount of points earned (or voided) still pending (CONTRACT.md 7.2).
PENDING_MARK: dict[str, str] = {
    "en": "pending",
    "fr": "en attente",
    "de": "ausstehend",
    "lb": "ausstoend",
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


def pending_words(language: str, points: int) -> str:
    """``40 points pending``."""
    return i18n.pending_text(points, language)


def tier_progress_words(language: str, points: int, tier: str) -> str:
    """``230 points to Gold`` (``tier``: the next tier's name)."""
    return i18n.tier_progress_text(points, tier, language)


def expiry_words(language: str, points: int, day: date, today: date) -> str:
    """``120 points expire on 31 Dec``: the year only when it is not this one."""
    return i18n.expiry_text(points, day, language, year=day.year != today.year)


def amount(language: str, unit: str, delta: int) -> str:
    """``+2 stamps``, ``−50 Punkte``: a signed change in words."""
    singular, plural = UNITS[language][unit]
    sign = "+" if delta > 0 else "−"
    return f"{sign}{abs(delta)} {singular if abs(delta) == 1 else plural}"


def pending_amount(language: str, delta: int) -> str:
    """``+120 points (pending)``: a signed change of the pending points in words."""
    mark = PENDING_MARK.get(language, PENDING_MARK["en"])
    return f"{amount(language, 'points', delta)} ({mark})"


def describe_entry(language: str, entry: HistoryLine) -> str:
    """One ledger entry as a customer reads it: what happened and what it changed (points
    still pending said so; a release's words already say its points were pending)."""
    kind = LedgerType(entry.entry_type)
    words = ENTRY_WORDS.get(language, ENTRY_WORDS["en"])[kind]
    changes = [
        amount(language, unit, delta)
        for unit, delta in (("stamps", entry.stamps_delta), ("points", entry.points_delta))
        if delta
    ]
    if entry.pending_delta and kind is not LedgerType.POINTS_RELEASED:
        changes.append(pending_amount(language, entry.pending_delta))
    detail = [*changes, entry.reward_description] if entry.reward_description else changes
    return f"{words}: {', '.join(detail)}" if detail else words
