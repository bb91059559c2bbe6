"""How the webhook service says no: a field and a sentence for a person."""

from __future__ import annotations


class WebhookError(ValueError):
    """A refused endpoint setting: ``field`` names it (``url``, ``event_types``,
    ``description``, ``secret``, ``endpoint``) and ``message`` says why."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class EndpointNotFound(WebhookError):
    """No live endpoint has that id (never made, or deleted meanwhile)."""

    def __init__(self, endpoint_id: int) -> None:
        super().__init__("endpoint", f"no webhook endpoint {endpoint_id} (deleted?)")
        self.endpoint_id = endpoint_id
