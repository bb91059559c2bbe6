"""Wallet configuration, from the environment (``LOYALTY_WALLET_*``).

Both wallets are optional: without their credentials they are disabled, and the caller logs
one line with :meth:`WalletSettings.apple_disabled_reason` /
:meth:`WalletSettings.google_disabled_reason` instead of failing at every card change.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

# Wallet pass updates always go through production APNs, even for development passes.
APNS_PRODUCTION_HOST = "api.push.apple.com"
GOOGLE_WALLET_API = "https://walletobjects.googleapis.com/walletobjects/v1"
GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL, not a secret


class WalletSettings(BaseSettings):
    """Every knob of the Apple and Google wallets. Paths point at PEM or DER files."""

    model_config = SettingsConfigDict(env_prefix="LOYALTY_WALLET_", extra="ignore")

    # --- Apple: pass signing -------------------------------------------------------------
    apple_pass_type_id: str | None = None
    apple_team_id: str | None = None
    apple_signer_cert_path: Path | None = None
    apple_signer_key_path: Path | None = None
    apple_signer_key_password: SecretStr | None = None
    apple_wwdr_cert_path: Path | None = None
    # Wallet calls it for registrations and updates; without it passes are static. It must
    # be https (checked at start-up: Wallet refuses anything else on the phone).
    apple_web_service_url: str | None = None
    # Accept an http web service URL on a loopback host (127.0.0.1, ::1, localhost), for
    # local tests and simulators only; any other http URL is refused at start-up regardless.
    apple_web_service_allow_loopback_http: bool = False
    # Where the admin app mounts the PassKit web service routes. Wallet appends "/v1/..." to
    # apple_web_service_url, so by default this is that URL's path (else "/passkit"); set it
    # only when a proxy rewrites the path on the way in.
    passkit_base_path: str | None = None

    # --- Apple: push notifications ---------------------------------------------------------
    apns_host: str = APNS_PRODUCTION_HOST
    apns_port: int = Field(default=443, ge=1, le=65535)
    # "auto" picks token auth when a .p8 key and its key id are set, else certificate auth.
    apns_auth: Literal["auto", "token", "certificate"] = "auto"
    apns_key_path: Path | None = None  # the .p8 auth key (token auth)
    apns_key_id: str | None = None
    # Certificate auth: Apple accepts the pass type ID certificate itself for Wallet pushes,
    # so these default to the signer's certificate and key.
    apns_cert_path: Path | None = None
    apns_cert_key_path: Path | None = None
    apns_cert_key_password: SecretStr | None = None
    apns_timeout_seconds: float = Field(default=10.0, gt=0)
    # A CA bundle replacing the system trust store for APNs (a corporate TLS proxy, tests).
    apns_ca_path: Path | None = None

    # --- Google Wallet -------------------------------------------------------------------
    google_issuer_id: str | None = None
    google_service_account_path: Path | None = None
    google_api_base_url: str = GOOGLE_WALLET_API
    # None keeps the token_uri of the service-account file (Google's token endpoint).
    google_token_url: str | None = None
    # Sites allowed to show the "Add to Google Wallet" button (JSON list in the environment).
    google_origins: list[str] = Field(default_factory=list)
    # Save links are JWTs; an `exp` lets a leaked link die instead of living forever.
    google_save_link_ttl_seconds: int = Field(default=30 * 24 * 3600, ge=60)
    google_max_attempts: int = Field(default=5, ge=1)
    google_timeout_seconds: float = Field(default=20.0, gt=0)

    # --- wallet sync (``loyalty wallet-sync``) ---------------------------------------------
    # Pushes answered 429/5xx (or lost on the network) are retried this many times in all,
    # waiting sync_backoff_seconds, then twice that, ...; then the card waits for the sweep.
    sync_apns_attempts: int = Field(default=3, ge=1, le=10)
    sync_backoff_seconds: float = Field(default=0.5, ge=0)
    # How often cards whose wallet lags their version are looked for and synced again
    # (failed ones back off: one sweep interval, then two, four... up to an hour).
    sync_sweep_interval_seconds: float = Field(default=60.0, gt=0)
    # Google Wallet calls in flight at once (each card is a GET and maybe a PATCH).
    sync_google_concurrency: int = Field(default=8, ge=1, le=64)

    # --- derived -------------------------------------------------------------------------
    def apple_disabled_reason(self) -> str | None:
        """Why Apple passes cannot be built (the missing settings), or None when they can."""
        missing = [
            name
            for name in (
                "apple_pass_type_id",
                "apple_team_id",
                "apple_signer_cert_path",
                "apple_signer_key_path",
                "apple_wwdr_cert_path",
            )
            if not getattr(self, name)
        ]
        if not missing:
            return None
        return "missing " + ", ".join(f"LOYALTY_WALLET_{m.upper()}" for m in missing)

    @property
    def apple_enabled(self) -> bool:
        """True when passes can be built and signed."""
        return self.apple_disabled_reason() is None

    @property
    def apns_auth_mode(self) -> Literal["token", "certificate"]:
        """The APNs authentication actually used."""
        if self.apns_auth != "auto":
            return self.apns_auth
        return "token" if self.apns_key_path and self.apns_key_id else "certificate"

    def apns_disabled_reason(self) -> str | None:
        """Why pass update pushes cannot be sent, or None when they can."""
        if not self.apple_pass_type_id:
            return "missing LOYALTY_WALLET_APPLE_PASS_TYPE_ID (the APNs topic)"
        if self.apns_auth_mode == "token":
            missing = [
                n for n in ("apple_team_id", "apns_key_path", "apns_key_id") if not getattr(self, n)
            ]
            if missing:
                names = ", ".join(f"LOYALTY_WALLET_{m.upper()}" for m in missing)
                return "token auth: missing " + names
            return None
        cert, key, _ = self.apns_client_cert()
        if cert is None or key is None:
            return (
                "certificate auth: missing LOYALTY_WALLET_APNS_CERT_PATH/APNS_CERT_KEY_PATH "
                "(or the signer's certificate and key)"
            )
        return None

    @property
    def apns_enabled(self) -> bool:
        """True when pass update pushes can be sent."""
        return self.apns_disabled_reason() is None

    def apns_client_cert(self) -> tuple[Path | None, Path | None, SecretStr | None]:
        """The certificate, key and key password for APNs certificate auth."""
        if self.apns_cert_path:
            # A PEM holding both certificate and key is common, hence the fallback.
            key = self.apns_cert_key_path or self.apns_cert_path
            return self.apns_cert_path, key, self.apns_cert_key_password
        return (
            self.apple_signer_cert_path,
            self.apple_signer_key_path,
            self.apple_signer_key_password,
        )

    def google_disabled_reason(self) -> str | None:
        """Why Google Wallet is off (the missing settings), or None when it is on."""
        missing = [
            f"LOYALTY_WALLET_{n.upper()}"
            for n in ("google_issuer_id", "google_service_account_path")
            if not getattr(self, n)
        ]
        return "missing " + ", ".join(missing) if missing else None

    @property
    def passkit_path(self) -> str:
        """The path prefix of the PassKit web service routes, ``""`` for the site's root.

        ``passkit_base_path`` when set, else the path of ``apple_web_service_url`` (Wallet
        calls ``<that URL>/v1/...``), else ``/passkit``.
        """
        if self.passkit_base_path is not None:
            path = self.passkit_base_path
        elif self.apple_web_service_url:
            path = urlsplit(self.apple_web_service_url).path
        else:
            path = "/passkit"
        path = path.strip("/")
        return f"/{path}" if path else ""

    @property
    def google_enabled(self) -> bool:
        """True when Google Wallet objects and save links can be made."""
        return self.google_disabled_reason() is None


@lru_cache(maxsize=1)
def get_wallet_settings() -> WalletSettings:
    """The process's wallet settings, read once."""
    return WalletSettings()
