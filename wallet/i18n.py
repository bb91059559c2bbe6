"""Field labels of both wallets in the engine's four languages.

The keys are the English texts themselves: Wallet shows the raw key when a device's language
has no ``.lproj``, so an English key is a readable fallback rather than ``LABEL_STAMPS``.
"""

from __future__ import annotations

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
    },
}


def translate(key: str, locale: str) -> str:
    """The label ``key`` in ``locale`` (English when the locale is not one of ours)."""
    return TRANSLATIONS.get(locale, TRANSLATIONS["en"])[key]


def localized_string(key: str, default_locale: str) -> dict[str, object]:
    """Google Wallet's ``LocalizedString`` of a label: the card's language as the default,
    the other languages as translations, so a device in another language still gets its own.
    """
    return {
        "defaultValue": {"language": default_locale, "value": translate(key, default_locale)},
        "translatedValues": [
            {"language": loc, "value": translate(key, loc)}
            for loc in SUPPORTED_LOCALES
            if loc != default_locale
        ],
    }


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")


def strings_file(locale: str) -> bytes:
    """Apple's ``pass.strings`` for ``locale``, encoded UTF-16 (little endian, with BOM).

    UTF-16 is the encoding Apple's Wallet guide names for ``.strings`` files; recent iOS
    also reads UTF-8, but UTF-16 with a BOM is read by every iOS version that has Wallet
    and leaves no room for a wrong guess of the encoding. Size does not matter inside a zip.
    """
    lines = [f'"{_escape(k)}" = "{_escape(v)}";' for k, v in TRANSLATIONS[locale].items()]
    return b"\xff\xfe" + ("\n".join(lines) + "\n").encode("utf-16-le")
