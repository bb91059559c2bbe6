"""The audit: do the cards agree with the ledger, and did every event take effect once?

The ledger is the truth (DESIGN.md): a card's balances and counters are a projection of its
ledger rows, and every row names the input event behind it. The audit checks, set-based (one
query per check, whatever the number of cards):

- ``balance``: every card's balances and lifetime counters equal its ledger sums;
- ``ledger_chain``: every ledger row's ``*_after`` columns equal the running sums before it;
- ``double_applied``: no event wrote two rows of one entry type on one card (a purchase
  writes one ``stamp_earned`` and one ``points_earned``, never two of either);
- ``unrecorded_event``: every event in the ledger is in the inbox as ``applied``, so a
  redelivery of it is refused;
- ``inbox``: every inbox row has an outcome, and a ``held`` one still has its held return;
- ``purchase``: what the purchase records say an order earned is what the ledger says;
- ``version``: a card's version is at least its number of balance-changing events;
- ``negative``: no balance, counter or ledger ``*_after`` below zero;
- ``lots``: a card's released lots hold its spendable balance and its pending lots its
  pending points; every lot holds what it was given less what the ledger says was taken
  from it; the card's summary of dated lots is theirs (CONTRACT.md 7.3);
- ``outbox``: no output left unsent for longer than a grace period (default: none at all).

All checks read one snapshot (a repeatable-read, read-only transaction), so an audit running
beside the workers never sees half a batch. ``loyalty audit`` is the command line of this.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, field
from typing import Any

import asyncpg

from domain.engine.conn import Conn

CHECKS = (
    "balance",
    "ledger_chain",
    "double_applied",
    "unrecorded_event",
    "inbox",
    "purchase",
    "version",
    "negative",
    "lots",
    "outbox",
)


@dataclass(frozen=True)
class Difference:
    """One thing the audit found wrong: where, which field, what was expected, what is."""

    check: str
    card_number: str | None
    merchant_code: str | None
    field: str
    expected: Any
    actual: Any
    detail: str = ""

    def __str__(self) -> str:
        where = f"card {self.card_number}" if self.card_number else "database"
        if self.merchant_code:
            where += f" ({self.merchant_code})"
        text = f"{self.check}: {where}: {self.field} expected {self.expected}, is {self.actual}"
        return f"{text} [{self.detail}]" if self.detail else text


@dataclass
class AuditReport:
    """What the audit looked at and every difference it found (up to a limit per check)."""

    cards: int = 0
    ledger_entries: int = 0
    events: int = 0
    differences: list[Difference] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CHECKS, 0))
    """Differences per check, including those beyond the limit that were not listed."""

    @property
    def clean(self) -> bool:
        """Nothing found."""
        return not any(self.totals.values())

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "clean": self.clean,
            "cards": self.cards,
            "ledger_entries": self.ledger_entries,
            "events": self.events,
            "totals": dict(self.totals),
            "differences": [asdict(d) for d in self.differences],
        }


# The card checks take $1 = the merchant code to limit them to (NULL: all) and $2 = the most
# differences to list; count(*) OVER () gives the total before the limit.

_CARDS_IN_SCOPE = """
WITH cards AS (
    SELECT c.*, m.code AS merchant_code
    FROM loyalty_cards c JOIN merchants m ON m.id = c.merchant_id
    WHERE $1::text IS NULL OR m.code = $1::text
)"""


def _scoped(query: str) -> str:
    """``query`` with the common table ``cards``: the cards in scope."""
    return _CARDS_IN_SCOPE + query


_BALANCE = _scoped(
    """,
sums AS (
    SELECT l.card_id,
        sum(l.stamps_delta)::bigint AS stamp_count,
        sum(l.points_delta)::bigint AS points_balance,
        coalesce(sum(l.stamps_delta) FILTER (WHERE l.entry_type = 'stamp_earned'), 0)::bigint
            AS lifetime_stamps,
        count(*) FILTER (WHERE l.entry_type IN ('stamp_redeemed', 'points_redeemed'))
            AS rewards_redeemed,
        sum(l.pending_delta)::bigint AS points_pending,
        coalesce(sum(l.points_delta + l.pending_delta)
            FILTER (WHERE l.entry_type IN ('points_earned', 'welcome_bonus')), 0)::bigint
            AS lifetime_points_earned,
        coalesce(-sum(l.points_delta) FILTER (WHERE l.entry_type = 'points_redeemed'), 0)::bigint
            AS points_redeemed,
        coalesce(-sum(l.points_delta + l.pending_delta)
            FILTER (WHERE l.entry_type = 'points_voided'), 0)::bigint AS points_voided,
        coalesce(-sum(l.points_delta) FILTER (WHERE l.entry_type = 'points_expired'), 0)::bigint
            AS points_expired
    FROM ledger_entries l JOIN cards c ON c.id = l.card_id
    GROUP BY l.card_id
)
SELECT c.card_number, c.merchant_code, f.field, f.expected, f.actual,
       count(*) OVER () AS total
FROM cards c
LEFT JOIN sums s ON s.card_id = c.id
CROSS JOIN LATERAL (VALUES
    ('stamp_count', coalesce(s.stamp_count, 0), c.stamp_count::bigint),
    ('points_balance', coalesce(s.points_balance, 0), c.points_balance),
    ('points_pending', coalesce(s.points_pending, 0), c.points_pending),
    ('lifetime_stamps', coalesce(s.lifetime_stamps, 0), c.lifetime_stamps::bigint),
    ('rewards_redeemed', coalesce(s.rewards_redeemed, 0), c.rewards_redeemed::bigint),
    ('lifetime_points_earned', coalesce(s.lifetime_points_earned, 0), c.lifetime_points_earned),
    ('points_redeemed', coalesce(s.points_redeemed, 0), c.points_redeemed),
    ('points_voided', coalesce(s.points_voided, 0), c.points_voided),
    ('points_expired', coalesce(s.points_expired, 0), c.points_expired)
) AS f(field, expected, actual)
WHERE f.expected IS DISTINCT FROM f.actual
ORDER BY c.id, f.field
LIMIT $2
"""
)

# Rows are numbered in the order they were written (their id): COPY keeps a batch's order and
# a card's batches are serialised by its row lock. Only the first broken row of a card is listed.
_CHAIN = _scoped(
    """,
running AS (
    SELECT l.id, l.card_id, l.entry_type, l.source_event_id,
        l.stamp_count_after, l.points_balance_after,
        (sum(l.stamps_delta) OVER w)::bigint AS stamps_sum,
        (sum(l.points_delta) OVER w)::bigint AS points_sum
    FROM ledger_entries l JOIN cards c ON c.id = l.card_id
    WINDOW w AS (PARTITION BY l.card_id ORDER BY l.id)
),
broken AS (
    SELECT DISTINCT ON (card_id) * FROM running
    WHERE stamp_count_after <> stamps_sum OR points_balance_after <> points_sum
    ORDER BY card_id, id
)
SELECT c.card_number, c.merchant_code, b.id, b.entry_type, b.source_event_id,
       b.stamps_sum, b.points_sum, b.stamp_count_after, b.points_balance_after,
       count(*) OVER () AS total
FROM broken b JOIN cards c ON c.id = b.card_id
ORDER BY b.card_id
LIMIT $2
"""
)

_DOUBLE = _scoped(
    """
SELECT c.card_number, c.merchant_code, l.source_event_id, l.entry_type, count(*) AS rows,
       count(*) OVER () AS total
FROM ledger_entries l JOIN cards c ON c.id = l.card_id
WHERE l.source_event_id IS NOT NULL
GROUP BY c.id, c.card_number, c.merchant_code, l.source_event_id, l.entry_type
HAVING count(*) > 1
ORDER BY c.id, l.source_event_id, l.entry_type
LIMIT $2
"""
)

_UNRECORDED = _scoped(
    """,
events AS (
    SELECT DISTINCT l.card_id, l.source_event_id
    FROM ledger_entries l JOIN cards c ON c.id = l.card_id
    WHERE l.source_event_id IS NOT NULL
)
SELECT c.card_number, c.merchant_code, e.source_event_id, p.status,
       count(*) OVER () AS total
FROM events e
JOIN cards c ON c.id = e.card_id
LEFT JOIN processed_events p ON p.event_id = e.source_event_id
WHERE p.status IS DISTINCT FROM 'applied'
ORDER BY c.id, e.source_event_id
LIMIT $2
"""
)

# The inbox has no merchant column: it is checked whole ($1 = the most differences to list).
# A held event keeps its held return until the purchase arrives; a held return waiting must
# have its event still held.
_INBOX = """
SELECT * , count(*) OVER () AS total FROM (
    SELECT p.event_id, p.topic, 'status' AS field, 'applied, rejected or held' AS expected,
           p.status AS actual
    FROM processed_events p
    WHERE p.status NOT IN ('applied', 'rejected', 'held')
    UNION ALL
    SELECT p.event_id, p.topic, 'held_return', 'a return waiting for its purchase', 'none'
    FROM processed_events p
    WHERE p.status = 'held' AND NOT EXISTS (
        SELECT 1 FROM held_returns h
        WHERE h.source_event_id = p.event_id AND h.applied_at IS NULL)
    UNION ALL
    SELECT h.source_event_id, 'loyalty.returns.v1', 'status', 'held',
           coalesce(p.status, 'not in the inbox')
    FROM held_returns h LEFT JOIN processed_events p ON p.event_id = h.source_event_id
    WHERE h.applied_at IS NULL AND p.status IS DISTINCT FROM 'held'
) AS d
ORDER BY event_id, field
LIMIT $1
"""

_PURCHASES = _scoped(
    """,
earned AS (
    SELECT l.card_id, l.source_event_id,
        coalesce(sum(l.points_delta + l.pending_delta)
            FILTER (WHERE l.entry_type = 'points_earned'), 0)::bigint AS points,
        coalesce(sum(l.stamps_delta) FILTER (WHERE l.entry_type = 'stamp_earned'), 0)::bigint
            AS stamps
    FROM ledger_entries l JOIN cards c ON c.id = l.card_id
    WHERE l.entry_type IN ('points_earned', 'stamp_earned')
    GROUP BY l.card_id, l.source_event_id
)
SELECT c.card_number, c.merchant_code, p.order_reference, f.field, f.expected, f.actual,
       count(*) OVER () AS total
FROM purchases p
JOIN cards c ON c.id = p.card_id
LEFT JOIN earned e ON e.card_id = p.card_id AND e.source_event_id = p.source_event_id
CROSS JOIN LATERAL (VALUES
    ('points_earned', coalesce(e.points, 0), p.points_earned),
    ('stamps_earned', coalesce(e.stamps, 0), p.stamps_earned::bigint)
) AS f(field, expected, actual)
WHERE f.expected IS DISTINCT FROM f.actual
ORDER BY p.id, f.field
LIMIT $2
"""
)

# Each event moves a card's version once, whatever number of rows it wrote; rows without an
# event (none today) count one each.
_VERSION = _scoped(
    """,
changes AS (
    SELECT l.card_id,
        count(DISTINCT l.source_event_id) + count(*) FILTER (WHERE l.source_event_id IS NULL)
            AS n
    FROM ledger_entries l JOIN cards c ON c.id = l.card_id
    GROUP BY l.card_id
)
SELECT c.card_number, c.merchant_code, coalesce(ch.n, 0) AS changes, c.version,
       count(*) OVER () AS total
FROM cards c LEFT JOIN changes ch ON ch.card_id = c.id
WHERE c.version < coalesce(ch.n, 0)
ORDER BY c.id
LIMIT $2
"""
)

_NEGATIVE = _scoped(
    """
SELECT * , count(*) OVER () AS total FROM (
    SELECT c.id AS card_id, c.card_number, c.merchant_code, f.field, f.value
    FROM cards c CROSS JOIN LATERAL (VALUES
        ('stamp_count', c.stamp_count::bigint), ('points_balance', c.points_balance),
        ('lifetime_stamps', c.lifetime_stamps::bigint),
        ('rewards_redeemed', c.rewards_redeemed::bigint),
        ('lifetime_points_earned', c.lifetime_points_earned),
        ('points_redeemed', c.points_redeemed), ('points_voided', c.points_voided),
        ('points_expired', c.points_expired), ('stamp_day_count', c.stamp_day_count::bigint)
    ) AS f(field, value)
    WHERE f.value < 0
    UNION ALL
    SELECT c.id, c.card_number, c.merchant_code,
           'ledger entry ' || l.id || ' ' || f.field, f.value
    FROM ledger_entries l JOIN cards c ON c.id = l.card_id
    CROSS JOIN LATERAL (VALUES
        ('stamp_count_after', l.stamp_count_after::bigint),
        ('points_balance_after', l.points_balance_after)
    ) AS f(field, value)
    WHERE f.value < 0
) AS d
ORDER BY card_id, field
LIMIT $2
"""
)

# Lots: what the ledger's ``lots`` say was taken from each (releases take nothing), against
# what is left; then each card's lots against its balances and its dated summary. A lot
# made by migration from a v1 balance has no entry of its own, hence ``points`` as given.
_LOTS = _scoped(
    """,
moves AS (
    SELECT l.card_id, (e->>0)::int AS lot_no, (e->>1)::bigint AS points
    FROM ledger_entries l JOIN cards c ON c.id = l.card_id
    CROSS JOIN LATERAL jsonb_array_elements(l.lots) AS e
    WHERE l.lots IS NOT NULL AND l.entry_type <> 'points_released'
),
taken AS (
    SELECT card_id, lot_no, -sum(points) FILTER (WHERE points < 0) AS taken,
           sum(points) FILTER (WHERE points > 0) AS made
    FROM moves GROUP BY card_id, lot_no
),
per_lot AS (
    SELECT c.card_number, c.merchant_code, c.id AS card_id,
           'lot ' || o.lot_no || ' remaining' AS field,
           o.points - coalesce(t.taken, 0) AS expected, o.remaining AS actual
    FROM point_lots o JOIN cards c ON c.id = o.card_id
    LEFT JOIN taken t ON t.card_id = o.card_id AND t.lot_no = o.lot_no
    UNION ALL
    SELECT c.card_number, c.merchant_code, c.id, 'lot ' || o.lot_no || ' points',
           coalesce(t.made, o.points), o.points
    FROM point_lots o JOIN cards c ON c.id = o.card_id
    LEFT JOIN taken t ON t.card_id = o.card_id AND t.lot_no = o.lot_no
),
held AS (
    SELECT card_id,
           coalesce(sum(remaining) FILTER (WHERE NOT pending), 0)::bigint AS released,
           coalesce(sum(remaining) FILTER (WHERE pending), 0)::bigint AS pending,
           coalesce(sum(remaining) FILTER (WHERE expires_at IS NOT NULL), 0)::bigint AS dated
    FROM point_lots GROUP BY card_id
),
per_card AS (
    SELECT c.card_number, c.merchant_code, c.id, f.field, f.expected, f.actual
    FROM cards c LEFT JOIN held h ON h.card_id = c.id
    CROSS JOIN LATERAL (VALUES
        ('points_balance (released lots)', coalesce(h.released, 0), c.points_balance),
        ('points_pending (pending lots)', coalesce(h.pending, 0), c.points_pending),
        ('dated_points (dated lots)', coalesce(h.dated, 0), c.dated_points)
    ) AS f(field, expected, actual)
)
SELECT card_number, merchant_code, field, expected, actual, count(*) OVER () AS total
FROM (SELECT * FROM per_lot UNION ALL SELECT * FROM per_card) d
WHERE expected IS DISTINCT FROM actual
ORDER BY card_id, field
LIMIT $2
"""
)

_OUTBOX = """
SELECT topic, sum(count) AS unsent, min(created_at) AS oldest,
       extract(epoch FROM now() - min(created_at))::float8 AS age_s
FROM outbox
WHERE sent_at IS NULL AND created_at <= now() - make_interval(secs => $1)
GROUP BY topic
ORDER BY topic
"""

_SIZES = _scoped(
    """
SELECT (SELECT count(*) FROM cards) AS cards,
       (SELECT count(*) FROM ledger_entries l JOIN cards c ON c.id = l.card_id) AS ledger,
       (SELECT count(*) FROM processed_events) AS events
"""
)


async def run_audit(
    conn: Conn,
    *,
    unsent_grace_s: float = 0.0,
    merchant_code: str | None = None,
    limit: int = 100,
) -> AuditReport:
    """Audit the database ``conn`` is connected to; see the module's docstring.

    Runs in the caller's transaction when there is one (and then sees its writes), else in
    a repeatable-read snapshot of its own. ``unsent_grace_s``: outbox rows younger than this
    are not reported (a running relay has not had the time to send them). ``merchant_code``
    limits the card checks to one merchant (the inbox and the outbox have no merchant and are
    always checked whole). ``limit``: the most differences listed per check; ``totals``
    counts them all.
    """
    report = AuditReport()
    snapshot = (
        contextlib.nullcontext()
        if conn.is_in_transaction()
        else conn.transaction(isolation="repeatable_read", readonly=True)
    )
    async with snapshot:
        sizes = await conn.fetchrow(_SIZES, merchant_code)
        assert sizes is not None
        report.cards, report.ledger_entries, report.events = (
            sizes["cards"],
            sizes["ledger"],
            sizes["events"],
        )
        for check, sql, describe in _CARD_CHECKS:
            rows = await conn.fetch(sql, merchant_code, limit)
            report.totals[check] = rows[0]["total"] if rows else 0
            report.differences.extend(describe(r) for r in rows)
        rows = await conn.fetch(_INBOX, limit)
        report.totals["inbox"] = rows[0]["total"] if rows else 0
        report.differences.extend(_inbox(r) for r in rows)
        rows = await conn.fetch(_OUTBOX, unsent_grace_s)
        report.totals["outbox"] = sum(r["unsent"] for r in rows)
        report.differences.extend(
            Difference(
                "outbox",
                None,
                None,
                f"unsent {r['topic']}",
                0,
                r["unsent"],
                f"oldest {r['oldest'].isoformat()}, {r['age_s']:.0f} s old",
            )
            for r in rows
        )
    return report


async def audit_database(dsn: str, **options: Any) -> AuditReport:
    """``run_audit`` over a connection of its own to ``dsn`` (a ``postgresql://`` URL)."""
    conn = await asyncpg.connect(dsn)
    try:
        return await run_audit(conn, **options)
    finally:
        await conn.close()


def _balance(r: Any) -> Difference:
    return Difference(
        "balance", r["card_number"], r["merchant_code"], r["field"], r["expected"], r["actual"],
        "expected: the ledger's sum; is: the card",
    )  # fmt: skip


def _chain(r: Any) -> Difference:
    return Difference(
        "ledger_chain",
        r["card_number"],
        r["merchant_code"],
        f"ledger entry {r['id']} ({r['entry_type']}) balances after",
        (r["stamps_sum"], r["points_sum"]),
        (r["stamp_count_after"], r["points_balance_after"]),
        f"(stamps, points); event {r['source_event_id']}",
    )


def _double(r: Any) -> Difference:
    return Difference(
        "double_applied",
        r["card_number"],
        r["merchant_code"],
        f"{r['entry_type']} rows of event {r['source_event_id']}",
        1,
        r["rows"],
    )


def _unrecorded(r: Any) -> Difference:
    return Difference(
        "unrecorded_event",
        r["card_number"],
        r["merchant_code"],
        f"inbox status of event {r['source_event_id']}",
        "applied",
        r["status"] or "not in the inbox",
    )


def _inbox(r: Any) -> Difference:
    return Difference(
        "inbox",
        None,
        None,
        f"{r['field']} of event {r['event_id']} ({r['topic']})",
        r["expected"],
        r["actual"],
    )


def _purchase(r: Any) -> Difference:
    return Difference(
        "purchase",
        r["card_number"],
        r["merchant_code"],
        f"{r['field']} of order {r['order_reference']}",
        r["expected"],
        r["actual"],
        "expected: the ledger; is: the purchase record",
    )


def _version(r: Any) -> Difference:
    return Difference(
        "version",
        r["card_number"],
        r["merchant_code"],
        "version",
        f">= {r['changes']}",
        r["version"],
        "at least one version per balance-changing event",
    )


def _lots(r: Any) -> Difference:
    return Difference(
        "lots", r["card_number"], r["merchant_code"], r["field"], r["expected"], r["actual"],
        "expected: the ledger's moves or the lots' sum; is: the lot or the card",
    )  # fmt: skip


def _negative(r: Any) -> Difference:
    return Difference(
        "negative", r["card_number"], r["merchant_code"], r["field"], ">= 0", r["value"]
    )


_CARD_CHECKS = (
    ("balance", _BALANCE, _balance),
    ("ledger_chain", _CHAIN, _chain),
    ("double_applied", _DOUBLE, _double),
    ("unrecorded_event", _UNRECORDED, _unrecorded),
    ("purchase", _PURCHASES, _purchase),
    ("version", _VERSION, _version),
    ("negative", _NEGATIVE, _negative),
    ("lots", _LOTS, _lots),
)
