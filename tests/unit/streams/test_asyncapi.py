"""The committed AsyncAPI document is the one the code generates, and it covers the contract."""

from __future__ import annotations

import json
from typing import Any

import pytest

from streams.asyncapi import ASYNCAPI_PATH, asyncapi_document, main
from streams.messages import MODEL_OF_TOPIC
from streams.topics import TOPICS
from tests.unit.streams.test_outputs import message_types


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(asyncapi_document())
    return parsed


def test_the_committed_document_is_up_to_date() -> None:
    assert ASYNCAPI_PATH.read_text("utf-8") == asyncapi_document(), (
        "streams/asyncapi.json is stale: run `python -m streams.asyncapi` and commit it"
    )
    assert main(["--check"]) == 0


def test_every_topic_is_a_channel_with_its_model(document: dict[str, Any]) -> None:
    channels = document["channels"]
    operations = document["operations"]
    schemas = document["components"]["schemas"]

    assert document["asyncapi"].startswith("3.")
    assert sorted(channels) == sorted(spec.topic.value for spec in TOPICS)
    for spec in TOPICS:
        channel = channels[spec.topic.value]
        assert channel["address"] == spec.topic.value
        assert f"`{spec.message_type}`" in channel["description"]
        assert "Key: " in channel["description"]
        operation = operations[spec.topic.value]
        assert operation["action"] == ("receive" if spec.is_input else "send")
        (message_ref,) = channel["messages"].values()
        message = document["components"]["messages"][message_ref["$ref"].rsplit("/", 1)[1]]
        schema_name = message["payload"]["$ref"].rsplit("/", 1)[1]
        model = MODEL_OF_TOPIC[spec.topic]
        assert schema_name == model.__name__
        kind = schemas[schema_name]["properties"]["type"]
        assert kind.get("enum", [kind.get("const")]) == message_types(spec.message_type)


def test_required_fields_are_documented_as_required(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]

    assert schemas["PurchaseCompleted"]["required"] == [
        "event_id", "type", "occurred_at", "store_code", "order_reference", "amount_cents", "card",
    ]  # fmt: skip
    assert "store_code" not in schemas["ExpiryRunRequested"]["properties"]
    # Outputs always carry every field, nulls included, but for the additions of v1.1.
    assert "card_number" in schemas["EventProcessed"]["required"]
    assert "cards_expired" in schemas["EventProcessed"]["required"]
    assert "campaigns" not in schemas["EventProcessed"]["required"]


def test_line_items_are_documented(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]

    for model, line in (
        ("PurchaseCompleted", "PurchaseLine"),
        ("PurchaseReturned", "ReturnedLine"),
    ):
        lines = schemas[model]["properties"]["lines"]
        assert "lines" not in schemas[model]["required"]
        assert lines["description"]
        assert lines["anyOf"][0]["items"]["$ref"] == f"#/components/schemas/{line}"
    assert schemas["PurchaseLine"]["required"] == ["sku", "quantity", "amount_cents"]
    assert schemas["PurchaseLine"]["properties"]["sku"]["maxLength"] == 64
    assert schemas["ReturnedLine"]["required"] == ["sku", "quantity"]
    campaigns = schemas["EventProcessed"]["properties"]["campaigns"]
    assert campaigns["anyOf"][0]["items"]["$ref"] == "#/components/schemas/CampaignAward"
