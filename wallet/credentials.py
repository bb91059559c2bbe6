"""Reading certificates and private keys, PEM or DER, with clear errors.

Apple hands out certificates as DER (``.cer``) and people convert them to PEM, so both are
accepted wherever a path is configured.
"""

from __future__ import annotations

import os
import secrets
import ssl
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from pydantic import SecretStr

from wallet.errors import WalletConfigError


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise WalletConfigError(f"cannot read the {what} at {path}: {exc.strerror}") from exc


def load_certificate(path: Path, what: str = "certificate") -> x509.Certificate:
    """The first certificate of a PEM or DER file."""
    data = _read(path, what)
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise WalletConfigError(f"the {what} at {path} is not a PEM or DER certificate") from exc


def load_private_key(
    path: Path, password: SecretStr | None = None, what: str = "private key"
) -> PrivateKeyTypes:
    """A PEM or DER private key, decrypted with ``password`` when given."""
    data = _read(path, what)
    secret = password.get_secret_value().encode() if password else None
    try:
        if b"-----BEGIN" in data:
            return serialization.load_pem_private_key(data, password=secret)
        return serialization.load_der_private_key(data, password=secret)
    except (ValueError, TypeError) as exc:
        # Never echo the password; say what is wrong with the file.
        raise WalletConfigError(
            f"cannot load the {what} at {path}: wrong password, or not a PEM/DER key"
        ) from exc


def same_key_pair(certificate: x509.Certificate, key: PrivateKeyTypes) -> bool:
    """True when ``key`` is the private half of ``certificate``'s public key."""
    fmt = serialization.PublicFormat.SubjectPublicKeyInfo
    enc = serialization.Encoding.DER
    return bool(
        certificate.public_key().public_bytes(enc, fmt) == key.public_key().public_bytes(enc, fmt)
    )


def load_client_cert_chain(
    context: ssl.SSLContext, cert_path: Path, key_path: Path, password: SecretStr | None
) -> None:
    """Load a client certificate and key (PEM or DER) into an SSL context.

    ``ssl`` only reads PEM files, so both are re-written as PEM to a private temporary file,
    the key encrypted with a one-off password, and the file is removed right after loading.
    """
    certificate = load_certificate(cert_path, "APNs client certificate")
    key = load_private_key(key_path, password, "APNs client key")
    if not same_key_pair(certificate, key):
        raise WalletConfigError(f"the APNs key at {key_path} does not match the certificate")
    one_off = secrets.token_urlsafe(24)
    pem = certificate.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(one_off.encode()),
    )
    fd, name = tempfile.mkstemp(prefix="apns-", suffix=".pem")  # created 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        context.load_cert_chain(name, password=one_off)
    finally:
        os.unlink(name)
