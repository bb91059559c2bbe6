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
    "check_inbox": {
        "en": "Check your inbox: we sent you a link to your card.",
        "fr": "Consultez votre boîte de réception : nous vous avons envoyé un lien vers votre "
        "carte.",
        "de": "Sehen Sie in Ihr Postfach: Wir haben Ihnen einen Link zu Ihrer Karte geschickt.",
        "lb": "Kuckt an Är Mailbox: Mir hunn Iech e Link op Är Kaart geschéckt.",
    },
    "check_inbox_detail": {
        "en": "It can take a few minutes. No message? Check your spam folder, or ask at the "
        "counter.",
        "fr": "Cela peut prendre quelques minutes. Pas de message ? Regardez dans vos spams, ou "
        "demandez en caisse.",
        "de": "Das kann ein paar Minuten dauern. Keine Nachricht? Sehen Sie im Spam-Ordner nach "
        "oder fragen Sie an der Kasse.",
        "lb": "Dat ka puer Minutten daueren. Kee Message? Kuckt an Ärem Spam-Dossier, oder frot "
        "un der Keess.",
    },
    "ask_at_counter": {
        "en": "Thank you! Please ask at the counter for your card: our staff will find it with "
        "your email.",
        "fr": "Merci ! Demandez votre carte en caisse : notre équipe la retrouvera avec votre "
        "e-mail.",
        "de": "Danke! Fragen Sie bitte an der Kasse nach Ihrer Karte: Unser Personal findet sie "
        "mit Ihrer E-Mail.",
        "lb": "Merci! Frot w.e.g. un der Keess no Ärer Kaart: Eist Personal fënnt se mat Ärer "
        "E-Mail.",
    },
    "rate_limited": {
        "en": "Too many requests. Please wait a while, then try again.",
        "fr": "Trop de demandes. Patientez un moment, puis réessayez.",
        "de": "Zu viele Anfragen. Bitte warten Sie eine Weile und versuchen Sie es dann erneut.",
        "lb": "Ze vill Ufroen. Waart w.e.g. eng Zäit a probéiert dann nach eng Kéier.",
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
    for tag in accepted_languages(accept_language):
        lang = tag.lower().split("-", 1)[0]
        if lang in LANGUAGES:
            return lang
    return "en"


def accepted_languages(accept_language: str | None) -> list[str]:
    """The language tags of an ``Accept-Language`` header, most wanted first (by ``q``, then
    by order); those refused (``q=0``) or unreadable left out."""
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if tag.strip() and quality > 0:
            ranked.append((-quality, i, tag.strip()))
    return [tag for _, _, tag in sorted(ranked)]
