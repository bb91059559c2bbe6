"""Two batches in flight: which events of a batch may be applied while the batch before it
is still being written and committed.

A worker applies batch N+1's rules while batch N's last writes and its commit are under way
(``consumers.pipeline``). Events that share nothing with batch N go first ("ahead"), on
state that batch N does not change; the others ("behind") wait for batch N's commit and are
loaded afresh after it. Sharing is judged on what the events name (event ids, card
references, customers, orders), before anything is loaded, and on the card ids once the
ahead events' cards are loaded (``Overlapped``), so a card is never read while the batch
before holds it uncommitted.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from core.commands import Enrol, ExpiryRun, Purchase, Redeem, Return
from domain.engine.context import Inbound


@dataclass(frozen=True)
class BatchKeys:
    """What a batch in flight names and holds, as the batch after it checks."""

    event_ids: frozenset[uuid.UUID] = frozenset()
    names: frozenset[str] = frozenset()
    """Card numbers, QR tokens, emails, customer and order references, as plain strings: a
    value shared by two merchants only makes an event wait for nothing."""
    card_ids: frozenset[int] = frozenset()
    """The cards the batch loaded (and locked) or created."""
    exclusive: bool = False
    """The batch ran set-based work (the expiry run): the next batch waits whole."""


class Predecessor(Protocol):
    """The batch before, still being written: its keys, and a wait for its commit."""

    @property
    def keys(self) -> BatchKeys:
        """What it names and holds."""

    async def committed(self) -> None:
        """Return once it committed; raise ``PreviousFailed`` if it did not."""


class PreviousFailed(Exception):
    """The batch before this one failed after this one started on its rules: this one rolls
    back too, and both are read again."""


class Overlapped(Exception):
    """An event applied ahead named a card the batch before holds (a way of naming it that
    the names did not show): the batch rolls back and is applied again after that one."""


def names_of(cmd: object) -> list[str]:
    """The values an event names things by (see ``BatchKeys.names``)."""
    out: list[str] = []
    if isinstance(cmd, Purchase | Redeem):
        out.append(cmd.card.value)
    if isinstance(cmd, Purchase | Return):
        out.append(cmd.order_reference)
    if isinstance(cmd, Return) and cmd.card is not None:
        out.append(cmd.card.value)
    if isinstance(cmd, Enrol):
        if cmd.customer.email:
            out.append(cmd.customer.email)
        if cmd.customer.customer_ref:
            out.append(cmd.customer.customer_ref)
    return out


def keys_of(events: Iterable[Inbound], card_ids: Iterable[int]) -> BatchKeys:
    """The keys of a batch whose rules are done: its events and the cards it loaded."""
    ids: set[uuid.UUID] = set()
    names: set[str] = set()
    exclusive = False
    for ev in events:
        cmd = ev.command
        ids.add(cmd.event_id)
        if isinstance(cmd, ExpiryRun):
            exclusive = True
        names.update(names_of(cmd))
    return BatchKeys(frozenset(ids), frozenset(names), frozenset(card_ids), exclusive)


@dataclass
class Split:
    """A batch's events in two parts, each in the batch's order."""

    ahead: list[Inbound] = field(default_factory=list)
    behind: list[Inbound] = field(default_factory=list)


def split(events: Sequence[Inbound], before: BatchKeys) -> Split:
    """Which events share nothing with the batch ``before`` (ahead) and which wait for its
    commit (behind).

    An event that shares a name with one already behind goes behind too, so that every
    event naming a card, customer or order stays in one part, in its order.
    """
    parts = Split()
    if before.exclusive or any(isinstance(ev.command, ExpiryRun) for ev in events):
        parts.behind.extend(events)
        return parts
    waiting = set(before.names)
    for ev in events:
        names = names_of(ev.command)
        if ev.command.event_id in before.event_ids or not waiting.isdisjoint(names):
            parts.behind.append(ev)
            waiting.update(names)
        else:
            parts.ahead.append(ev)
    return parts
