"""Client settings every process shares."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from faststream.kafka import KafkaBroker
from hypothesis import given, settings
from hypothesis import strategies as st

from core.settings import Settings
from streams.broker import (
    MAX_REQUEST_SIZE,
    client_id,
    consumer_config,
    key_partition,
    make_broker,
    partitioner,
    producer_config,
)

SETTINGS = Settings(kafka_bootstrap="kafka.example:9092", consumer_group="g", batch_max_records=500)


def test_producers_are_idempotent_and_take_a_dead_lettered_megabyte() -> None:
    config = producer_config(SETTINGS, "relay")

    assert config == {
        "bootstrap_servers": "kafka.example:9092",
        "client_id": "loyalty-relay",
        "acks": "all",
        "enable_idempotence": True,
        "max_request_size": MAX_REQUEST_SIZE,
        "partitioner": partitioner,
    }
    assert MAX_REQUEST_SIZE >= 4 / 3 * 1024 * 1024 + 64 * 1024  # base64 of 1 MB, and metadata


def test_consumers_commit_by_hand_and_start_at_the_beginning() -> None:
    config = consumer_config(SETTINGS, "worker")

    assert config["group_id"] == "g"
    assert config["enable_auto_commit"] is False
    assert config["auto_offset_reset"] == "earliest"
    assert config["max_poll_records"] == 500
    assert config["client_id"] == client_id("worker") == "loyalty-worker"
    assert consumer_config(SETTINGS, "replay", group_id="replay-1")["group_id"] == "replay-1"


def test_make_broker_builds_an_unconnected_broker() -> None:
    broker = make_broker(SETTINGS)

    assert isinstance(broker, KafkaBroker)
    assert not broker.running


@settings(max_examples=500)
@given(st.binary(max_size=64), st.integers(min_value=1, max_value=64))
def test_keys_land_where_the_java_client_puts_them(key: bytes, count: int) -> None:
    partitions = list(range(count))
    expected = DefaultPartitioner()(key, partitions, partitions)
    assert key_partition(key, partitions) == expected
    assert partitioner(key, partitions, partitions) == expected


def test_a_record_without_a_key_goes_to_an_available_partition() -> None:
    assert partitioner(None, [0, 1, 2], [2]) == 2
    assert partitioner(None, [0, 1, 2], []) in (0, 1, 2)
