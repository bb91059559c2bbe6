"""Client settings every process shares."""

from __future__ import annotations

from faststream.kafka import KafkaBroker

from core.settings import Settings
from streams.broker import (
    MAX_REQUEST_SIZE,
    client_id,
    consumer_config,
    make_broker,
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
