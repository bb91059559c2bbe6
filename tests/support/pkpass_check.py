"""Checking a ``.pkpass`` the way an iPhone does: unzip it, verify the CMS signature over
``manifest.json`` with the real ``openssl`` CLI against the (test) Apple root."""

from __future__ import annotations

import io
import subprocess
import zipfile
from pathlib import Path

from tests.wallet.pki import ApplePki


def unpack(pkpass: bytes, folder: Path) -> dict[str, bytes]:
    """The zip's members by name, also written to ``folder`` for openssl."""
    with zipfile.ZipFile(io.BytesIO(pkpass)) as bundle:
        assert bundle.testzip() is None
        files = {name: bundle.read(name) for name in bundle.namelist()}
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return files


def openssl_verify(folder: Path, pki: ApplePki, manifest: Path) -> subprocess.CompletedProcess[str]:
    """Apple's check: the detached signature over ``manifest`` chains to the root."""
    wwdr_pem = folder / "wwdr.pem"
    wwdr_pem.write_bytes(pki.wwdr.cert_pem())
    return subprocess.run(
        [
            "openssl",
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            str(folder / "signature"),
            "-content",
            str(manifest),
            "-CAfile",
            str(pki.root_path),
            "-certfile",
            str(wwdr_pem),
            "-purpose",
            "any",
            "-out",
            str(folder / "verified.out"),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def verified_files(pkpass: bytes, folder: Path, pki: ApplePki) -> dict[str, bytes]:
    """The files of ``pkpass`` after checking its signature chains to ``pki``'s root."""
    files = unpack(pkpass, folder)
    result = openssl_verify(folder, pki, folder / "manifest.json")
    assert result.returncode == 0, result.stderr
    assert (folder / "verified.out").read_bytes() == files["manifest.json"]
    return files
