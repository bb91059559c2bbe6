"""What an operator does with dead letters: re-drive them to their source topic (one, a group,
or those ticked; each at most once however often it is asked) or discard them; both recorded
in the admin audit trail."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from sqlalchemy import ColumnElement, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from admin_ui.problems import DomainRefusal
from admin_ui.queries.admins import Principal
from admin_ui.queries.dead_letters import (
    MAX_CHOSEN,
    REDRIVE_BATCH,
    DeadLetterGroup,
    error_kind,
    is_base64_error,
    require_platform,
)
from admin_ui.queries.pipeline import KAFKA_TIMEOUT_S, quiet_kafka_client
from core.logs import get_logger
from core.settings import Settings
from domain.audit_trail import record_change
from domain.models import (
    DeadLetter,
)
from streams.broker import producer_config

log = get_logger(__name__)


@dataclass(frozen=True)
class OfKind:
    """The waiting dead letters of a group, up to the newest one the admin was shown."""

    source_topic: str
    kind: str
    newest_id: int

    @classmethod
    def of(cls, group: DeadLetterGroup) -> OfKind:
        """The letters ``group`` counted."""
        return cls(group.source_topic, group.kind, group.newest_id)


@dataclass(frozen=True)
class Chosen:
    """Dead letters the admin ticked, by id."""

    ids: tuple[int, ...]


Which = OfKind | Chosen


def _which(which: Which) -> list[ColumnElement[bool]]:
    if isinstance(which, OfKind):
        return [
            DeadLetter.redriven_at.is_(None),
            DeadLetter.id <= which.newest_id,
            DeadLetter.source_topic == which.source_topic,
            error_kind(DeadLetter.error) == which.kind,
        ]
    if not which.ids:
        raise DomainRefusal("no dead letter is chosen")
    if len(which.ids) > MAX_CHOSEN:
        raise DomainRefusal(f"choose at most {MAX_CHOSEN} dead letters at a time")
    return [DeadLetter.id.in_(which.ids)]


@dataclass(frozen=True)
class Redriven:
    """What one batch of a bulk re-drive did."""

    count: int
    """Letters published again and marked re-driven."""
    topics: tuple[str, ...]
    failed: int = 0
    """Letters Kafka did not take (still waiting)."""
    error: str | None = None
    """Why Kafka did not take them."""
    full: bool = False
    """The batch was full: more letters of the selection may wait."""


async def redrive_waiting(
    session: AsyncSession,
    settings: Settings,
    me: Principal,
    which: Which,
    *,
    limit: int = REDRIVE_BATCH,
) -> Redriven:
    """Publish the waiting letters of ``which`` (at most ``limit``, oldest first) to their
    source topics again and mark them re-driven; letters already re-driven are left alone.

    Each letter is re-driven at most once however often this runs, also at the same time:
    the letters are locked while they are published, and a second run waiting on the lock
    finds them re-driven when it gets it. Letters Kafka did not take stay waiting (``failed``,
    ``error``); ``DomainRefusal`` when Kafka cannot be reached at all (nothing changes then).
    The caller commits; run it again while ``full`` to take the rest.
    """
    require_platform(me)
    letters = (
        await session.scalars(
            select(DeadLetter)
            .where(*_which(which), DeadLetter.redriven_at.is_(None))
            .order_by(DeadLetter.id)
            .limit(limit)
            .with_for_update()
        )
    ).all()
    if not letters:
        return Redriven(0, ())
    published, error = await _publish(settings, letters)
    if published:
        await session.execute(
            update(DeadLetter)
            .where(DeadLetter.id.in_(published))
            .values(redriven_at=func.now())
            .execution_options(synchronize_session=False)
        )
    topics = tuple(sorted({letter.source_topic for letter in letters if letter.id in published}))
    if published:
        await _record_redrive(session, sorted(published), topics)
    log.info(
        "admin_ui.dead_letters_redriven",
        admin=me.username,
        count=len(published),
        failed=len(letters) - len(published),
        topics=list(topics),
    )
    return Redriven(
        len(published), topics, len(letters) - len(published), error, len(letters) == limit
    )


async def discard(session: AsyncSession, me: Principal, which: Which) -> int:
    """Delete the dead letters of ``which`` (a group's waiting ones; chosen ones whatever their
    state) and record it in the admin audit trail; returns how many went. A second run finds
    none left. The caller commits."""
    require_platform(me)
    gone = (
        await session.scalars(
            delete(DeadLetter)
            .where(*_which(which))
            .returning(DeadLetter.id)
            .execution_options(synchronize_session=False)
        )
    ).all()
    if not gone:
        return 0
    before: dict[str, object] = {"count": len(gone), "ids": sorted(gone)[:MAX_CHOSEN]}
    if isinstance(which, OfKind):
        before |= {"source_topic": which.source_topic, "error": which.kind}
    await record_change(
        session,
        action="discard",
        entity="dead_letter",
        entity_id=gone[0] if len(gone) == 1 else None,
        merchant_id=None,
        before=before,
        after=None,
        note=f"({len(gone)} in all)",
    )
    log.info("admin_ui.dead_letters_discarded", admin=me.username, count=len(gone))
    return len(gone)


def _payload_bytes(letter: DeadLetter) -> bytes:
    if is_base64_error(letter.error):
        return base64.b64decode(letter.payload)
    return letter.payload.encode("utf-8")


def _producer(settings: Settings) -> AIOKafkaProducer:
    config = producer_config(settings, "admin-ui")
    config["request_timeout_ms"] = int(KAFKA_TIMEOUT_S * 1000)
    return AIOKafkaProducer(**config)


def _refused(settings: Settings, exc: BaseException) -> str:
    return f"Kafka did not take the message ({settings.bootstrap}): {exc or type(exc).__name__}"


async def _publish(
    settings: Settings, letters: Sequence[DeadLetter]
) -> tuple[set[int], str | None]:
    """Send each letter's original key and payload to its source topic, in id order; the ids
    Kafka acknowledged, and why the others were not (``None`` when all were).
    ``DomainRefusal`` when the producer cannot even start."""
    producer = _producer(settings)
    try:
        with quiet_kafka_client():
            try:
                await asyncio.wait_for(producer.start(), KAFKA_TIMEOUT_S)
            except Exception as exc:  # reported to the admin; nothing changed
                raise DomainRefusal(f"{_refused(settings, exc)}; nothing was re-driven") from None
            # Queued one after the other, so letters of one partition keep their order.
            queued: list[tuple[int, asyncio.Future[Any]]] = []
            error: str | None = None
            for letter in letters:
                key = letter.key.encode("utf-8") if letter.key is not None else None
                try:
                    sent = await asyncio.wait_for(
                        producer.send(letter.source_topic, value=_payload_bytes(letter), key=key),
                        KAFKA_TIMEOUT_S,
                    )
                except Exception as exc:  # the rest stay waiting
                    error = _refused(settings, exc)
                    break
                queued.append((letter.id, sent))
            published: set[int] = set()
            for letter_id, sent in queued:
                try:
                    await asyncio.wait_for(sent, KAFKA_TIMEOUT_S)
                except Exception as exc:  # not acknowledged: it stays waiting
                    error = error or _refused(settings, exc)
                else:
                    published.add(letter_id)
            return published, error
    finally:
        with contextlib.suppress(Exception):
            await producer.stop()


async def redrive(session: AsyncSession, settings: Settings, me: Principal, letter_id: int) -> str:
    """Publish a dead letter's original payload (and key) to its source topic again, then mark
    it re-driven (also one re-driven before: the admin asked for it again). Returns the topic.
    ``DomainRefusal`` when Kafka cannot take it (nothing is marked then). The caller commits."""
    require_platform(me)
    letter = (
        await session.scalars(
            select(DeadLetter).where(DeadLetter.id == letter_id).with_for_update()
        )
    ).first()
    if letter is None:
        raise DomainRefusal("this dead letter does not exist")
    published, error = await _publish(settings, [letter])
    if not published:
        raise DomainRefusal(f"{error}; nothing was re-driven")
    await session.execute(
        update(DeadLetter).where(DeadLetter.id == letter_id).values(redriven_at=func.now())
    )
    await _record_redrive(session, [letter_id], (letter.source_topic,))
    return letter.source_topic


async def _record_redrive(session: AsyncSession, ids: list[int], topics: tuple[str, ...]) -> None:
    """One audit-trail row for letters published again (ids cut at ``MAX_CHOSEN``)."""
    await record_change(
        session,
        action="redrive",
        entity="dead_letter",
        entity_id=ids[0] if len(ids) == 1 else None,
        merchant_id=None,
        before=None,
        after={"count": len(ids), "ids": ids[:MAX_CHOSEN], "topics": list(topics)},
        note=f"({len(ids)} in all)" if len(ids) > 1 else None,
    )
