"""Webhooks for merchants without Kafka: their endpoints, signatures and retry rules.

A merchant's endpoints (``WebhookEndpoint``) choose output types among
``WEBHOOK_EVENT_TYPES``; the dispatcher (``consumers.webhooks``) queues every such output
message of the merchant for each endpoint and delivers it at least once, in order per card,
signed (``sign``/``verify``), retrying with ``next_delay`` until ``is_expired`` parks it.

- ``urls``: ``check_url``, which addresses the engine may call;
- ``signing``: ``sign``, ``verify`` and the headers of an attempt;
- ``specs``: ``EndpointSpec`` and its checks; ``errors``: ``WebhookError``;
- ``endpoints``: the service over the ORM (create, update, rotate, delete, re-send);
- ``http``: one HTTP attempt over connections that reach only allowed addresses;
- ``queue``: the deliveries' statuses, the channel that wakes the dispatchers, their SQL;
- the pure retry rules live in ``domain.rules.webhooks``.

The service is imported on first use: the dispatcher needs the rules and the signing but not
SQLAlchemy and the models, which would add a second to its start.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from domain.rules.webhooks import WEBHOOK_EVENT_TYPES, is_expired, next_delay
from domain.webhooks.errors import EndpointNotFound, WebhookError
from domain.webhooks.signing import sign, verify
from domain.webhooks.specs import EndpointSpec, new_secret
from domain.webhooks.urls import check_url

if TYPE_CHECKING:
    from domain.webhooks.endpoints import (
        create_endpoint,
        delete_endpoint,
        get_endpoint,
        list_endpoints,
        resend,
        rotate_secret,
        update_endpoint,
    )

_SERVICE = frozenset(
    {
        "create_endpoint",
        "delete_endpoint",
        "get_endpoint",
        "list_endpoints",
        "resend",
        "rotate_secret",
        "update_endpoint",
    }
)

__all__ = [
    "WEBHOOK_EVENT_TYPES",
    "EndpointNotFound",
    "EndpointSpec",
    "WebhookError",
    "check_url",
    "create_endpoint",
    "delete_endpoint",
    "get_endpoint",
    "is_expired",
    "list_endpoints",
    "new_secret",
    "next_delay",
    "resend",
    "rotate_secret",
    "sign",
    "update_endpoint",
    "verify",
]


def __getattr__(name: str) -> Any:
    if name in _SERVICE:
        return getattr(importlib.import_module("domain.webhooks.endpoints"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
