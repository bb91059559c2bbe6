"""A .pkpass is checked the way an iPhone checks it: the CMS signature with the real openssl
CLI against the root, every SHA-1 of the manifest, the exact set of files, then the content."""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7
from PIL import Image
from pydantic import SecretStr

from tests.support.pkpass_check import openssl_verify, unpack
from tests.wallet.conftest import WEB_SERVICE_URL
from tests.wallet.pki import PASS_TYPE_ID, TEAM_ID, ApplePki, make_apple_pki
from wallet import i18n
from wallet.apple_pass import PassSigner, build_pkpass, rgb
from wallet.cards import SUPPORTED_LOCALES, PassCard, ProgramType
from wallet.errors import WalletConfigError
from wallet.images import InvalidImageError
from wallet.settings import WalletSettings

_STRINGS_LINE = re.compile(r'^"((?:[^"\\]|\\.)*)"\s*=\s*"((?:[^"\\]|\\.)*)";$')


def parse_strings(data: bytes) -> dict[str, str]:
    """A ``.strings`` file as Apple's parser reads it (UTF-16 with BOM, one pair a line)."""
    assert data.startswith(b"\xff\xfe"), "expected a UTF-16 LE byte-order mark"
    pairs: dict[str, str] = {}
    for line in data.decode("utf-16").splitlines():
        if not line.strip():
            continue
        match = _STRINGS_LINE.match(line)
        assert match, f"not a .strings line: {line!r}"
        key, value = (re.sub(r"\\(.)", r"\1", g) for g in match.groups())
        pairs[key] = value
    return pairs


def all_fields(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for group in document["storeCard"].values() for f in group]


@pytest.mark.parametrize("program_type", list(ProgramType))
def test_pkpass_verifies_like_apple(
    program_type: ProgramType,
    make_card: Callable[..., PassCard],
    apple_settings: WalletSettings,
    apple_pki: ApplePki,
    tmp_path: Path,
) -> None:
    card = make_card(program_type=program_type)
    files = unpack(build_pkpass(card, apple_settings), tmp_path)

    # The signature: detached CMS over manifest.json, verified to the (test) Apple root.
    result = openssl_verify(tmp_path, apple_pki, tmp_path / "manifest.json")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "verified.out").read_bytes() == files["manifest.json"]

    # Signer and WWDR travel inside the signature, so a device needs only its root.
    embedded = pkcs7.load_der_pkcs7_certificates(files["signature"])
    assert {c.subject for c in embedded} == {
        apple_pki.signer.cert.subject,
        apple_pki.wwdr.cert.subject,
    }

    # Every file is in the manifest with its SHA-1, and nothing else is in the zip.
    manifest = json.loads(files["manifest.json"])
    for name, digest in manifest.items():
        assert hashlib.sha1(files[name], usedforsecurity=False).hexdigest() == digest, name
    assert set(files) == set(manifest) | {"manifest.json", "signature"}
    expected = {"pass.json", "icon.png", "icon@2x.png", "logo.png", "logo@2x.png"}
    expected |= {f"{loc}.lproj/pass.strings" for loc in SUPPORTED_LOCALES}
    assert set(manifest) == expected


def test_tampered_manifest_fails_verification(
    make_card: Callable[..., PassCard],
    apple_settings: WalletSettings,
    apple_pki: ApplePki,
    tmp_path: Path,
) -> None:
    files = unpack(build_pkpass(make_card(), apple_settings), tmp_path)
    manifest = json.loads(files["manifest.json"])
    manifest["pass.json"] = "0" * 40  # what an attacker who edited pass.json would need
    tampered = tmp_path / "tampered-manifest.json"
    tampered.write_bytes(json.dumps(manifest, indent=2, sort_keys=True).encode())

    result = openssl_verify(tmp_path, apple_pki, tampered)
    assert result.returncode != 0
    assert "failure" in (result.stderr + result.stdout).lower()


def test_signature_from_another_root_fails(
    make_card: Callable[..., PassCard],
    apple_settings: WalletSettings,
    apple_pki: ApplePki,
    tmp_path: Path,
) -> None:
    """A pass signed by a certificate of someone else's chain must not verify."""
    (tmp_path / "stranger").mkdir()
    stranger = make_apple_pki(tmp_path / "stranger")
    settings = apple_settings.model_copy(
        update={
            "apple_signer_cert_path": stranger.signer_cert_path,
            "apple_signer_key_path": stranger.signer_key_path,
            "apple_wwdr_cert_path": stranger.wwdr_path,
        }
    )
    files_dir = tmp_path / "pass"
    files_dir.mkdir()
    unpack(build_pkpass(make_card(), settings), files_dir)
    assert openssl_verify(files_dir, apple_pki, files_dir / "manifest.json").returncode != 0


def test_pass_json_fields(
    make_card: Callable[..., PassCard], apple_settings: WalletSettings, tmp_path: Path
) -> None:
    card = make_card()
    files = unpack(build_pkpass(card, apple_settings), tmp_path)
    document = json.loads(files["pass.json"].decode("utf-8"))

    assert document["formatVersion"] == 1
    assert document["passTypeIdentifier"] == PASS_TYPE_ID
    assert document["teamIdentifier"] == TEAM_ID
    assert document["serialNumber"] == card.card_number
    assert document["organizationName"] == "Café Lux"
    assert document["description"] == "Café Lux Fidélité"
    assert document["webServiceURL"] == WEB_SERVICE_URL
    assert document["authenticationToken"] == card.authentication_token
    assert len(document["authenticationToken"]) >= 16
    assert document["backgroundColor"] == "rgb(107, 44, 26)"
    assert document["foregroundColor"] == "rgb(255, 255, 255)"
    assert document["labelColor"] == "rgb(245, 214, 168)"
    assert "voided" not in document
    assert document["barcodes"] == [
        {
            "format": "PKBarcodeFormatQR",
            "message": card.qr_token,
            "messageEncoding": "iso-8859-1",
            "altText": card.card_number,
        }
    ]
    fields = {f["key"]: f for f in all_fields(document)}
    assert fields["stamps"]["value"] == "3 / 10"
    assert fields["points"]["value"] == 1250
    assert fields["reward"]["value"] == "Free coffee"
    assert fields["member"]["value"] == "Anna Muller"
    assert document["storeCard"]["primaryFields"][0]["key"] == "stamps"


@pytest.mark.parametrize(
    ("program_type", "present", "absent"),
    [
        (ProgramType.STAMPS, "stamps", "points"),
        (ProgramType.POINTS, "points", "stamps"),
    ],
)
def test_only_the_programs_counters_are_shown(
    program_type: ProgramType,
    present: str,
    absent: str,
    make_card: Callable[..., PassCard],
    apple_settings: WalletSettings,
    tmp_path: Path,
) -> None:
    files = unpack(build_pkpass(make_card(program_type=program_type), apple_settings), tmp_path)
    document = json.loads(files["pass.json"])
    keys = {f["key"] for f in all_fields(document)}
    assert present in keys
    assert absent not in keys
    assert document["storeCard"]["primaryFields"][0]["key"] == present


def test_pending_points_and_the_next_expiry_on_the_back(
    make_card: Callable[..., PassCard], apple_settings: WalletSettings, tmp_path: Path
) -> None:
    card = make_card(points_pending=40, next_expiry_points=120, next_expiry_on=date(2026, 12, 31))
    document = json.loads(unpack(build_pkpass(card, apple_settings), tmp_path)["pass.json"])
    back = document["storeCard"]["backFields"]
    assert [f["key"] for f in back] == [
        "pending",
        "expiring",
        "expires_on",
        "card_number",
        "program",
    ]
    pending, expiring, expires_on = back[:3]
    assert (pending["label"], pending["value"]) == (i18n.PENDING, 40)
    assert pending["numberStyle"] == "PKNumberStyleDecimal"
    assert (expiring["label"], expiring["value"]) == (i18n.EXPIRING, 120)
    # The merchant's day, shown as that day whatever the phone's time zone, in its language.
    assert expires_on == {
        "key": "expires_on",
        "label": i18n.EXPIRES_ON,
        "value": "2026-12-31T00:00:00Z",
        "dateStyle": "PKDateStyleMedium",
        "timeStyle": "PKDateStyleNone",
        "ignoresTimeZone": True,
    }
    strings = parse_strings(i18n.strings_file("fr"))
    assert strings[i18n.PENDING] == "Points en attente"
    assert strings[i18n.EXPIRES_ON] == "Date d'expiration"


def test_no_pending_or_expiry_fields_without_them_or_without_points(
    make_card: Callable[..., PassCard], apple_settings: WalletSettings, tmp_path: Path
) -> None:
    for n, card in enumerate(
        [
            make_card(),
            make_card(
                program_type=ProgramType.STAMPS,
                points_pending=40,
                next_expiry_points=120,
                next_expiry_on=date(2026, 12, 31),
            ),
        ]
    ):
        files = unpack(build_pkpass(card, apple_settings), tmp_path / str(n))
        back = json.loads(files["pass.json"])["storeCard"]["backFields"]
        assert [f["key"] for f in back] == ["card_number", "program"]
    only_pending = make_card(points_pending=5)
    document = json.loads(
        unpack(build_pkpass(only_pending, apple_settings), tmp_path / "p")["pass.json"]
    )
    assert [f["key"] for f in document["storeCard"]["backFields"]][:2] == ["pending", "card_number"]


def test_the_tier_on_the_front_and_what_the_next_takes_on_the_back(
    make_card: Callable[..., PassCard], apple_settings: WalletSettings, tmp_path: Path
) -> None:
    card = make_card(
        tier_name="Silver", next_tier_name="Gold", points_to_next_tier=230, points_pending=40
    )
    files = unpack(build_pkpass(card, apple_settings), tmp_path)
    document = json.loads(files["pass.json"])
    store = document["storeCard"]
    assert store["auxiliaryFields"] == [
        {"key": "tier", "label": i18n.TIER, "value": "Silver", "changeMessage": i18n.TIER_CHANGED}
    ]
    # The front holds at most four secondary and auxiliary fields together.
    assert len(store["secondaryFields"]) + len(store["auxiliaryFields"]) <= 4
    back = store["backFields"]
    assert [f["key"] for f in back] == ["next_tier", "pending", "card_number", "program"]
    assert back[0] == {"key": "next_tier", "label": i18n.NEXT_TIER, "value": "230 points to Gold"}
    # The sentence is this pass's own entry of every language's pass.strings, labels kept.
    tables = {loc: parse_strings(files[f"{loc}.lproj/pass.strings"]) for loc in SUPPORTED_LOCALES}
    assert {loc: t["230 points to Gold"] for loc, t in tables.items()} == {
        "en": "230 points to Gold",
        "fr": "Encore 230 points avant Gold",
        "de": "Noch 230 Punkte bis Gold",
        "lb": "Nach 230 Punkten bis Gold",
    }
    assert {loc: (t[i18n.TIER], t[i18n.TIER_CHANGED]) for loc, t in tables.items()} == {
        "en": ("Tier", "Tier: %@"),
        "fr": ("Niveau", "Niveau : %@"),
        "de": ("Stufe", "Stufe: %@"),
        "lb": ("Niveau", "Niveau: %@"),
    }
    assert tables["de"][i18n.NEXT_TIER] == "Nächste Stufe"
    for table in tables.values():
        assert set(table) == set(i18n.TRANSLATIONS["en"]) | {"230 points to Gold"}


def test_the_top_tier_alone_and_no_tier_without_tiers(
    make_card: Callable[..., PassCard], apple_settings: WalletSettings, tmp_path: Path
) -> None:
    top = unpack(build_pkpass(make_card(tier_name="Gold"), apple_settings), tmp_path / "top")
    store = json.loads(top["pass.json"])["storeCard"]
    assert [(f["key"], f["value"]) for f in store["auxiliaryFields"]] == [("tier", "Gold")]
    assert [f["key"] for f in store["backFields"]] == ["card_number", "program"]
    assert parse_strings(top["fr.lproj/pass.strings"]).keys() == i18n.TRANSLATIONS["en"].keys()
    plain = unpack(build_pkpass(make_card(), apple_settings), tmp_path / "plain")
    assert "auxiliaryFields" not in json.loads(plain["pass.json"])["storeCard"]
    assert all(f["key"] != "tier" for f in all_fields(json.loads(plain["pass.json"])))


def test_inactive_card_is_voided(
    make_card: Callable[..., PassCard], apple_settings: WalletSettings, tmp_path: Path
) -> None:
    files = unpack(build_pkpass(make_card(is_active=False), apple_settings), tmp_path)
    assert json.loads(files["pass.json"])["voided"] is True


def test_without_web_service_the_pass_is_static(
    make_card: Callable[..., PassCard], apple_settings: WalletSettings, tmp_path: Path
) -> None:
    settings = apple_settings.model_copy(update={"apple_web_service_url": None})
    document = json.loads(unpack(build_pkpass(make_card(), settings), tmp_path)["pass.json"])
    assert "webServiceURL" not in document
    assert "authenticationToken" not in document


def test_localisations_parse_and_cover_every_label(
    make_card: Callable[..., PassCard], apple_settings: WalletSettings, tmp_path: Path
) -> None:
    files = unpack(build_pkpass(make_card(), apple_settings), tmp_path)
    document = json.loads(files["pass.json"])
    used = {f["label"] for f in all_fields(document)}
    used |= {f["changeMessage"] for f in all_fields(document) if "changeMessage" in f}

    tables = {loc: parse_strings(files[f"{loc}.lproj/pass.strings"]) for loc in SUPPORTED_LOCALES}
    for locale, table in tables.items():
        assert used <= set(table), f"{locale} misses {used - set(table)}"
        assert table.keys() == i18n.TRANSLATIONS["en"].keys()
    assert tables["en"]["Stamps"] == "Stamps"
    assert tables["fr"]["Stamps"] == "Tampons"
    assert tables["fr"]["Reward"] == "Récompense"
    assert tables["de"]["Points"] == "Punkte"
    assert tables["de"]["Reward"] == "Prämie"
    assert tables["lb"]["Stamps"] == "Stempelen"
    assert tables["lb"]["Card number"] == "Kaartennummer"
    assert tables["fr"]["Stamps: %@"] == "Tampons : %@"


def test_strings_escape_quotes_and_backslashes() -> None:
    i18n.TRANSLATIONS["en"]["Program"] = 'Say "hi" \\ bye'
    try:
        assert parse_strings(i18n.strings_file("en"))["Program"] == 'Say "hi" \\ bye'
    finally:
        i18n.TRANSLATIONS["en"]["Program"] = "Program"


def png(data: bytes) -> Image.Image:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(data))
    image.verify()  # checks the CRCs of every chunk
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return image


def test_generated_images_are_valid_pngs_of_apples_sizes(
    make_card: Callable[..., PassCard], apple_settings: WalletSettings, tmp_path: Path
) -> None:
    files = unpack(build_pkpass(make_card(), apple_settings), tmp_path)
    assert png(files["icon.png"]).size == (29, 29)
    assert png(files["icon@2x.png"]).size == (58, 58)
    logo, logo2x = png(files["logo.png"]), png(files["logo@2x.png"])
    assert logo.width <= 160 and logo.height <= 50
    assert logo2x.width <= 320 and logo2x.height <= 100
    # The icon is the brand colour with initials: its corner is the background colour.
    assert png(files["icon@2x.png"]).convert("RGB").getpixel((0, 0)) == (107, 44, 26)


def test_programs_own_logo_is_fitted_and_used_for_the_icon(
    make_card: Callable[..., PassCard], apple_settings: WalletSettings, tmp_path: Path
) -> None:
    source = io.BytesIO()
    Image.new("RGB", (900, 300), (12, 120, 200)).save(source, format="JPEG")
    files = unpack(build_pkpass(make_card(logo=source.getvalue()), apple_settings), tmp_path)
    assert png(files["logo.png"]).size == (150, 50)
    assert png(files["logo@2x.png"]).size == (300, 100)
    icon = png(files["icon@2x.png"]).convert("RGB")
    assert icon.size == (58, 58)
    r, g, b = icon.getpixel((29, 29))  # type: ignore[misc]
    assert abs(r - 12) < 8 and abs(g - 120) < 8 and abs(b - 200) < 8


def test_unreadable_logo_is_a_clear_error(
    make_card: Callable[..., PassCard], apple_settings: WalletSettings
) -> None:
    with pytest.raises(InvalidImageError):
        build_pkpass(make_card(logo=b"not an image"), apple_settings)


def test_colours_are_converted_to_apples_rgb() -> None:
    assert rgb("#0a0B0c") == "rgb(10, 11, 12)"
    assert rgb("fff") == "rgb(255, 255, 255)"
    with pytest.raises(ValueError, match="hex colour"):
        rgb("blue")


def test_disabled_apple_wallet_raises_config_error(make_card: Callable[..., PassCard]) -> None:
    settings = WalletSettings(_env_file=None)
    assert not settings.apple_enabled
    with pytest.raises(WalletConfigError, match="APPLE_PASS_TYPE_ID"):
        build_pkpass(make_card(), settings)


def test_wrong_key_password_is_a_config_error(apple_settings: WalletSettings) -> None:
    settings = apple_settings.model_copy(update={"apple_signer_key_password": SecretStr("nope")})
    with pytest.raises(WalletConfigError, match="wrong password") as caught:
        PassSigner.from_settings(settings)
    assert "nope" not in str(caught.value)


def test_key_of_another_certificate_is_refused(
    apple_settings: WalletSettings, apple_pki: ApplePki, tmp_path: Path
) -> None:
    other = make_apple_pki(tmp_path)
    settings = apple_settings.model_copy(update={"apple_signer_key_path": other.signer_key_path})
    with pytest.raises(WalletConfigError, match="does not match"):
        PassSigner.from_settings(settings)


def test_certificate_of_another_pass_type_is_refused(apple_settings: WalletSettings) -> None:
    settings = apple_settings.model_copy(update={"apple_pass_type_id": "pass.other.type"})
    with pytest.raises(WalletConfigError, match=re.escape(PASS_TYPE_ID)):
        PassSigner.from_settings(settings)


def test_der_certificates_and_unencrypted_keys_are_accepted(
    make_card: Callable[..., PassCard],
    apple_settings: WalletSettings,
    apple_pki: ApplePki,
    tmp_path: Path,
) -> None:
    cert = tmp_path / "pass.cer"
    cert.write_bytes(apple_pki.signer.cert.public_bytes(serialization.Encoding.DER))
    key = tmp_path / "pass.key"
    key.write_bytes(apple_pki.signer.key_pem())
    settings = apple_settings.model_copy(
        update={
            "apple_signer_cert_path": cert,
            "apple_signer_key_path": key,
            "apple_signer_key_password": None,
        }
    )
    folder = tmp_path / "out"
    folder.mkdir()
    unpack(build_pkpass(make_card(), settings), folder)
    assert openssl_verify(folder, apple_pki, folder / "manifest.json").returncode == 0


def test_same_card_state_gives_the_same_files(
    make_card: Callable[..., PassCard], apple_settings: WalletSettings
) -> None:
    """Reproducible content (only the signature's signing time may differ)."""
    signer = PassSigner.from_settings(apple_settings)

    def contents(data: bytes) -> dict[str, bytes]:
        with zipfile.ZipFile(io.BytesIO(data)) as bundle:
            return {n: bundle.read(n) for n in bundle.namelist() if n != "signature"}

    first = build_pkpass(make_card(), apple_settings, signer=signer)
    second = build_pkpass(make_card(), apple_settings, signer=signer)
    assert contents(first) == contents(second)
    changed = build_pkpass(make_card(stamp_count=4), apple_settings, signer=signer)
    assert contents(changed)["manifest.json"] != contents(first)["manifest.json"]
