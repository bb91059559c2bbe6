"""The webhook rules that need no stack: which URLs pass, signatures, retry delays, what a
batch of output records queues, and the refusal of private addresses at connection time."""

from __future__ import annotations

import random
import re
import socket
import ssl
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from consumers.pipeline import RecordLike
from consumers.webhooks import to_queue
from core.settings import REPO_ROOT
from domain.webhooks import (
    WEBHOOK_EVENT_TYPES,
    EndpointSpec,
    WebhookError,
    check_url,
    is_expired,
    next_delay,
    sign,
    verify,
)
from domain.webhooks.http import Attempt, WebhookClient
from domain.webhooks.signing import delivery_headers
from domain.webhooks.specs import check_spec
from tests.wallet.pki import issue
from tests.webhooks.receivers import Receiver

# --- check_url -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://127.0.0.1/hook", "127.0.0.1, a loopback address"),
        ("https://[::1]:8443/hook", "::1, a loopback address"),
        ("https://10.0.0.7/hook", "10.0.0.7, a private address"),
        ("https://192.168.1.20/hook", "192.168.1.20, a private address"),
        ("https://172.16.5.4/hook", "172.16.5.4, a private address"),
        ("https://169.254.169.254/latest/meta-data", "169.254.169.254, a link-local address"),
        ("https://[fe80::1]/hook", "fe80::1, a link-local address"),
        ("https://0.0.0.0/hook", "0.0.0.0, an unspecified address"),
        ("https://224.0.0.1/hook", "224.0.0.1, a multicast address"),
        ("https://[::ffff:10.0.0.1]/hook", "::ffff:10.0.0.1, a private address"),
        ("https://100.64.0.1/hook", "100.64.0.1, not a public address"),
        ("http://203.0.114.9/hook", "must be an https:// address"),
        ("ftp://example.com/hook", "must be an https:// address"),
        ("https://user:pass@example.com/hook", "must not contain a user name or password"),
        ("https:///hook", "must name a host"),
        ("https://example.com:0/hook", "has an invalid port"),
        ("https://example.com:70000/hook", "is not a valid address"),
        ("https://exa mple.com/", "must not contain spaces or control characters"),
        ("", "required"),
    ],
)
def test_check_url_refuses_what_the_engine_must_not_call(url: str, why: str) -> None:
    with pytest.raises(WebhookError) as refused:
        check_url(url, allow_private=False)
    assert refused.value.field == "url"
    assert refused.value.message.startswith(why), refused.value.message


def test_a_name_is_refused_for_what_it_resolves_to(monkeypatch: pytest.MonkeyPatch) -> None:
    _resolve(monkeypatch, {"shop.example": ["93.184.215.14", "10.1.2.3"]})
    with pytest.raises(WebhookError) as refused:
        check_url("https://shop.example/hook", allow_private=False)
    assert refused.value.message == (
        "shop.example resolves to 10.1.2.3, a private address: only public addresses are allowed"
    )
    assert check_url("https://localhost/x", allow_private=True) == "https://localhost/x"
    with pytest.raises(WebhookError, match=r"host nowhere\.example cannot be resolved"):
        check_url("https://nowhere.example/", allow_private=False)


def test_a_public_https_url_passes_normalised(monkeypatch: pytest.MonkeyPatch) -> None:
    addresses = ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]
    _resolve(monkeypatch, {"shop.example": addresses})
    assert check_url(" HTTPS://Shop.Example:443/hooks?x=1#top ", allow_private=False) == (
        "https://shop.example/hooks?x=1"
    )
    assert check_url("https://shop.example:8443", allow_private=False) == (
        "https://shop.example:8443/"
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "https://10.0.0.7/hook",
        "http://[::1]:9000/",
        "https://169.254.10.10/",
        "http://localhost:1234/x",
    ],
)
def test_allow_private_lets_local_endpoints_through(url: str) -> None:
    assert check_url(url, allow_private=True) == url


def test_a_spec_is_checked_field_by_field() -> None:
    ok = check_spec(
        EndpointSpec(
            "http://127.0.0.1:1/h", ("tier.changed", "event.processed"), "  ", secret=" s" * 9
        ),
        allow_private=True,
    )
    assert ok.event_types == ("event.processed", "tier.changed")
    assert ok.description is None
    assert ok.secret == ("s " * 9).strip()
    for spec, field, message in [
        (EndpointSpec("http://127.0.0.1/", ()), "event_types", "choose at least one type"),
        (
            EndpointSpec("http://127.0.0.1/", ("card.balance_changed", "card.created")),
            "event_types",
            "unknown type 'card.created' (one of " + ", ".join(WEBHOOK_EVENT_TYPES) + ")",
        ),
        (
            EndpointSpec("http://127.0.0.1/", ("tier.changed",), secret="short"),
            "secret",
            "must have at least 16 characters",
        ),
        (
            EndpointSpec("http://127.0.0.1/", ("tier.changed",), "d" * 501),
            "description",
            "must have at most 500 characters",
        ),
    ]:
        with pytest.raises(WebhookError) as refused:
            check_spec(spec, allow_private=True)
        assert (refused.value.field, refused.value.message) == (field, message)


def _resolve(monkeypatch: pytest.MonkeyPatch, names: dict[str, list[str]]) -> None:
    def getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        if host not in names:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (
                socket.AF_INET6 if ":" in a else socket.AF_INET,
                socket.SOCK_STREAM,
                6,
                "",
                (a, port),
            )
            for a in names[host]
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


# --- signatures ------------------------------------------------------------------------------

SECRET = "whsec_test-secret-0123456789"
BODY = b'{"event_id":"x","type":"card.balance_changed"}'


def test_sign_matches_a_vector_computed_elsewhere() -> None:
    # printf '%s' '1700000000.<BODY>' | openssl dgst -sha256 -hmac "$SECRET"
    assert sign(SECRET, 1_700_000_000, BODY) == (
        "v1=14fdfec89d076a8b1a492854855e7a48fc08dd635015085d179b7700ad3fea5c"
    )


def test_verify_accepts_the_signature_and_nothing_else() -> None:
    signature = sign(SECRET, 1_700_000_000, BODY)
    now = 1_700_000_100
    assert verify(SECRET, 1_700_000_000, BODY, signature, now=now)
    assert verify(SECRET, "1700000000", BODY, signature, now=now)  # as a header carries it
    assert verify(SECRET, 1_700_000_000, BODY, f"v1=deadbeef, {signature}", now=now)
    assert not verify(SECRET, 1_700_000_000, BODY + b" ", signature, now=now)
    assert not verify(SECRET + "x", 1_700_000_000, BODY, signature, now=now)
    assert not verify(SECRET, 1_700_000_001, BODY, signature, now=now)
    assert not verify(SECRET, "soon", BODY, signature, now=now)
    assert not verify(SECRET, 1_700_000_000, BODY, signature.removeprefix("v1="), now=now)
    # Five minutes either way by default: a replay later than that is refused.
    assert verify(SECRET, 1_700_000_000, BODY, signature, now=1_700_000_300)
    assert not verify(SECRET, 1_700_000_000, BODY, signature, now=1_700_000_301)
    assert not verify(SECRET, 1_700_000_000, BODY, signature, now=1_699_999_000)
    assert verify(SECRET, 1_700_000_000, BODY, signature, now=1_700_000_900, tolerance_s=900)


def test_the_readme_recipe_verifies_what_the_dispatcher_sends() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Webhooks") :]
    snippet = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert snippet is not None
    namespace: dict[str, Any] = {}
    exec(compile(snippet.group(1), "README.md", "exec"), namespace)  # noqa: S102 - our own text
    readme_verify = namespace["verify"]
    headers = delivery_headers(SECRET, "an-event-id", "tier.changed", BODY, int(time.time()))
    stamp, signature = headers["Loyalty-Timestamp"], headers["Loyalty-Signature"]
    assert readme_verify(SECRET, stamp, signature, BODY)
    assert not readme_verify(SECRET, stamp, signature, BODY + b"\n")
    assert not readme_verify("whsec_not-the-secret", stamp, signature, BODY)
    late = str(int(stamp) - 301)
    assert not readme_verify(SECRET, late, sign(SECRET, int(late), BODY), BODY)
    assert headers["Idempotency-Key"] == "an-event-id"
    assert headers["Loyalty-Event-Type"] == "tier.changed"


# --- retries ---------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(20))
def test_next_delay_doubles_with_jitter_within_its_bounds(seed: int) -> None:
    rng = random.Random(seed)
    for attempts in range(1, 40):
        step = min(3600.0, 10.0 * 2 ** (attempts - 1))
        delay = next_delay(attempts, 10.0, 3600.0, rng)
        assert step / 2 <= delay <= step, (attempts, delay)
    assert next_delay(10_000, 10.0, 3600.0, rng) <= 3600.0


def test_next_delay_spreads_retries() -> None:
    rng = random.Random(1)
    delays = {round(next_delay(5, 10.0, 3600.0, rng), 3) for _ in range(50)}
    assert len(delays) > 40
    assert min(delays) >= 80.0 and max(delays) <= 160.0


def test_a_delivery_expires_at_the_end_of_its_window() -> None:
    start = datetime(2026, 12, 1, 12, tzinfo=UTC)
    day = 86_400.0
    assert not is_expired(start, start + timedelta(hours=23, minutes=59), day)
    assert is_expired(start, start + timedelta(hours=24), day)
    assert is_expired(start, start + timedelta(days=3), day)


# --- what a batch of output records queues ---------------------------------------------------


class _Record:
    def __init__(self, topic: str, offset: int, value: bytes | None) -> None:
        self.topic = topic
        self.partition = 0
        self.offset = offset
        self.key: bytes | None = None
        self.value = value


def _records(*values: dict[str, Any] | bytes | None) -> list[RecordLike]:
    return [
        _Record("loyalty.wallet-updates.v1", i, v if not isinstance(v, dict) else orjson.dumps(v))
        for i, v in enumerate(values)
    ]


def _message(kind: str, card: str | None = "1111-2222-3333", **fields: Any) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "type": kind,
        "merchant_code": "cafe",
        "card_number": card,
        **fields,
    }


def test_a_batch_queues_its_messages_in_order_with_each_cards_versions_sorted() -> None:
    a3 = _message("card.balance_changed", "A", version=3)
    result = _message("event.processed", "A")
    b1 = _message("card.balance_changed", "B", version=1)
    a2 = _message("card.balance_changed", "A", version=2)
    reminder = _message("points.expiring", "B", points=10)
    queued, problems = to_queue(_records(a3, result, b1, a2, reminder))
    assert problems == []
    assert [q.event_id for q in queued] == [
        uuid.UUID(m["event_id"]) for m in (a2, result, b1, a3, reminder)
    ]
    assert queued[0].body == orjson.dumps(a2)  # the bytes as they came
    assert [q.card_number for q in queued] == ["A", "A", "B", "A", "B"]


def test_messages_that_cannot_be_queued_are_skipped_and_said() -> None:
    good = _message("tier.changed", "C")
    queued, problems = to_queue(
        _records(
            b"not json",
            b"[1, 2]",
            None,
            {"event_id": str(uuid.uuid4()), "merchant_code": "cafe"},
            _message("event.processed", event_id="nope"),
            {k: v for k, v in _message("reward.available").items() if k != "merchant_code"},
            _message("card.balance_changed", version="7"),
            good,
            _message("event.processed", card=None, merchant_code=None),  # no merchant: silent
            _message("dead_letter"),  # not a webhook type: silent
        )
    )
    assert [q.event_id for q in queued] == [uuid.UUID(good["event_id"])]
    assert problems == [
        "loyalty.wallet-updates.v1[0]@0: not JSON",
        "loyalty.wallet-updates.v1[0]@1: not a JSON object",
        "loyalty.wallet-updates.v1[0]@2: not a JSON object",
        "loyalty.wallet-updates.v1[0]@3: no type",
        "loyalty.wallet-updates.v1[0]@4: no valid event_id",
        "loyalty.wallet-updates.v1[0]@5: no merchant_code",
        "loyalty.wallet-updates.v1[0]@6: card.balance_changed without card_number or integer "
        "version",
    ]


# --- connections reach only allowed addresses ------------------------------------------------


async def test_the_client_refuses_private_addresses_at_connection_time() -> None:
    client = WebhookClient(timeout_s=2, allow_private=False)
    try:
        headers = {"Content-Type": "application/json"}
        # localhost passes the URL's form (https, a name) and is refused once resolved.
        attempt = await client.post("https://localhost:1/hook", headers, b"{}")
        assert attempt.status is None
        assert attempt.error is not None
        assert attempt.error.startswith("refused: localhost resolves to 127.0.0.1")
        attempt = await client.post("http://203.0.113.9/hook", headers, b"{}")
        assert attempt.error == "refused: the URL must be an https:// address"
    finally:
        await client.close()


async def test_a_refused_connection_is_a_failed_attempt_with_a_reason() -> None:
    client = WebhookClient(timeout_s=2, allow_private=True)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    try:
        attempt = await client.post(f"http://127.0.0.1:{port}/", {}, b"{}")
    finally:
        await client.close()
    assert attempt.status is None
    assert attempt.error is not None and attempt.error.startswith("ConnectError")


async def test_tls_is_verified_against_the_urls_host_not_the_address_connected_to(
    tmp_path: Path,
) -> None:
    # A certificate for the name "localhost" only: the client connects to the address it
    # checked (127.0.0.1) and must still verify the certificate against the URL's host.
    ca = issue(_common_name("Test webhook CA"), ca=True)
    server = issue(
        _common_name("localhost"),
        issuer=ca,
        key=ec.generate_private_key(ec.SECP256R1()),
        eku=[ExtendedKeyUsageOID.SERVER_AUTH],
        san=[x509.DNSName("localhost")],
    )
    (tmp_path / "cert.pem").write_bytes(server.cert_pem() + ca.cert_pem())
    (tmp_path / "key.pem").write_bytes(server.key_pem())
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    trusting = ssl.create_default_context(cadata=ca.cert_pem().decode())
    receiver = Receiver("ok", tls=served).start()
    client = WebhookClient(timeout_s=5, allow_private=True, ssl_context=trusting)
    stranger = WebhookClient(timeout_s=5, allow_private=True)  # the system's authorities
    try:
        by_name = await client.post(f"https://localhost:{receiver.port}/h", {}, b"{}")
        by_address = await client.post(f"https://127.0.0.1:{receiver.port}/h", {}, b"{}")
        untrusted = await stranger.post(f"https://localhost:{receiver.port}/h", {}, b"{}")
    finally:
        await client.close()
        await stranger.close()
        receiver.stop()
    assert by_name == Attempt(204, None)
    assert by_address.status is None and by_address.error is not None
    assert "CERTIFICATE_VERIFY_FAILED" in by_address.error
    assert untrusted.error is not None and "CERTIFICATE_VERIFY_FAILED" in untrusted.error
    assert [r.headers["host"] for r in receiver.all()] == [f"localhost:{receiver.port}"]


def _common_name(name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
