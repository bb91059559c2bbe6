"""Dead letters for the pipeline page: one page at a time, grouped by kind of error, one
opened; and what an operator does with them: re-drive them to their source topic (one, a
group, or those ticked) or discard them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from admin_ui.problems import DomainRefusal
from admin_ui.queries.admins import Principal
from admin_ui.queries.common import PageRequest, Rows, like, page
from core.logs import get_logger
from domain.models import (
    DeadLetter,
)
from streams.topics import TYPE_OF_TOPIC

BASE64_MARK = "; payload is base64"


log = get_logger(__name__)

# --- dead letters ------------------------------------------------------------------------------
#
# A dead letter waits until an operator re-drives it (``redriven_at`` is set then) or discards
# it. Discarding deletes the panel's copy: the table has no discarded state, and the record is
# not lost with it, since the engine also published it to ``loyalty.dlq.v1`` (and the original
# stays at its offset on the source topic) for as long as the topics keep their records.

PREVIEW_CHARS = 300
"""How much of a payload a page of the list reads; the full one is read when a row opens."""
DETAIL_CHARS = 200_000
"""How much of a payload an opened row reads (a payload may be megabytes)."""
REDRIVE_BATCH = 100
"""Dead letters re-driven per transaction: their payloads are held in memory meanwhile."""
MAX_CHOSEN = 1000

# The engine words an error as ``path: rule (got value)`` sentences joined by "; "
# (``streams.parsing``). Letters of one kind differ in the values they got, in where a value
# stopped being JSON or UTF-8, and in how many further errors there were: without those, what
# is left names the kind. Regular expressions of PostgreSQL, so the grouping is SQL's. A value
# may hold "; " and ")" itself, so it ends at the first ")" that ends the error or that the
# next sentence's "path: " follows (the expression is non-greedy, as its first quantifier).
_NEXT_SENTENCE = r"; [A-Za-z_][A-Za-z0-9_.\[\]]*: |; and [0-9]+ more$"
_GOT = rf" \(got .*?\)(?={_NEXT_SENTENCE}|$)"
_UNREADABLE = r"^(value is not (valid JSON|UTF-8 text)) \([^;]*\)"
_MORE = r"; and [0-9]+ more$"

LetterState = Literal["waiting", "redriven", "all"]


def error_kind(error: ColumnElement[str] | InstrumentedAttribute[str]) -> ColumnElement[str]:
    """SQL for the kind of an error: its words without the values that vary between letters
    (``amount_cents: must be an integer >= 0 (got -5)`` -> ``amount_cents: must be an integer
    >= 0``)."""
    without_values = func.regexp_replace(error, _GOT, "", "g")
    without_position = func.regexp_replace(without_values, _UNREADABLE, r"\1")
    return func.regexp_replace(without_position, _MORE, "; and more")


def require_platform(me: Principal) -> None:
    # The page is only built for platform admins; this holds even if a handler leaked.
    if not me.is_platform:
        raise DomainRefusal("only a platform admin may act on dead letters")


@dataclass(frozen=True)
class DeadLetterGroup:
    """The waiting dead letters of one source topic and one kind of error."""

    source_topic: str
    kind: str
    count: int
    first_at: datetime
    last_at: datetime
    newest_id: int
    """The newest letter counted: a bulk action takes no letter that arrived after it."""

    @property
    def message_type(self) -> str:
        """The message type the source topic carries (``purchase.completed``)."""
        return TYPE_OF_TOPIC.get(self.source_topic, self.source_topic)


async def dead_letter_groups(session: AsyncSession, request: PageRequest) -> Rows[DeadLetterGroup]:
    """The waiting dead letters grouped by source topic and kind of error (GROUP BY), the
    largest group first; the search looks in the kind and the topic."""
    inner = (
        select(
            DeadLetter.id,
            DeadLetter.source_topic,
            DeadLetter.occurred_at,
            error_kind(DeadLetter.error).label("kind"),
        )
        .where(DeadLetter.redriven_at.is_(None))
        .subquery()
    )
    query = select(
        inner.c.source_topic,
        inner.c.kind,
        func.count().label("n"),
        func.min(inner.c.occurred_at),
        func.max(inner.c.occurred_at),
        func.max(inner.c.id),
        func.count().over().label("groups"),
    ).group_by(inner.c.source_topic, inner.c.kind)
    if request.search:
        pattern = like(request.search)
        query = query.having(or_(inner.c.kind.ilike(pattern), inner.c.source_topic.ilike(pattern)))
    rows = (
        await session.execute(
            query.order_by(func.count().desc(), func.max(inner.c.occurred_at).desc(), inner.c.kind)
            .offset(request.offset)
            .limit(request.limit)
        )
    ).all()
    total = int(rows[0].groups) if rows else 0
    if not rows and request.offset:
        # Past the last page: the count comes from a query of its own.
        total = int(await session.scalar(select(func.count()).select_from(query.subquery())) or 0)
    return Rows(
        [DeadLetterGroup(r[0], r[1], int(r[2]), r[3], r[4], int(r[5])) for r in rows], total
    )


@dataclass(frozen=True)
class DeadLetterCounts:
    """How many dead letters wait, and how many were re-driven."""

    waiting: int
    redriven: int


async def dead_letter_counts(session: AsyncSession) -> DeadLetterCounts:
    """Waiting and re-driven dead letters, in one pass."""
    row = (
        await session.execute(
            select(
                func.count().filter(DeadLetter.redriven_at.is_(None)),
                func.count().filter(DeadLetter.redriven_at.is_not(None)),
            )
        )
    ).one()
    return DeadLetterCounts(int(row[0]), int(row[1]))


@dataclass(frozen=True)
class LetterFilter:
    """Which dead letters the list shows: by state, and of one group when told."""

    state: LetterState = "all"
    source_topic: str | None = None
    kind: str | None = None


@dataclass(frozen=True)
class DeadLetterRow:
    """A dead-lettered record as the list shows it: its payload's start only."""

    id: int
    occurred_at: datetime
    source_topic: str
    partition: int
    offset: int
    key: str | None
    payload: str
    """The first ``PREVIEW_CHARS`` characters."""
    error: str
    redriven_at: datetime | None
    payload_chars: int = 0
    """The whole payload's length."""


async def dead_letters(
    session: AsyncSession, request: PageRequest, letters: LetterFilter | None = None
) -> Rows[DeadLetterRow]:
    """Dead letters, newest first, one page (all of them unless ``letters`` says); the search
    looks in the error, payload and topic."""
    letters = letters or LetterFilter()
    query = select(
        DeadLetter.id,
        DeadLetter.occurred_at,
        DeadLetter.source_topic,
        DeadLetter.partition,
        DeadLetter.offset,
        DeadLetter.key,
        func.left(DeadLetter.payload, PREVIEW_CHARS),
        DeadLetter.error,
        DeadLetter.redriven_at,
        func.length(DeadLetter.payload),
    )
    if letters.state == "waiting":
        query = query.where(DeadLetter.redriven_at.is_(None))
    elif letters.state == "redriven":
        query = query.where(DeadLetter.redriven_at.is_not(None))
    if letters.source_topic is not None:
        query = query.where(DeadLetter.source_topic == letters.source_topic)
    if letters.kind is not None:
        query = query.where(error_kind(DeadLetter.error) == letters.kind)
    if request.search:
        pattern = like(request.search)
        query = query.where(
            or_(
                DeadLetter.error.ilike(pattern),
                DeadLetter.payload.ilike(pattern),
                DeadLetter.source_topic.ilike(pattern),
            )
        )
    rows, total = await page(session, query, request, DeadLetter.id.desc())
    return Rows(
        [
            DeadLetterRow(
                r[0], r[1], r[2], r[3], r[4], r[5], r[6] or "", r[7], r[8], int(r[9] or 0)
            )
            for r in rows
        ],
        total,
    )


@dataclass(frozen=True)
class DeadLetterDetail:
    """One dead letter in full (its payload up to ``DETAIL_CHARS`` characters)."""

    id: int
    occurred_at: datetime
    source_topic: str
    partition: int
    offset: int
    key: str | None
    payload: str
    payload_chars: int
    error: str
    redriven_at: datetime | None

    @property
    def is_base64(self) -> bool:
        """Whether the payload is the base64 of bytes that were not UTF-8 text."""
        return is_base64_error(self.error)


async def dead_letter(session: AsyncSession, letter_id: int) -> DeadLetterDetail | None:
    """The dead letter with this id, or ``None``."""
    row = (
        await session.execute(
            select(
                DeadLetter.id,
                DeadLetter.occurred_at,
                DeadLetter.source_topic,
                DeadLetter.partition,
                DeadLetter.offset,
                DeadLetter.key,
                func.left(DeadLetter.payload, DETAIL_CHARS),
                func.length(DeadLetter.payload),
                DeadLetter.error,
                DeadLetter.redriven_at,
            ).where(DeadLetter.id == letter_id)
        )
    ).first()
    if row is None:
        return None
    return DeadLetterDetail(
        row[0], row[1], row[2], row[3], row[4], row[5], row[6] or "", int(row[7] or 0), *row[8:]
    )


def is_base64_error(error: str) -> bool:
    """Whether a dead letter's error says its payload is kept as base64 (bytes not UTF-8)."""
    return error.endswith(BASE64_MARK) or BASE64_MARK + ";" in error
