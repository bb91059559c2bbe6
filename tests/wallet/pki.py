"""Test certificates: stand-ins for Apple's root, the WWDR G4 intermediate, pass signers
and TLS servers, made with ``cryptography`` so no Apple file is ever needed."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PASS_TYPE_ID = "pass.lu.example.loyalty"
TEAM_ID = "A1B2C3D4E5"


@dataclass(frozen=True)
class Issued:
    """A certificate and its key."""

    cert: x509.Certificate
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self, password: bytes | None = None) -> bytes:
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(password)
            if password
            else serialization.NoEncryption()
        )
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )


def _name(**attrs: str) -> x509.Name:
    oids = {
        "cn": NameOID.COMMON_NAME,
        "o": NameOID.ORGANIZATION_NAME,
        "ou": NameOID.ORGANIZATIONAL_UNIT_NAME,
        "uid": NameOID.USER_ID,
        "c": NameOID.COUNTRY_NAME,
    }
    return x509.Name([x509.NameAttribute(oids[k], v) for k, v in attrs.items()])


def issue(
    subject: x509.Name,
    *,
    issuer: Issued | None = None,
    ca: bool = False,
    path_length: int | None = None,
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | None = None,
    eku: list[x509.ObjectIdentifier] | None = None,
    san: list[x509.GeneralName] | None = None,
) -> Issued:
    """A certificate for ``subject``, self-signed when ``issuer`` is None."""
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.now(UTC)
    signer_key: CertificateIssuerPrivateKeyTypes = issuer.key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    else:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=isinstance(key, rsa.RSAPrivateKey),
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), False
        )
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return Issued(builder.sign(signer_key, hashes.SHA256()), key)


@dataclass(frozen=True)
class ApplePki:
    """The Apple-like chain, written to files: root, WWDR intermediate, pass signer."""

    root: Issued
    wwdr: Issued
    signer: Issued
    root_path: Path
    wwdr_path: Path
    signer_cert_path: Path
    signer_key_path: Path
    signer_key_password: str


def make_apple_pki(folder: Path, pass_type_id: str = PASS_TYPE_ID) -> ApplePki:
    """Write an Apple-shaped PKI to ``folder``; WWDR as DER like Apple ships it."""
    root = issue(_name(cn="Test Apple Root CA", o="Test Apple Inc.", c="US"), ca=True)
    wwdr = issue(
        _name(cn="Test Apple Worldwide Developer Relations CA", ou="G4", o="Test Apple Inc."),
        issuer=root,
        ca=True,
        path_length=0,
    )
    signer = issue(
        _name(uid=pass_type_id, cn=f"Pass Type ID: {pass_type_id}", ou=TEAM_ID, o="Example Sàrl"),
        issuer=wwdr,
        eku=[ExtendedKeyUsageOID.CLIENT_AUTH],
    )
    password = "s3cret-pass"
    paths = {
        "root": folder / "root.pem",
        "wwdr": folder / "AppleWWDRCAG4.cer",
        "cert": folder / "pass-cert.pem",
        "key": folder / "pass-key.pem",
    }
    paths["root"].write_bytes(root.cert_pem())
    paths["wwdr"].write_bytes(wwdr.cert.public_bytes(serialization.Encoding.DER))
    paths["cert"].write_bytes(signer.cert_pem())
    paths["key"].write_bytes(signer.key_pem(password.encode()))
    return ApplePki(
        root=root,
        wwdr=wwdr,
        signer=signer,
        root_path=paths["root"],
        wwdr_path=paths["wwdr"],
        signer_cert_path=paths["cert"],
        signer_key_path=paths["key"],
        signer_key_password=password,
    )


@dataclass(frozen=True)
class TlsServerPki:
    """A CA and a server certificate for 127.0.0.1 / localhost, as files."""

    ca: Issued
    ca_path: Path
    cert_path: Path
    key_path: Path


def make_tls_server_pki(folder: Path) -> TlsServerPki:
    """A local CA and a 127.0.0.1 server certificate, the way APNs's TLS would look."""
    ca = issue(_name(cn="Test Local CA"), ca=True)
    server = issue(
        _name(cn="localhost"),
        issuer=ca,
        key=ec.generate_private_key(ec.SECP256R1()),
        eku=[ExtendedKeyUsageOID.SERVER_AUTH],
        san=[x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
    )
    (folder / "tls-ca.pem").write_bytes(ca.cert_pem())
    (folder / "tls-server.pem").write_bytes(server.cert_pem())
    (folder / "tls-server-key.pem").write_bytes(server.key_pem())
    return TlsServerPki(
        ca=ca,
        ca_path=folder / "tls-ca.pem",
        cert_path=folder / "tls-server.pem",
        key_path=folder / "tls-server-key.pem",
    )
