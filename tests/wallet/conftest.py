"""Fixtures of the wallet tests: generated PKI, settings pointing at it, sample cards."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr

from tests.support.wallet_fakes import (
    apple_pki,
    no_outside_network,
    no_regional_access_boundary_lookup,
)
from tests.wallet.pki import PASS_TYPE_ID, TEAM_ID, ApplePki
from wallet.cards import PassCard, ProgramType
from wallet.settings import WalletSettings

WEB_SERVICE_URL = "https://loyalty.example.lu/passkit"


@pytest.fixture
def apple_settings(apple_pki: ApplePki) -> WalletSettings:
    """Wallet settings with Apple pass signing switched on (nothing read from the env)."""
    return WalletSettings(
        _env_file=None,
        apple_pass_type_id=PASS_TYPE_ID,
        apple_team_id=TEAM_ID,
        apple_signer_cert_path=apple_pki.signer_cert_path,
        apple_signer_key_path=apple_pki.signer_key_path,
        apple_signer_key_password=SecretStr(apple_pki.signer_key_password),
        apple_wwdr_cert_path=apple_pki.wwdr_path,
        apple_web_service_url=WEB_SERVICE_URL,
    )


def card(**overrides: Any) -> PassCard:
    """A hybrid card of Café Lux, with any field overridden."""
    values: dict[str, Any] = {
        "card_number": "1234-5678-9012",
        "merchant_code": "cafe-lux",
        "merchant_name": "Café Lux",
        "program_name": "Café Lux Fidélité",
        "program_type": ProgramType.HYBRID,
        "qr_token": "qr-7f3a9c2e5b1d4a8f",
        "authentication_token": "auth-0123456789abcdef0123",
        "updated_at": datetime(2026, 3, 14, 9, 26, 53, tzinfo=UTC),
        "customer_name": "Anna Muller",
        "stamp_count": 3,
        "stamps_target": 10,
        "points_balance": 1250,
        "reward_description": "Free coffee",
        "background_color": "#6B2C1A",
        "foreground_color": "#FFFFFF",
        "label_color": "#F5D6A8",
        "locale": "fr",
    }
    values.update(overrides)
    return PassCard(**values)


@pytest.fixture
def make_card() -> Callable[..., PassCard]:
    """Build a sample card: ``make_card(stamp_count=4)``."""
    return card
