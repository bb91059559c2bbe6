"""The AsyncAPI document of contract v1, generated from the message models by FastStream.

``python -m streams.asyncapi`` rewrites ``streams/asyncapi.json``; ``--check`` only says whether
it is stale (a unit test does the same). The document is built from a broker that is never
connected: input topics are declared as subscribers whose handlers take the input models,
output topics as publishers with the output models as their schema.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Final

from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI

from streams.base import ContractModel
from streams.messages import INPUT_MODELS, OUTPUT_MODELS
from streams.topics import TOPICS, TYPE_OF_TOPIC, Topic

ASYNCAPI_PATH: Final = Path(__file__).with_name("asyncapi.json")
"""Where the committed document lives."""

CONTRACT_VERSION: Final = "1"

# CONTRACT.md section 1, in words for the document's channels.
_CHANNELS: Final[dict[Topic, tuple[str, str]]] = {
    # topic: (published by, key)
    Topic.PURCHASES: ("order systems, POS", "the card reference's value"),
    Topic.RETURNS: ("order systems, POS", "the card reference's value, else order_reference"),
    Topic.ENROLLMENTS: (
        "storefronts, POS, staff",
        "customer email (lower-case), else customer_ref",
    ),
    Topic.REDEMPTIONS: ("POS, staff terminal", "the card reference's value"),
    Topic.EXPIRY: ("the engine's own scheduler, operators", 'merchant_code, else "all"'),
    Topic.RESULTS: ("the engine", "source_event_id"),
    Topic.WALLET_UPDATES: ("the engine", "card_number"),
    Topic.DLQ: ("the engine", "the original key"),
    Topic.NOTIFICATIONS: ("the engine", "card_number"),
}

_TOPIC_ORDER: Final = {spec.topic.value: rank for rank, spec in enumerate(TOPICS)}

# The local stack's default port: a fixed address keeps the document the same on every machine.
_DOCUMENTED_SERVER: Final = "127.0.0.1:19092"


def _channel_description(topic: Topic) -> str:
    published_by, key = _CHANNELS[topic]
    return f"`{TYPE_OF_TOPIC[topic]}` messages, published by {published_by}. Key: {key}."


def _documentation_handler(model: type[ContractModel]) -> Callable[..., Awaitable[None]]:
    async def handler(message: ContractModel) -> None:
        raise NotImplementedError("documentation only; the workers consume with aiokafka")

    # FastStream reads the payload schema from the handler's annotations.
    handler.__annotations__ = {"message": model, "return": None}
    handler.__name__ = handler.__qualname__ = model.__name__
    return handler


def contract_broker() -> KafkaBroker:
    """A never-connected broker declaring every topic of the contract with its model."""
    broker = KafkaBroker(
        _DOCUMENTED_SERVER,
        description="The local stack (`make run`); LOYALTY_KAFKA_BOOTSTRAP points elsewhere.",
    )
    for topic, model in INPUT_MODELS.items():
        subscriber = broker.subscriber(
            topic.value, title=topic.value, description=_channel_description(topic)
        )
        subscriber(_documentation_handler(model))
    for topic, output in OUTPUT_MODELS.items():
        broker.publisher(
            topic.value,
            title=topic.value,
            description=_channel_description(topic),
            schema=output,
        )
    return broker


def asyncapi_document() -> str:
    """The AsyncAPI 3.0 document as JSON text, exactly as committed in ``ASYNCAPI_PATH``."""
    specification = AsyncAPI(
        contract_broker(),
        title="Loyalty engine",
        version=CONTRACT_VERSION,
        description=(
            "Kafka topics and JSON messages of the loyalty engine's public contract, v1. "
            "All messages are UTF-8 JSON objects; keys are UTF-8 strings. Unknown fields "
            "are ignored. A change is a new version (`.v2` topics), never an edit in place."
        ),
    ).to_specification()
    return json.dumps(_in_contract_order(specification.to_jsonable()), indent=2) + "\n"


def _in_contract_order(document: dict[str, Any]) -> dict[str, Any]:
    # FastStream keeps a broker's subscribers and publishers in WeakSets, so its channels come
    # out in an order that changes from one process to the next; a committed file must not.
    def topic_rank(key: str) -> tuple[int, str]:
        topic = key.split(":", 1)[0]
        return (_TOPIC_ORDER.get(topic, len(_TOPIC_ORDER)), key)

    def ordered(mapping: dict[str, Any], rank: Callable[[str], Any]) -> dict[str, Any]:
        return {key: mapping[key] for key in sorted(mapping, key=rank)}

    document["channels"] = ordered(document["channels"], topic_rank)
    document["operations"] = ordered(document["operations"], topic_rank)
    components = document["components"]
    components["messages"] = ordered(components["messages"], topic_rank)
    components["schemas"] = ordered(components["schemas"], str)
    return document


def main(argv: Sequence[str] | None = None) -> int:
    """Write (or, with ``--check``, verify) the committed AsyncAPI document."""
    parser = argparse.ArgumentParser(prog="python -m streams.asyncapi", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 when the file is stale")
    args = parser.parse_args(argv)
    document = asyncapi_document()
    current = ASYNCAPI_PATH.read_text("utf-8") if ASYNCAPI_PATH.exists() else None
    if args.check:
        if current != document:
            print(f"{ASYNCAPI_PATH} is stale: run python -m streams.asyncapi", file=sys.stderr)
            return 1
        return 0
    if current != document:
        ASYNCAPI_PATH.write_text(document, "utf-8")
        print(f"wrote {ASYNCAPI_PATH}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
