"""``loyalty publish``: a file of JSON lines onto an input topic, keyed by the contract."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from loyalty.cli import _register, app
from streams.parsing import ParseError, key_for, parse_input
from streams.topics import Topic
from tests.tools.helpers import encoded, end_offsets, enrolment, loyalty, purchase, read_range

PURCHASES = Topic.PURCHASES.value
ENROLMENTS = Topic.ENROLLMENTS.value


async def _ours_since(
    bootstrap: str, topic: str, before: dict[tuple[str, int], int], event_ids: set[str]
) -> list[tuple[bytes | None, bytes]]:
    """``(key, value)`` of the records with our event ids published after ``before``."""
    after = await end_offsets(bootstrap, [topic])
    records = await read_range(bootstrap, {tp: (before[tp], end) for tp, end in after.items()})
    return [
        (r.key, r.value)
        for r in records
        if r.value is not None and json.loads(r.value).get("event_id") in event_ids
    ]


async def test_every_line_lands_on_the_topic_keyed_as_the_contract_says(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    cards = [
        {"card_number": "abcd 2345 efgh"},
        {"card_number": "WXYZ-9876-KLMN"},
        {"email": "Ann.Example@Example.COM"},
        {"qr_code": "qr-7f3a9c"},
        {"customer_ref": "C-0042"},
    ]
    messages = [purchase("shop-1", cards[i % 5], f"ORD-{i}", 100 * i) for i in range(25)]
    lines = [json.dumps(m) for m in messages]
    lines.insert(7, "")  # a blank line is skipped, not refused
    file = tmp_path / "purchases.jsonl"
    file.write_text("\n".join(lines) + "\n")
    bootstrap = cli_env["LOYALTY_KAFKA_BOOTSTRAP"]
    before = await end_offsets(bootstrap, [PURCHASES])

    ran = await loyalty(cli_env, "publish", PURCHASES, str(file))

    assert ran.code == 0, ran.err
    assert ran.out.strip() == f"published 25 message(s) to {PURCHASES}"
    ours = await _ours_since(bootstrap, PURCHASES, before, {m["event_id"] for m in messages})
    assert len(ours) == 25
    by_id = {json.loads(value)["event_id"]: (key, value) for key, value in ours}
    for message in messages:
        key, value = by_id[message["event_id"]]
        assert value == json.dumps(message).encode()  # sent as written
        parsed = parse_input(PURCHASES, value)
        assert not isinstance(parsed, ParseError)
        assert key == key_for(parsed).encode()
    keys = {json.loads(v)["card"].get("email"): k for k, v in ours}
    assert keys["Ann.Example@Example.COM"] == b"ann.example@example.com"
    assert {k for k, _ in ours} >= {b"ABCD-2345-EFGH", b"WXYZ-9876-KLMN", b"qr-7f3a9c", b"C-0042"}


async def test_a_file_with_an_invalid_line_publishes_nothing_and_names_line_and_field(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    good = [purchase("shop-1", {"card_number": "ABCD-2345-EFGH"}, f"R-{i}", 500) for i in range(3)]
    bad = purchase("shop-1", {"card_number": "ABCD-2345-EFGH"}, "R-bad", -5)
    file = tmp_path / "purchases.jsonl"
    file.write_text("\n".join(json.dumps(m) for m in [good[0], good[1], bad, good[2]]))
    bootstrap = cli_env["LOYALTY_KAFKA_BOOTSTRAP"]
    before = await end_offsets(bootstrap, [PURCHASES])

    ran = await loyalty(cli_env, "publish", PURCHASES, str(file))

    assert ran.code == 2
    assert "line 3: amount_cents: must be an integer >= 0 (got -5)" in ran.err
    assert "nothing published" in ran.err
    assert ran.out == ""
    ids = {m["event_id"] for m in [*good, bad]}
    assert await _ours_since(bootstrap, PURCHASES, before, ids) == []


async def test_skip_invalid_publishes_the_valid_lines_and_lists_the_others(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    good = [enrolment("shop-1", f"Skip{i}@Example.com") for i in range(3)]
    other_type = purchase("shop-1", {"email": "x@example.com"}, "O-1", 100)
    lines = [json.dumps(good[0]), "{not json", json.dumps(good[1]), json.dumps(other_type)]
    lines.append(json.dumps(good[2]))
    file = tmp_path / "enrolments.jsonl"
    file.write_text("\n".join(lines))
    bootstrap = cli_env["LOYALTY_KAFKA_BOOTSTRAP"]
    before = await end_offsets(bootstrap, [ENROLMENTS])

    ran = await loyalty(cli_env, "publish", "enrollments", str(file), "--skip-invalid", "--json")

    assert ran.code == 0, ran.err
    assert ran.json() == {
        "topic": ENROLMENTS,
        "published": 3,
        "failed": 0,
        "skipped_invalid": 2,
        "error": None,
    }
    assert "line 2: value is not valid JSON" in ran.err
    assert f'line 4: type: must be "enrollment.requested" on {ENROLMENTS}' in ran.err
    ours = await _ours_since(bootstrap, ENROLMENTS, before, {m["event_id"] for m in good})
    assert sorted(k or b"" for k, _ in ours) == [
        b"skip0@example.com",
        b"skip1@example.com",
        b"skip2@example.com",
    ]


async def test_standard_input_and_a_short_topic_name(cli_env: dict[str, str]) -> None:
    by_ref = enrolment("shop-1", "ignored@example.com")
    by_ref["customer"] = {"customer_ref": "CRM-77"}
    by_email = enrolment("shop-1", "Mixed.Case@Example.org")
    bootstrap = cli_env["LOYALTY_KAFKA_BOOTSTRAP"]
    before = await end_offsets(bootstrap, [ENROLMENTS])

    ran = await loyalty(
        cli_env, "publish", "enrollments", "-", stdin=encoded(by_ref) + b"\r\n" + encoded(by_email)
    )

    assert ran.code == 0, ran.err
    assert ran.out.strip() == f"published 2 message(s) to {ENROLMENTS}"
    ours = await _ours_since(
        bootstrap, ENROLMENTS, before, {by_ref["event_id"], by_email["event_id"]}
    )
    assert sorted(k or b"" for k, _ in ours) == [b"CRM-77", b"mixed.case@example.org"]


async def test_a_repeated_event_id_is_published_with_a_warning(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    message = enrolment("shop-1", "twice@example.com")
    file = tmp_path / "twice.jsonl"
    file.write_text(json.dumps(message) + "\n" + json.dumps(message) + "\n")

    ran = await loyalty(cli_env, "publish", ENROLMENTS, str(file))

    assert ran.code == 0, ran.err
    assert "line 2: event_id already on line 1; the engine will ignore it" in ran.err
    assert ran.out.strip() == f"published 2 message(s) to {ENROLMENTS}"


def test_output_topics_and_missing_files_are_refused(tmp_path: Path) -> None:
    _register()
    runner = CliRunner()
    file = tmp_path / "x.jsonl"
    file.write_text(json.dumps(enrolment("shop-1", "a@example.com")))

    wrong_topic = runner.invoke(app, ["publish", Topic.RESULTS.value, str(file)])
    missing = runner.invoke(app, ["publish", ENROLMENTS, str(tmp_path / "nope.jsonl")])

    assert wrong_topic.exit_code == 2
    assert "is not an input topic" in wrong_topic.output
    assert missing.exit_code == 2
    assert "cannot read" in missing.output
