"""Apple Wallet ``.pkpass`` bundles: ``pass.json``, images, localisations, manifest, signature.

A ``.pkpass`` is a zip of the pass files, ``manifest.json`` (the SHA-1 of every file) and
``signature``: a detached PKCS#7 signature of ``manifest.json`` made with the pass type ID
certificate, carrying Apple's WWDR intermediate so the device can build the chain to its
Apple root. Wallet refuses a pass whose zip holds a file that the manifest does not list.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from wallet import i18n
from wallet.cards import SUPPORTED_LOCALES, PassCard, parse_hex_color
from wallet.credentials import load_certificate, load_private_key, same_key_pair
from wallet.errors import WalletConfigError
from wallet.images import ICON_SIZE, LOGO_MAX_SIZE, default_icon, default_logo, fit_image
from wallet.settings import WalletSettings

MANIFEST = "manifest.json"
SIGNATURE = "signature"
PKPASS_MIME_TYPE = "application/vnd.apple.pkpass"

# The earliest time a zip entry can carry (the DOS epoch).
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def rgb(hex_color: str) -> str:
    """Apple's colour syntax, ``rgb(r, g, b)``, of a hex colour."""
    r, g, b = parse_hex_color(hex_color)
    return f"rgb({r}, {g}, {b})"


@dataclass(frozen=True)
class PassSigner:
    """The pass type ID certificate and key, and Apple's WWDR intermediate.

    Build it once per process with :meth:`from_settings` (it reads and checks the files);
    :func:`build_pkpass` does that itself when none is given.
    """

    certificate: x509.Certificate
    private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    wwdr_certificate: x509.Certificate

    @classmethod
    def from_settings(cls, settings: WalletSettings) -> PassSigner:
        """Load and cross-check the signing material named by ``settings``."""
        reason = settings.apple_disabled_reason()
        if reason:
            raise WalletConfigError(f"Apple Wallet is disabled: {reason}")
        assert settings.apple_signer_cert_path and settings.apple_signer_key_path
        assert settings.apple_wwdr_cert_path
        certificate = load_certificate(settings.apple_signer_cert_path, "pass signing certificate")
        key = load_private_key(
            settings.apple_signer_key_path, settings.apple_signer_key_password, "pass signing key"
        )
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise WalletConfigError("the pass signing key must be an RSA or EC key")
        if not same_key_pair(certificate, key):
            raise WalletConfigError("the pass signing key does not match the signing certificate")
        # Apple's pass certificates name their pass type ID in the subject's UID; a mismatch
        # makes Wallet reject every pass, so say it here instead of on a customer's phone.
        uids = certificate.subject.get_attributes_for_oid(NameOID.USER_ID)
        if uids and uids[0].value != settings.apple_pass_type_id:
            raise WalletConfigError(
                f"the signing certificate is for {uids[0].value!r}, "
                f"not LOYALTY_WALLET_APPLE_PASS_TYPE_ID {settings.apple_pass_type_id!r}"
            )
        wwdr = load_certificate(settings.apple_wwdr_cert_path, "Apple WWDR certificate")
        return cls(certificate=certificate, private_key=key, wwdr_certificate=wwdr)

    def sign(self, manifest: bytes) -> bytes:
        """The detached DER PKCS#7 signature of ``manifest`` (SHA-256, binary content)."""
        return (
            pkcs7.PKCS7SignatureBuilder()
            .set_data(manifest)
            .add_signer(self.certificate, self.private_key, hashes.SHA256())
            .add_certificate(self.wwdr_certificate)
            .sign(
                serialization.Encoding.DER,
                # Binary: sign the bytes as they are, no MIME canonicalisation of line ends.
                [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary],
            )
        )


def _field(key: str, label: str, value: str | int, **extra: Any) -> dict[str, Any]:
    return {"key": key, "label": label, "value": value, **extra}


def store_card_fields(card: PassCard) -> dict[str, list[dict[str, Any]]]:
    """The ``storeCard`` field groups. Labels are :mod:`wallet.i18n` keys, localised by
    the ``.lproj/pass.strings`` files (and so is the next tier's sentence). The tier, when
    the program has tiers, is the one auxiliary field: with the reward and the member, three
    of the four places a store card's front has below its balance."""
    stamps = _field("stamps", i18n.STAMPS, card.stamps_text, changeMessage=i18n.STAMPS_CHANGED)
    points = _field(
        "points",
        i18n.POINTS,
        card.points_balance,
        numberStyle="PKNumberStyleDecimal",
        changeMessage=i18n.POINTS_CHANGED,
    )
    kind = card.program_type
    header: list[dict[str, Any]] = []
    if kind.stamps_enabled:
        primary = [stamps]
        if kind.points_enabled:
            header.append(points)
    else:
        primary = [points]
    secondary: list[dict[str, Any]] = []
    if card.reward_description:
        secondary.append(_field("reward", i18n.REWARD, card.reward_description))
    if card.customer_name:
        secondary.append(_field("member", i18n.MEMBER, card.customer_name))
    auxiliary: list[dict[str, Any]] = []
    if card.tier_name:
        # On the front (CONTRACT.md 7.4): the tier's name, the merchant's word, as it is.
        auxiliary.append(_field("tier", i18n.TIER, card.tier_name, changeMessage=i18n.TIER_CHANGED))
    back = [
        *_tier_back_fields(card),
        *_points_back_fields(card),
        _field("card_number", i18n.CARD_NUMBER, card.card_number),
        _field("program", i18n.PROGRAM, card.program_name),
    ]
    groups = {
        "headerFields": header,
        "primaryFields": primary,
        "secondaryFields": secondary,
        "auxiliaryFields": auxiliary,
        "backFields": back,
    }
    return {name: fields for name, fields in groups.items() if fields}


def _tier_back_fields(card: PassCard) -> list[dict[str, Any]]:
    """What the next tier takes, ``230 points to Gold`` (none at the top tier): the English
    sentence as the value, which each language's ``pass.strings`` turns into its own
    (:func:`pass_sentences`)."""
    next_tier = card.next_tier
    if next_tier is None:
        return []
    return [_field("next_tier", i18n.NEXT_TIER, i18n.tier_progress_text(*next_tier, "en"))]


def pass_sentences(card: PassCard) -> dict[str, dict[str, str]]:
    """The pass's own sentences by language, for its ``pass.strings``: a field's English
    value and what it says in that language (the labels are :mod:`wallet.i18n`'s)."""
    next_tier = card.next_tier
    if next_tier is None:
        return {}
    key = i18n.tier_progress_text(*next_tier, "en")
    return {
        locale: {key: i18n.tier_progress_text(*next_tier, locale)} for locale in SUPPORTED_LOCALES
    }


def _points_back_fields(card: PassCard) -> list[dict[str, Any]]:
    """Pending points and the next expiry (CONTRACT.md 7.2, 7.3), when there are any.

    Numbers and a date that Wallet formats in the device's language; the date is the last
    day the points can be spent, on the merchant's calendar, so it is shown as that day
    wherever the phone is (``ignoresTimeZone``).
    """
    if not card.program_type.points_enabled:
        return []
    fields: list[dict[str, Any]] = []
    if card.points_pending > 0:
        fields.append(
            _field("pending", i18n.PENDING, card.points_pending, numberStyle="PKNumberStyleDecimal")
        )
    expiry = card.next_expiry
    if expiry is not None:
        points, day = expiry
        fields.append(_field("expiring", i18n.EXPIRING, points, numberStyle="PKNumberStyleDecimal"))
        fields.append(
            _field(
                "expires_on",
                i18n.EXPIRES_ON,
                f"{day.isoformat()}T00:00:00Z",
                dateStyle="PKDateStyleMedium",
                timeStyle="PKDateStyleNone",
                ignoresTimeZone=True,
            )
        )
    return fields


def pass_json(card: PassCard, settings: WalletSettings) -> dict[str, Any]:
    """The ``pass.json`` document of ``card``."""
    document: dict[str, Any] = {
        "formatVersion": 1,
        "passTypeIdentifier": settings.apple_pass_type_id,
        "teamIdentifier": settings.apple_team_id,
        "serialNumber": card.serial_number,
        "organizationName": card.merchant_name,
        "description": card.program_name,
        "logoText": card.merchant_name,
        "backgroundColor": rgb(card.background_color),
        "foregroundColor": rgb(card.foreground_color),
        "labelColor": rgb(card.label_color),
        "barcodes": [
            {
                "format": "PKBarcodeFormatQR",
                "message": card.qr_token,
                "messageEncoding": "iso-8859-1",
                # Shown under the code so staff can type the number when a scanner fails.
                "altText": card.card_number,
            }
        ],
        "storeCard": store_card_fields(card),
    }
    if settings.apple_web_service_url:
        # Without a web service Wallet never asks for updates, and the token is useless.
        document["webServiceURL"] = settings.apple_web_service_url
        document["authenticationToken"] = card.authentication_token
    if not card.is_active:
        document["voided"] = True
    return document


def pass_images(card: PassCard) -> dict[str, bytes]:
    """``icon.png``, ``icon@2x.png``, ``logo.png``, ``logo@2x.png``: the program's, or generated."""
    images: dict[str, bytes] = {}
    for scale, suffix in ((1, ""), (2, "@2x")):
        icon_box = (ICON_SIZE[0] * scale, ICON_SIZE[1] * scale)
        logo_box = (LOGO_MAX_SIZE[0] * scale, LOGO_MAX_SIZE[1] * scale)
        icon_source = card.icon or card.logo
        if icon_source is not None:
            icon = fit_image(icon_source, icon_box, square_background=card.background_color)
        else:
            icon = default_icon(
                card.merchant_name, card.background_color, card.foreground_color, scale
            )
        if card.logo is not None:
            logo = fit_image(card.logo, logo_box)
        else:
            logo = default_logo(
                card.merchant_name, card.background_color, card.foreground_color, scale
            )
        images[f"icon{suffix}.png"] = icon
        images[f"logo{suffix}.png"] = logo
    return images


def pass_files(card: PassCard, settings: WalletSettings) -> dict[str, bytes]:
    """Every file of the pass except ``manifest.json`` and ``signature``."""
    files = {
        # ensure_ascii=False: UTF-8 as Apple expects, names like "Café" stay readable.
        "pass.json": json.dumps(
            pass_json(card, settings), ensure_ascii=False, indent=2, sort_keys=True
        ).encode("utf-8"),
        **pass_images(card),
    }
    sentences = pass_sentences(card)
    for locale in SUPPORTED_LOCALES:
        files[f"{locale}.lproj/pass.strings"] = i18n.strings_file(locale, sentences.get(locale))
    return files


def manifest_json(files: dict[str, bytes]) -> bytes:
    """``manifest.json``: the SHA-1 hex digest of every file, by its path in the bundle."""
    # SHA-1 is Apple's manifest format; the signature over the manifest is SHA-256.
    return json.dumps(
        {
            name: hashlib.sha1(data, usedforsecurity=False).hexdigest()
            for name, data in sorted(files.items())
        },
        indent=2,
        sort_keys=True,
    ).encode("utf-8")


def _zip_time(moment: datetime) -> tuple[int, int, int, int, int, int]:
    utc = moment.astimezone(UTC)
    stamp = (utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second)
    return max(stamp, _ZIP_EPOCH)


def build_pkpass(
    card: PassCard, settings: WalletSettings, *, signer: PassSigner | None = None
) -> bytes:
    """The signed ``.pkpass`` of ``card`` (serve it as :data:`PKPASS_MIME_TYPE`).

    Raises :class:`~wallet.errors.WalletConfigError` when Apple Wallet is not configured,
    :class:`~wallet.images.InvalidImageError` when the program's logo or icon is unreadable.
    """
    signer = signer or PassSigner.from_settings(settings)
    files = pass_files(card, settings)
    manifest = manifest_json(files)
    signature = signer.sign(manifest)
    # Entries carry the card's update time, not the wall clock, so the same card state
    # zips to the same files (the signature's signing time still differs).
    stamp = _zip_time(card.updated_at)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as bundle:
        for name, data in [*sorted(files.items()), (MANIFEST, manifest), (SIGNATURE, signature)]:
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            bundle.writestr(info, data)
    return buf.getvalue()
