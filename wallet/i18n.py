"""Field labels of both wallets in the engine's four languages.

The keys are the English texts themselves: Wallet shows the raw key when a device's language
has no ``.lproj``, so an English key is a readable fallback rather than ``LABEL_STAMPS``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from wallet.cards import SUPPORTED_LOCALES

STAMPS = "Stamps"
POINTS = "Points"
REWARD = "Reward"
MEMBER = "Member"
CARD_NUMBER = "Card number"
PROGRAM = "Program"
# Shown on the lock screen when a pushed update changes the field; %@ is the new value.
STAMPS_CHANGED = "Stamps: %@"
POINTS_CHANGED = "Points: %@"
# Pending points and the next expiry (CONTRACT.md 7.2, 7.3): Apple's back fields, the header
# of Google's text module.
PENDING = "Pending points"
EXPIRING = "Points expiring"
EXPIRES_ON = "Expiry date"
YOUR_POINTS = "Your points"
# Tiers (CONTRACT.md 7.4): Apple's front field (and its lock-screen message) and the back
# field of the next tier; the header of Google's text module.
TIER = "Tier"
TIER_CHANGED = "Tier: %@"
NEXT_TIER = "Next tier"

TRANSLATIONS: dict[str, dict[str, str]] = {
    "en": {
        STAMPS: "Stamps",
        POINTS: "Points",
        REWARD: "Reward",
        MEMBER: "Member",
        CARD_NUMBER: "Card number",
        PROGRAM: "Program",
        STAMPS_CHANGED: "Stamps: %@",
        POINTS_CHANGED: "Points: %@",
        PENDING: "Pending points",
        EXPIRING: "Points expiring",
        EXPIRES_ON: "Expiry date",
        YOUR_POINTS: "Your points",
        TIER: "Tier",
        TIER_CHANGED: "Tier: %@",
        NEXT_TIER: "Next tier",
    },
    "fr": {
        STAMPS: "Tampons",
        POINTS: "Points",
        REWARD: "Récompense",
        MEMBER: "Membre",
        CARD_NUMBER: "Numéro de carte",
        PROGRAM: "Programme",
        STAMPS_CHANGED: "Tampons : %@",
        POINTS_CHANGED: "Points : %@",
        PENDING: "Points en attente",
        EXPIRING: "Points qui expirent",
        EXPIRES_ON: "Date d'expiration",
        YOUR_POINTS: "Vos points",
        TIER: "Niveau",
        TIER_CHANGED: "Niveau : %@",
        NEXT_TIER: "Niveau suivant",
    },
    "de": {
        STAMPS: "Stempel",
        POINTS: "Punkte",
        REWARD: "Prämie",
        MEMBER: "Mitglied",
        CARD_NUMBER: "Kartennummer",
        PROGRAM: "Programm",
        STAMPS_CHANGED: "Stempel: %@",
        POINTS_CHANGED: "Punkte: %@",
        PENDING: "Ausstehende Punkte",
        EXPIRING: "Verfallende Punkte",
        EXPIRES_ON: "Verfallsdatum",
        YOUR_POINTS: "Ihre Punkte",
        TIER: "Stufe",
        TIER_CHANGED: "Stufe: %@",
        NEXT_TIER: "Nächste Stufe",
    },
    "lb": {
        STAMPS: "Stempelen",
        POINTS: "Punkten",
        REWARD: "Belounung",
        MEMBER: "Member",
        CARD_NUMBER: "Kaartennummer",
        PROGRAM: "Programm",
        STAMPS_CHANGED: "Stempelen: %@",
        POINTS_CHANGED: "Punkten: %@",
        PENDING: "Ausstoend Punkten",
        EXPIRING: "Punkten, déi oflafen",
        EXPIRES_ON: "Oflafdatum",
        YOUR_POINTS: "Är Punkten",
        TIER: "Niveau",
        TIER_CHANGED: "Niveau: %@",
        NEXT_TIER: "Nächsten Niveau",
    },
}


# Sentences of pending points and of the next expiry, ``(one, many)``: ``{points}`` is the
# number, ``{day}`` a ``day_text``. Not labels: Google's text module and the customer's card
# page write them out, in the card's language.
PENDING_TEXT: dict[str, tuple[str, str]] = {
    "en": ("{points} point pending", "{points} points pending"),
    "fr": ("{points} point en attente", "{points} points en attente"),
    "de": ("{points} Punkt ausstehend", "{points} Punkte ausstehend"),
    "lb": ("{points} Punkt ausstoend", "{points} Punkten ausstoend"),
}
EXPIRY_TEXT: dict[str, tuple[str, str]] = {
    "en": ("{points} point expires on {day}", "{points} points expire on {day}"),
    "fr": ("{points} point expire le {day}", "{points} points expirent le {day}"),
    "de": ("{points} Punkt verfällt am {day}", "{points} Punkte verfallen am {day}"),
    "lb": ("{points} Punkt leeft den {day} of", "{points} Punkte lafen den {day} of"),
}
# What the next tier takes, ``(one, many)``: ``{points}`` still missing, ``{tier}`` its name
# (the merchant's word, as it is). The card page, Apple's back and Google's module say it.
TIER_PROGRESS_TEXT: dict[str, tuple[str, str]] = {
    "en": ("{points} point to {tier}", "{points} points to {tier}"),
    "fr": ("Encore {points} point avant {tier}", "Encore {points} points avant {tier}"),
    "de": ("Noch {points} Punkt bis {tier}", "Noch {points} Punkte bis {tier}"),
    "lb": ("Nach {points} Punkt bis {tier}", "Nach {points} Punkten bis {tier}"),
}
MONTHS: dict[str, tuple[str, ...]] = {
    "en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
    "fr": (
        "janv.", "févr.", "mars", "avr.", "mai", "juin",
        "juil.", "août", "sept.", "oct.", "nov.", "déc.",
    ),
    "de": (
        "Jan.", "Feb.", "März", "Apr.", "Mai", "Juni",
        "Juli", "Aug.", "Sept.", "Okt.", "Nov.", "Dez.",
    ),
    "lb": (
        "Jan.", "Feb.", "Mäe.", "Abr.", "Mee", "Juni",
        "Juli", "Aug.", "Sep.", "Okt.", "Nov.", "Dez.",
    ),
}  # fmt: skip


def _locale(locale: str) -> str:
    return locale if locale in SUPPORTED_LOCALES else "en"


def day_text(day: date, locale: str, *, year: bool = True) -> str:
    """A day in words: ``31 Dec 2026``, ``1er janv. 2027``, ``31. Dez. 2026``; without the
    year when ``year`` is false."""
    locale = _locale(locale)
    month = MONTHS[locale][day.month - 1]
    if locale == "en":
        text = f"{day.day} {month}"
    elif locale == "fr":
        text = f"{'1er' if day.day == 1 else day.day} {month}"
    else:
        text = f"{day.day}. {month}"
    return f"{text} {day.year}" if year else text


def pending_text(points: int, locale: str) -> str:
    """``40 points pending`` in ``locale``."""
    one, many = PENDING_TEXT[_locale(locale)]
    return (one if points == 1 else many).format(points=points)


def expiry_text(points: int, day: date, locale: str, *, year: bool = True) -> str:
    """``120 points expire on 31 Dec 2026`` in ``locale`` (``day``: the last day to spend
    them)."""
    locale = _locale(locale)
    one, many = EXPIRY_TEXT[locale]
    return (one if points == 1 else many).format(
        points=points, day=day_text(day, locale, year=year)
    )


def tier_progress_text(points: int, tier: str, locale: str) -> str:
    """``230 points to Gold`` in ``locale`` (``tier``: the next tier's name)."""
    one, many = TIER_PROGRESS_TEXT[_locale(locale)]
    return (one if points == 1 else many).format(points=points, tier=tier)


def tier_text(tier: str, next_tier: tuple[int, str] | None, locale: str) -> str:
    """``Silver · 230 points to Gold``; at the top tier, the tier alone."""
    if next_tier is None:
        return tier
    return f"{tier} · {tier_progress_text(*next_tier, locale)}"


def translate(key: str, locale: str) -> str:
    """The label ``key`` in ``locale`` (English when the locale is not one of ours)."""
    return TRANSLATIONS.get(locale, TRANSLATIONS["en"])[key]


def localized_string(key: str, default_locale: str) -> dict[str, object]:
    """Google Wallet's ``LocalizedString`` of a label: the card's language as the default,
    the other languages as translations, so a device in another language still gets its own.
    """
    return localized_values({loc: translate(key, loc) for loc in SUPPORTED_LOCALES}, default_locale)


def localized_values(values: dict[str, str], default_locale: str) -> dict[str, object]:
    """Google Wallet's ``LocalizedString`` of a text given in every language (by locale)."""
    return {
        "defaultValue": {"language": default_locale, "value": values[default_locale]},
        "translatedValues": [
            {"language": loc, "value": values[loc]}
            for loc in SUPPORTED_LOCALES
            if loc != default_locale
        ],
    }


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")


def strings_file(locale: str, extra: Mapping[str, str] | None = None) -> bytes:
    """Apple's ``pass.strings`` for ``locale``, encoded UTF-16 (little endian, with BOM);
    ``extra``: the pass's own sentences (a field's English value as the key, the sentence in
    ``locale`` as its value), after the labels.

    UTF-16 is the encoding Apple's Wallet guide names for ``.strings`` files; recent iOS
    also reads UTF-8, but UTF-16 with a BOM is read by every iOS version that has Wallet
    and leaves no room for a wrong guess of the encoding. Size does not matter inside a zip.
    """
    entries = dict(TRANSLATIONS[locale])
    for key, value in (extra or {}).items():
        entries.setdefault(key, value)  # a label keeps its own translation
    lines = [f'"{_escape(k)}" = "{_escape(v)}";' for k, v in entries.items()]
    return b"\xff\xfe" + ("\n".join(lines) + "\n").encode("utf-16-le")
