"""Email to customers: the card link that self-enrolment sends, over SMTP (aiosmtplib).

The message says the same whether the card was just made or existed already, so the inbox is
the only place that learns which; the enrol page itself never tells. Addresses and links are
personal data and secrets: they never reach a log line (a failure logs the SMTP error class).
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, make_msgid

import aiosmtplib

from core.logs import get_logger
from core.settings import Settings

log = get_logger(__name__)

LANGUAGES = ("en", "fr", "de", "lb")

_CARD_LINK: dict[str, dict[str, str]] = {
    "en": {
        "subject": "Your {merchant} loyalty card",
        "body": "Hello,\n\nhere is the link to your {merchant} loyalty card:\n\n{link}\n\n"
        "Open it on your phone and show the QR code at the checkout. From the card's page you "
        "can also add it to your phone's wallet.\n\nKeep this link to yourself: whoever has it "
        "can use your card.\n\nIf you did not ask for this card, you can ignore this message.\n",
    },
    "fr": {
        "subject": "Votre carte de fidélité {merchant}",
        "body": "Bonjour,\n\nvoici le lien vers votre carte de fidélité {merchant} :\n\n{link}\n\n"
        "Ouvrez-le sur votre téléphone et présentez le code QR en caisse. Depuis la page de la "
        "carte, vous pouvez aussi l'ajouter au portefeuille de votre téléphone.\n\nGardez ce "
        "lien pour vous : quiconque le possède peut utiliser votre carte.\n\nSi vous n'avez "
        "pas demandé cette carte, ignorez simplement ce message.\n",
    },
    "de": {
        "subject": "Ihre {merchant}-Treuekarte",
        "body": "Hallo,\n\nhier ist der Link zu Ihrer {merchant}-Treuekarte:\n\n{link}\n\n"
        "Öffnen Sie ihn auf Ihrem Telefon und zeigen Sie den QR-Code an der Kasse. Auf der "
        "Seite der Karte können Sie sie auch zur Wallet Ihres Telefons hinzufügen.\n\n"
        "Behalten Sie diesen Link für sich: Wer ihn hat, kann Ihre Karte benutzen.\n\n"
        "Wenn Sie diese Karte nicht angefordert haben, ignorieren Sie diese Nachricht.\n",
    },
    "lb": {
        "subject": "Är {merchant}-Treiekaart",
        "body": "Moien,\n\nhei ass de Link op Är {merchant}-Treiekaart:\n\n{link}\n\n"
        "Maacht en op Ärem Telefon op a weist de QR-Code un der Keess. Op der Säit vun der "
        "Kaart kënnt Dir se och an de Wallet vun Ärem Telefon derbäisetzen.\n\n"
        "Haalt dëse Link fir Iech: Wien en huet, kann Är Kaart benotzen.\n\n"
        "Wann Dir dës Kaart net ugefrot hutt, kënnt Dir dëse Message ignoréieren.\n",
    },
}


@dataclass(frozen=True)
class CardLinkMail:
    """What the card link message needs: who, in which language, for which merchant."""

    to: str
    language: str
    merchant_name: str
    link: str


def mail_configured(settings: Settings) -> bool:
    """Whether email can be sent at all (an SMTP host is set)."""
    return bool(settings.smtp_host)


def card_link_message(mail: CardLinkMail, sender: str) -> EmailMessage:
    """The card link message in the customer's language (English when it is not one of ours)."""
    texts = _CARD_LINK.get(mail.language, _CARD_LINK["en"])
    message = EmailMessage()
    message["From"] = formataddr((mail.merchant_name, sender))
    message["To"] = mail.to
    message["Subject"] = texts["subject"].format(merchant=mail.merchant_name)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message.set_content(texts["body"].format(merchant=mail.merchant_name, link=mail.link))
    # After set_content, which replaces every Content-* header.
    message["Content-Language"] = mail.language if mail.language in LANGUAGES else "en"
    return message


async def send(settings: Settings, message: EmailMessage) -> bool:
    """Send ``message`` through the configured SMTP server; False (and a log line without
    addresses) when it could not be delivered to the server."""
    if not settings.smtp_host:
        return False
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    try:
        await aiosmtplib.send(
            message,
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            use_tls=settings.smtp_tls == "tls",
            start_tls=settings.smtp_tls == "starttls",
            username=settings.smtp_user,
            password=password,
            timeout=settings.smtp_timeout_s,
        )
    except (aiosmtplib.SMTPException, OSError) as exc:
        log.warning("mail_not_sent", error=type(exc).__name__)
        return False
    return True
