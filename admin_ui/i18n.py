"""The self-enrolment page's words in English, French, German and Luxembourgish."""

from __future__ import annotations

LANGUAGES = ("en", "fr", "de", "lb")
LANGUAGE_NAMES = {"en": "English", "fr": "Français", "de": "Deutsch", "lb": "Lëtzebuergesch"}

_TEXTS: dict[str, dict[str, str]] = {
    "title": {
        "en": "Join our loyalty program",
        "fr": "Rejoignez notre programme de fidélité",
        "de": "Treten Sie unserem Treueprogramm bei",
        "lb": "Maacht mat bei eisem Treieprogramm",
    },
    "intro": {
        "en": "Get your loyalty card for {merchant} in a few seconds.",
        "fr": "Recevez votre carte de fidélité {merchant} en quelques secondes.",
        "de": "Holen Sie sich Ihre Treuekarte von {merchant} in wenigen Sekunden.",
        "lb": "Kritt Är Treiekaart vun {merchant} an e puer Sekonnen.",
    },
    "email": {"en": "Email", "fr": "E-mail", "de": "E-Mail", "lb": "E-Mail"},
    "first_name": {"en": "First name", "fr": "Prénom", "de": "Vorname", "lb": "Virnumm"},
    "last_name": {"en": "Last name", "fr": "Nom", "de": "Nachname", "lb": "Familljennumm"},
    "language": {"en": "Language", "fr": "Langue", "de": "Sprache", "lb": "Sprooch"},
    "submit": {
        "en": "Get my card",
        "fr": "Obtenir ma carte",
        "de": "Meine Karte erhalten",
        "lb": "Meng Kaart kréien",
    },
    "invalid_email": {
        "en": "Please enter a valid email address.",
        "fr": "Veuillez saisir une adresse e-mail valide.",
        "de": "Bitte geben Sie eine gültige E-Mail-Adresse ein.",
        "lb": "Gitt w.e.g. eng gëlteg E-Mail-Adress an.",
    },
    "invalid_name": {
        "en": "A name is at most 100 characters long.",
        "fr": "Un nom compte au plus 100 caractères.",
        "de": "Ein Name hat höchstens 100 Zeichen.",
        "lb": "En Numm huet héchstens 100 Zeechen.",
    },
    "welcome": {
        "en": "Welcome! Here is your card.",
        "fr": "Bienvenue ! Voici votre carte.",
        "de": "Willkommen! Hier ist Ihre Karte.",
        "lb": "Wëllkomm! Hei ass Är Kaart.",
    },
    "already_enrolled": {
        "en": "You already have a card: here it is.",
        "fr": "Vous avez déjà une carte : la voici.",
        "de": "Sie haben bereits eine Karte: Hier ist sie.",
        "lb": "Dir hutt schonn eng Kaart: hei ass se.",
    },
    "self_enrollment_disabled": {
        "en": "Online sign-up is not available here. Please ask our staff for a card.",
        "fr": "L'inscription en ligne n'est pas disponible ici. Demandez une carte à notre équipe.",
        "de": "Die Online-Anmeldung ist hier nicht möglich. Bitte fragen Sie unser Personal.",
        "lb": "D'Online-Umeldung ass hei net méiglech. Frot w.e.g. eist Personal no enger Kaart.",
    },
    "program_unavailable": {
        "en": "The loyalty program is not available at the moment.",
        "fr": "Le programme de fidélité n'est pas disponible pour le moment.",
        "de": "Das Treueprogramm ist derzeit nicht verfügbar.",
        "lb": "D'Treieprogramm ass de Moment net disponibel.",
    },
    "not_found": {
        "en": "This shop does not exist.",
        "fr": "Ce magasin n'existe pas.",
        "de": "Dieses Geschäft gibt es nicht.",
        "lb": "Dëse Buttek gëtt et net.",
    },
    "card_number": {
        "en": "Card number",
        "fr": "Numéro de carte",
        "de": "Kartennummer",
        "lb": "Kaartennummer",
    },
    "show_at_till": {
        "en": "Show this code at the till to collect your rewards.",
        "fr": "Présentez ce code en caisse pour cumuler vos avantages.",
        "de": "Zeigen Sie diesen Code an der Kasse, um Vorteile zu sammeln.",
        "lb": "Weist dëse Code un der Keess fir Är Virdeeler ze sammelen.",
    },
    "apple_wallet": {
        "en": "Add to Apple Wallet",
        "fr": "Ajouter à Apple Wallet",
        "de": "Zu Apple Wallet hinzufügen",
        "lb": "Op Apple Wallet derbäisetzen",
    },
    "google_wallet": {
        "en": "Save to Google Wallet",
        "fr": "Enregistrer dans Google Wallet",
        "de": "In Google Wallet speichern",
        "lb": "Am Google Wallet späicheren",
    },
    "open_card": {
        "en": "Open my card",
        "fr": "Ouvrir ma carte",
        "de": "Meine Karte öffnen",
        "lb": "Meng Kaart opmaachen",
    },
    "error": {
        "en": "Something went wrong. Please try again.",
        "fr": "Une erreur est survenue. Veuillez réessayer.",
        "de": "Etwas ist schiefgelaufen. Bitte versuchen Sie es erneut.",
        "lb": "Eppes ass schifgaang. Probéiert w.e.g. nach eng Kéier.",
    },
}


def t(key: str, lang: str, **values: str) -> str:
    """The text ``key`` in ``lang`` (English when it has no translation)."""
    texts = _TEXTS[key]
    text = texts.get(lang) or texts["en"]
    return text.format(**values) if values else text


def pick_language(query: str | None, accept_language: str | None) -> str:
    """``?lang=`` when it is one of ours, else the best of ``Accept-Language``, else English."""
    if query:
        lang = query.strip().lower().replace("_", "-").split("-", 1)[0]
        if lang in LANGUAGES:
            return lang
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate((accept_language or "").split(",")):
        piece = part.strip()
        if not piece:
            continue
        tag, _, params = piece.partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        lang = tag.strip().lower().split("-", 1)[0]
        if lang in LANGUAGES and quality > 0:
            ranked.append((-quality, i, lang))
    return min(ranked)[2] if ranked else "en"
