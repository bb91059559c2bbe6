"""Apple and Google wallets: ``.pkpass`` building and signing, APNs update pushes, Google
Wallet classes, objects and save links. Plain values in (:class:`PassCard`,
:class:`PassProgram`, :class:`WalletSettings`), bytes, JSON and decisions out; the database
and Kafka stay with the callers."""

from wallet.apns import ApnsClient, ApnsTokenProvider, PushOutcome, PushResult
from wallet.apple_pass import PKPASS_MIME_TYPE, PassSigner, build_pkpass, pass_json
from wallet.cards import SUPPORTED_LOCALES, PassCard, PassProgram, ProgramType
from wallet.checks import check_apple_wallet
from wallet.errors import WalletConfigError, WalletError
from wallet.google import (
    AsyncGoogleWalletClient,
    GoogleWalletAuthError,
    GoogleWalletClient,
    GoogleWalletError,
    GoogleWalletRetryError,
    build_loyalty_class,
    build_loyalty_object,
    loyalty_class_id,
    loyalty_object_id,
    save_link,
)
from wallet.images import InvalidImageError
from wallet.settings import WalletSettings, get_wallet_settings

__all__ = [
    "PKPASS_MIME_TYPE",
    "SUPPORTED_LOCALES",
    "ApnsClient",
    "ApnsTokenProvider",
    "AsyncGoogleWalletClient",
    "GoogleWalletAuthError",
    "GoogleWalletClient",
    "GoogleWalletError",
    "GoogleWalletRetryError",
    "InvalidImageError",
    "PassCard",
    "PassProgram",
    "PassSigner",
    "ProgramType",
    "PushOutcome",
    "PushResult",
    "WalletConfigError",
    "WalletError",
    "WalletSettings",
    "build_loyalty_class",
    "build_loyalty_object",
    "build_pkpass",
    "check_apple_wallet",
    "get_wallet_settings",
    "loyalty_class_id",
    "loyalty_object_id",
    "pass_json",
    "save_link",
]
