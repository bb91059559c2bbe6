"""The Kafka clients' settings, shared by every process, and the FastStream broker factory."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from murmurhash2 import murmurhash2

from core.settings import Settings

if TYPE_CHECKING:  # imported by make_broker: the relay and replay never load FastStream
    from faststream.kafka import KafkaBroker

MAX_REQUEST_SIZE: Final = 5 * 1024 * 1024
"""Bytes a produced record may take. A 1 MB input that is dead-lettered grows by JSON escaping
or base64 (see ``streams.parsing.dead_letter_for``); the brokers' ``message.max.bytes`` (or the
DLQ topic's ``max.message.bytes``) must allow as much."""


# The Java client's seed for murmur2 (org.apache.kafka.common.utils.Utils.murmur2).
_MURMUR2_SEED: Final = 0x9747B28C


def key_partition(key: bytes, partitions: Sequence[int]) -> int:
    """The partition of ``key`` among ``partitions`` (sorted by id), where the Java client's
    default partitioner puts it: murmur2 of the key, made positive, modulo their number.

    aiokafka's partitioner computes the same in pure Python, ~10 us a key (a third of the
    relay's CPU); this one is C, ~0.5 us.
    """
    return partitions[(murmurhash2(key, _MURMUR2_SEED) & 0x7FFFFFFF) % len(partitions)]


def partitioner(key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
    """``key_partition`` as aiokafka's producers take a partitioner; a record without a key
    goes to any available partition, as aiokafka's own does."""
    if key is None:
        return random.choice(available or all_partitions)
    return key_partition(key, all_partitions)


def client_id(role: str) -> str:
    """The Kafka ``client.id`` of a process role (``worker``, ``relay``, ``cli``...).

    It names the process in broker logs and quotas; one per role, not per instance.
    """
    return f"loyalty-{role}"


def producer_config(settings: Settings, role: str) -> dict[str, Any]:
    """Keyword arguments for ``aiokafka.AIOKafkaProducer``.

    Idempotence with ``acks="all"`` so a retried send neither duplicates nor reorders records
    within a partition: the outbox relay's at-least-once then only repeats after a crash.
    """
    return {
        "bootstrap_servers": settings.bootstrap,
        "client_id": client_id(role),
        "acks": "all",
        "enable_idempotence": True,
        "max_request_size": MAX_REQUEST_SIZE,
        "partitioner": partitioner,
    }


def consumer_config(settings: Settings, role: str, group_id: str | None = None) -> dict[str, Any]:
    """Keyword arguments for ``aiokafka.AIOKafkaConsumer`` (topics are passed separately).

    Offsets are committed by hand, after the database commit that holds the batch's effects,
    so auto-commit is off. A new group starts at the earliest offset: skipping what was
    published before the first worker started would lose purchases.
    """
    return {
        "bootstrap_servers": settings.bootstrap,
        "client_id": client_id(role),
        "group_id": group_id if group_id is not None else settings.consumer_group,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "max_poll_records": settings.batch_max_records,
    }


def make_broker(settings: Settings, role: str = "engine") -> KafkaBroker:
    """A FastStream Kafka broker on ``settings.bootstrap``, producing like ``producer_config``.

    Not connected yet: ``await broker.start()`` (or ``async with broker``) connects.
    """
    from faststream.kafka import KafkaBroker

    config = producer_config(settings, role)
    return KafkaBroker(config.pop("bootstrap_servers"), **config)
