"""Start-up checks of the Apple Wallet configuration.

Some mistakes are not caught when a pass is built or signed, only by Wallet on a customer's
phone, which refuses the pass without saying why: a team identifier that is not the team of
the pass type ID certificate, or a web service URL that is not https. The processes that
build or push passes (``loyalty admin``, ``loyalty wallet-sync``, ``loyalty run``) call
:func:`check_apple_wallet` when they start and refuse to start with its message.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from cryptography.x509.oid import NameOID

from wallet.credentials import load_certificate
from wallet.errors import WalletConfigError
from wallet.settings import WalletSettings

TEAM_ID_SETTING = "LOYALTY_WALLET_APPLE_TEAM_ID"
WEB_SERVICE_URL_SETTING = "LOYALTY_WALLET_APPLE_WEB_SERVICE_URL"
ALLOW_LOOPBACK_HTTP_SETTING = "LOYALTY_WALLET_APPLE_WEB_SERVICE_ALLOW_LOOPBACK_HTTP"


def is_loopback_host(host: str | None) -> bool:
    """True for ``localhost`` and loopback IP addresses (``127.0.0.0/8``, ``::1``)."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def team_id_problem(settings: WalletSettings) -> str | None:
    """What is wrong with the team identifier against the pass type ID certificate, or None.

    Apple's pass type ID certificates carry the team in the subject's organizational unit
    (OU). Nothing to compare when either the team or the certificate is not configured.
    Raises :class:`WalletConfigError` when the certificate cannot be read.
    """
    if not settings.apple_team_id or not settings.apple_signer_cert_path:
        return None
    certificate = load_certificate(settings.apple_signer_cert_path, "pass signing certificate")
    teams = [
        str(attribute.value)
        for attribute in certificate.subject.get_attributes_for_oid(
            NameOID.ORGANIZATIONAL_UNIT_NAME
        )
    ]
    if not teams:
        return (
            f"{TEAM_ID_SETTING}: the certificate at {settings.apple_signer_cert_path} names no "
            "team (OU); is it an Apple pass type ID certificate?"
        )
    if settings.apple_team_id not in teams:
        return f"{TEAM_ID_SETTING}: does not match the certificate's team (OU) {', '.join(teams)}"
    return None


def web_service_url_problem(settings: WalletSettings) -> str | None:
    """What is wrong with the PassKit web service URL, or None (also when it is unset).

    Wallet only talks https to a web service. Plain http is accepted for a loopback host
    when ``apple_web_service_allow_loopback_http`` says so (local tests and simulators:
    no phone can reach a loopback address anyway).
    """
    url = settings.apple_web_service_url
    if not url:
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return f"{WEB_SERVICE_URL_SETTING}: not a URL"
    if not host:
        return f"{WEB_SERVICE_URL_SETTING}: has no host"
    if parts.scheme == "https":
        return None
    if parts.scheme == "http" and is_loopback_host(host):
        if settings.apple_web_service_allow_loopback_http:
            return None
        return (
            f"{WEB_SERVICE_URL_SETTING}: must be https (Wallet refuses http); for a loopback "
            f"test set-up set {ALLOW_LOOPBACK_HTTP_SETTING}=true"
        )
    return f"{WEB_SERVICE_URL_SETTING}: must be https, Wallet refuses {parts.scheme or 'it'}"


def check_apple_wallet(settings: WalletSettings) -> None:
    """Raise :class:`WalletConfigError` naming every wrong Apple Wallet setting.

    Does nothing while Apple Wallet is disabled (its settings incomplete): there are no
    passes then, and the disabled wallet is logged elsewhere.
    """
    if not settings.apple_enabled:
        return
    problems = [p for p in (team_id_problem(settings), web_service_url_problem(settings)) if p]
    if problems:
        raise WalletConfigError("; ".join(problems))
