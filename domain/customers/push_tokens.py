"""Erased customers' Apple push tokens, replaced once nothing needs them any more.

An erasure deactivates the customer's cards; the wallet sync then pushes every device holding
their passes, and the devices fetch the pass again: void, without the customer's name. Were
the tokens replaced at the erasure, that push could not be sent and the passes would stay as
they were. So an erasure leaves the tokens of the cards it deactivated, and the wallet sync,
after each push (``consumers.wallet_sync``), replaces those whose card it has synced to its
current version; the registration itself stays, because the device asks for its passes by its
library id and must find the void one. A token the sync cannot push (APNs refusing a device)
is replaced ``PUSH_GRACE`` after the erasure all the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from core.logs import get_logger
from domain.customers.finding import ERASED_PREFIX

log = get_logger(__name__)

PUSH_GRACE = timedelta(days=7)
"""How long an erased customer's push tokens wait for the void pass to be pushed before they
are replaced anyway (APNs refusing a device for a week is a device that will not be told)."""


async def release_push_tokens(
    session: AsyncSession,
    *,
    card_ids: Sequence[int] | None = None,
    card_numbers: Sequence[str] | None = None,
    customer_id: int | None = None,
    wait_for_push: bool = True,
) -> int:
    """Replace the push tokens of erased customers' device registrations by pseudonyms, once
    nothing needs them any more; returns how many were replaced. The caller commits.

    With ``wait_for_push`` (the normal case), a token goes when the card's Apple pass is
    synced to the card's current version (the deactivation, hence the void pass, was pushed:
    ``wallet_sync_state``), when the card or its customer is deleted (the wallet sync never
    pushes those), or ``PUSH_GRACE`` after the erasure. Without it, at once (a process that
    pushes to no Apple device, or cards whose passes were voided earlier). ``card_ids``,
    ``card_numbers`` and ``customer_id`` narrow the search; without any, every erased
    customer's registrations.

    The registration itself stays: the device still asks for its passes by its library id,
    and must find the void pass.
    """
    conditions = [
        "r.card_id = c.id",
        "cu.erased_at IS NOT NULL",
        f"r.push_token NOT LIKE '{ERASED_PREFIX}%'",
    ]
    params: dict[str, Any] = {}
    if card_ids is not None:
        conditions.append("c.id = ANY(CAST(:card_ids AS bigint[]))")
        params["card_ids"] = list(card_ids)
    if card_numbers is not None:
        conditions.append("c.card_number = ANY(CAST(:card_numbers AS text[]))")
        params["card_numbers"] = list(card_numbers)
    if customer_id is not None:
        conditions.append("cu.id = :customer_id")
        params["customer_id"] = customer_id
    if wait_for_push:
        conditions.append(
            "(coalesce(s.synced_version, 0) >= c.version"
            " OR c.deleted_at IS NOT NULL OR cu.deleted_at IS NOT NULL"
            " OR cu.erased_at <= now() - make_interval(secs => :grace))"
        )
        params["grace"] = PUSH_GRACE.total_seconds()
    statement = f"""
UPDATE apple_device_registrations AS r
SET push_token = '{ERASED_PREFIX}' || replace(gen_random_uuid()::text, '-', '')
FROM loyalty_cards AS c
JOIN customers AS cu ON cu.id = c.customer_id
LEFT JOIN wallet_sync_state AS s ON s.card_id = c.id AND s.wallet = 'apple'
WHERE {" AND ".join(conditions)}
"""  # noqa: S608 - the conditions are this function's own constants; values are bound
    result: Any = await session.execute(text(statement), params)
    released = int(result.rowcount or 0)
    if released:
        log.info(
            "erased_push_tokens_replaced",
            registrations=released,
            customer_id=customer_id,
        )
    return released
