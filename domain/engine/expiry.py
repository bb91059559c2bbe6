"""Points expiry, set-based: one statement expires every idle card of the run's merchants.

The rule is ``domain.rules.expire.decide_expiry``; this is the same rule in SQL, so a run over
a million cards is one round trip, and a property test runs both over random cards and
checks they agree (``tests/domain/test_expiry_agreement.py``). Idempotent: a second run finds
no idle balance left.
"""

from __future__ import annotations

from datetime import datetime

from core.commands import ExpiryRun
from domain.engine.conn import Conn
from domain.engine.outbox import NOTIFY, shard_sql

_EXPIRE_SQL = """
WITH idle AS (
    SELECT c.id, c.points_balance AS expired, m.code AS merchant_code, p.stamps_target,
           p.type IN ('stamps', 'hybrid') AS stamps_enabled
    FROM loyalty_cards c
    JOIN loyalty_programs p ON p.id = c.program_id AND p.deleted_at IS NULL
    JOIN merchants m ON m.id = c.merchant_id AND m.deleted_at IS NULL
    WHERE c.deleted_at IS NULL
      AND c.points_balance > 0
      AND p.points_expiration_days IS NOT NULL
      AND p.type IN ('points', 'hybrid')
      AND c.last_activity_at < $1::timestamptz - make_interval(days => p.points_expiration_days)
      AND ($2::text IS NULL OR m.code = $2::text)
    ORDER BY c.id
    FOR UPDATE OF c
),
expired AS (
    UPDATE loyalty_cards c
    SET points_expired = c.points_expired + i.expired, points_balance = 0,
        version = c.version + 1, updated_at = now()
    FROM idle i WHERE c.id = i.id
    RETURNING c.id, c.merchant_id, c.card_number, c.stamp_count, c.is_active, c.version,
              i.expired, i.merchant_code, i.stamps_target, i.stamps_enabled
),
ledger AS (
    INSERT INTO ledger_entries (card_id, merchant_id, entry_type, stamps_delta, points_delta,
        stamp_count_after, points_balance_after, source_event_id, notes, occurred_at)
    SELECT id, merchant_id, 'points_expired', 0, -expired, stamp_count, 0, $3::uuid,
           'inactivity', $1::timestamptz
    FROM expired
),
wallet AS (
    INSERT INTO outbox (shard, topic, count, keys, payloads)
    SELECT shard, 'loyalty.wallet-updates.v1', count(*),
           convert_to(json_agg(key ORDER BY id)::text, 'UTF8'),
           convert_to(string_agg(payload::text, E'\\n' ORDER BY id), 'UTF8')
    FROM (
        SELECT id, card_number AS key, {shard} AS shard, json_build_object(
            'event_id', gen_random_uuid(), 'type', 'card.balance_changed',
            'occurred_at', $4::timestamptz, 'card_number', card_number,
            'merchant_code', merchant_code, 'stamp_count', stamp_count,
            'stamps_target', CASE WHEN stamps_enabled THEN stamps_target END,
            'points_balance', 0, 'is_active', is_active, 'version', version,
            'reason', 'points_expired', 'source_event_id', $3::uuid) AS payload
        FROM expired
    ) AS m
    GROUP BY shard
)
SELECT count(*) AS cards, coalesce(sum(expired), 0) AS points FROM expired
""".replace("{shard}", shard_sql("card_number"))


async def expire_in_sql(conn: Conn, run: ExpiryRun, now: datetime) -> tuple[int, int]:
    """Expire every idle balance as of ``run.occurred_at``; returns (cards, points)."""
    row = await conn.fetchrow(_EXPIRE_SQL, run.occurred_at, run.merchant_code, run.event_id, now)
    cards, points = (int(row["cards"]), int(row["points"])) if row else (0, 0)
    if cards:
        await conn.execute(NOTIFY)
    return cards, points
