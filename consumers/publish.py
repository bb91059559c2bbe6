"""``loyalty publish``: JSON lines from a file onto an input topic, keyed as the contract says.

Every line is checked against the topic's message model before anything is sent, so a file
with a typo is refused as a whole (each bad line named with its number and field) instead of
half-published. The value sent is the line as written (only the line ending is dropped), so
fields a later contract version adds travel untouched; the key comes from the parsed message
(CONTRACT.md section 1), so it is the key the tills would have used.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from aiokafka import AIOKafkaProducer

from core.settings import Settings
from streams.broker import producer_config
from streams.parsing import ParseError, key_for, parse_input
from streams.topics import Topic

# Acknowledgements are awaited in chunks, so a file of millions of lines never holds
# millions of pending futures.
_ACK_CHUNK: Final = 5000


@dataclass(frozen=True)
class LineError:
    """A line of the file that is not a message of the topic."""

    line: int
    """1-based, as editors count."""
    error: str
    """``path: why (got ...)`` sentences from ``streams.parsing``."""

    def __str__(self) -> str:
        return f"line {self.line}: {self.error}"


@dataclass
class Prepared:
    """A file read and checked: the records to send, and what was wrong with the rest."""

    topic: Topic
    records: list[tuple[bytes, bytes]] = field(default_factory=list)
    """``(key, value)`` of every valid line, in file order."""
    invalid: list[LineError] = field(default_factory=list)
    repeated: list[tuple[int, int]] = field(default_factory=list)
    """``(line, first line)`` of lines whose ``event_id`` an earlier line already used: the
    engine will ignore them, which is worth a warning, not a refusal."""
    blank: int = 0


def prepare(topic: Topic, lines: Iterable[bytes]) -> Prepared:
    """Parse every line as a message of ``topic``; blank lines are skipped."""
    prepared = Prepared(topic)
    first_seen: dict[object, int] = {}
    for number, raw in enumerate(lines, start=1):
        value = raw.rstrip(b"\r\n")
        if number == 1:
            value = value.removeprefix(b"\xef\xbb\xbf")  # a BOM, as Windows editors write
        if not value.strip():
            prepared.blank += 1
            continue
        message = parse_input(topic.value, value)
        if isinstance(message, ParseError):
            prepared.invalid.append(LineError(number, message.message))
            continue
        first = first_seen.setdefault(message.event_id, number)
        if first != number:
            prepared.repeated.append((number, first))
        prepared.records.append((key_for(message).encode("utf-8"), value))
    return prepared


@dataclass(frozen=True)
class Published:
    """What a publish run sent."""

    topic: Topic
    published: int
    failed: int = 0
    error: str | None = None
    """Why some records were not acknowledged (the broker went away, a record too large)."""


async def publish(
    settings: Settings, topic: Topic, records: list[tuple[bytes, bytes]]
) -> Published:
    """Send ``records`` with the idempotent producer and wait for every acknowledgement.

    Per-partition order is the file's order. When the broker stops acknowledging, the count
    of records it did acknowledge is returned with the error; publishing the same file again
    is harmless, because the engine ignores an ``event_id`` it has processed.
    """
    producer = AIOKafkaProducer(**producer_config(settings, "cli"), linger_ms=5)
    try:
        await producer.start()
    except Exception:
        await producer.stop()  # a client that failed to start still holds its sockets
        raise
    acked = 0
    error: str | None = None
    try:
        for start in range(0, len(records), _ACK_CHUNK):
            pending = []
            try:
                for key, value in records[start : start + _ACK_CHUNK]:
                    pending.append(await producer.send(topic.value, value=value, key=key))
            except Exception as exc:  # a record too large, the broker away: reported below
                error = f"{type(exc).__name__}: {exc}"
            for future in pending:
                try:
                    await future
                    acked += 1
                except Exception as exc:
                    error = error or f"{type(exc).__name__}: {exc}"
            if error is not None:
                break
    finally:
        await producer.stop()
    return Published(topic, acked, len(records) - acked, error)
