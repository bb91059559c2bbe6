"""An endpoint's settings as a form or the provisioning file gives them, and their checks."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace

from domain.rules.webhooks import WEBHOOK_EVENT_TYPES, ordered_event_types, unknown_event_types
from domain.webhooks.errors import WebhookError
from domain.webhooks.urls import check_url

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
MIN_SECRET_LENGTH = 16
MAX_SECRET_LENGTH = 200
MAX_DESCRIPTION_LENGTH = 500


@dataclass(frozen=True)
class EndpointSpec:
    """What a merchant sets on an endpoint. ``secret`` ``None``: a new endpoint gets a
    generated one, an existing one keeps its own."""

    url: str
    event_types: tuple[str, ...]
    description: str | None = None
    is_active: bool = True
    secret: str | None = None


def new_secret() -> str:
    """A fresh signing secret: ``whsec_`` and 256 random bits."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def check_event_types(types: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The chosen types in their canonical order; ``WebhookError`` (``event_types``) when none
    is chosen or one is unknown."""
    unknown = unknown_event_types(types)
    if unknown:
        listed = ", ".join(WEBHOOK_EVENT_TYPES)
        raise WebhookError("event_types", f"unknown type {unknown[0]!r} (one of {listed})")
    chosen = ordered_event_types(types)
    if not chosen:
        raise WebhookError("event_types", "choose at least one type")
    return chosen


def check_secret(secret: str) -> str:
    """A given secret, trimmed; ``WebhookError`` (``secret``) when too short or too long to
    sign with."""
    text = secret.strip()
    if len(text) < MIN_SECRET_LENGTH:
        raise WebhookError("secret", f"must have at least {MIN_SECRET_LENGTH} characters")
    if len(text) > MAX_SECRET_LENGTH:
        raise WebhookError("secret", f"must have at most {MAX_SECRET_LENGTH} characters")
    return text


def check_spec(spec: EndpointSpec, *, allow_private: bool) -> EndpointSpec:
    """The spec with its values normalised (URL, types in order, text trimmed, an empty
    description ``None``), or the first ``WebhookError`` in the form's order."""
    url = check_url(spec.url, allow_private=allow_private)
    types = check_event_types(spec.event_types)
    description = (spec.description or "").strip() or None
    if description is not None and len(description) > MAX_DESCRIPTION_LENGTH:
        raise WebhookError("description", f"must have at most {MAX_DESCRIPTION_LENGTH} characters")
    secret = None if spec.secret is None else check_secret(spec.secret)
    return replace(spec, url=url, event_types=types, description=description, secret=secret)
