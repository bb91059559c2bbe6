"""Errors of the wallet package, so callers can tell configuration from transient trouble."""

from __future__ import annotations


class WalletError(Exception):
    """Base of every error raised by ``wallet``."""


class WalletConfigError(WalletError):
    """A wallet is switched on but its settings or credential files are missing or wrong.

    Retrying does not help: an operator has to fix the configuration.
    """
