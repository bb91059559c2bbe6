"""The base class of every message model."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ContractModel(BaseModel):
    """A JSON object of contract v1.

    Unknown fields are ignored, not refused: a producer that already sends a field a later
    version adds must not have its messages dead-lettered by this version (forward
    compatibility). Models are frozen because a parsed message is a fact, shared by the rules
    of a batch without copying.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    def to_json(self) -> bytes:
        """The message as UTF-8 JSON, as it travels on Kafka."""
        return self.__pydantic_serializer__.to_json(self)
