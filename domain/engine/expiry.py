"""The daily run, set-based: release due pending points, expire due lots, send reminders,
judge tiers.

The rule is ``domain.rules.expire.decide_run`` (one card, plain values); this is the same
rule in SQL, so a run over a million cards is a handful of statements, and a property test
runs both over random cards and lots and checks they agree
(``tests/domain/test_expiry_agreement.py``). Idempotent: a second run at the same time finds
nothing due, and reminders are sent once per card and expiry date (``expiry_reminders``).

Cards are locked in id order before their lots are touched, as the engine's batches lock
them, so a run and a worker never deadlock.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from core.commands import ExpiryRun
from domain.engine.conn import Conn
from domain.engine.outbox import shard_sql

# $1 run time, $2 merchant code or null, $3 run event id, $4 processing time.
_MERCHANTS = "m.deleted_at IS NULL AND ($2::text IS NULL OR m.code = $2::text)"

_PROGRAM_COLUMNS = """
    m.code AS merchant_code, p.id AS program_id, p.stamps_target,
    p.type IN ('stamps', 'hybrid') AS stamps_enabled, p.minimum_redemption_points
"""

# Messages of ``moved`` (a CTE with card_number, merchant_code and the card's new columns)
# packed into the outbox, one row per shard and topic, like ``engine.outbox.pack``.
_OUTBOX = """
outbox AS (
    INSERT INTO outbox (shard, topic, count, keys, payloads)
    SELECT shard, topic, count(*),
           convert_to(json_agg(key ORDER BY id, n)::text, 'UTF8'),
           convert_to(string_agg(payload::text, E'\\n' ORDER BY id, n), 'UTF8')
    FROM (SELECT id, n, card_number AS key, topic, {shard} AS shard, payload FROM messages) x
    GROUP BY shard, topic
)
""".replace("{shard}", shard_sql("card_number"))


def _wallet(reason: str) -> str:
    return f"""
    SELECT id, 0 AS n, card_number, 'loyalty.wallet-updates.v1' AS topic, json_build_object(
        'event_id', gen_random_uuid(), 'type', 'card.balance_changed',
        'occurred_at', $4::timestamptz, 'card_number', card_number,
        'merchant_code', merchant_code, 'stamp_count', stamp_count,
        'stamps_target', CASE WHEN stamps_enabled THEN stamps_target END,
        'points_balance', points_balance, 'points_pending', points_pending,
        'is_active', is_active, 'version', version,
        'reason', '{reason}', 'source_event_id', $3::uuid) AS payload
    FROM moved"""  # noqa: S608 - no outside input


_RELEASE_SQL = f"""
WITH due AS (
    SELECT l.card_id, l.lot_no, l.remaining
    FROM point_lots l JOIN merchants m ON m.id = l.merchant_id
    WHERE l.pending AND l.releases_at <= $1::timestamptz AND l.remaining > 0 AND {_MERCHANTS}
),
locked AS (
    SELECT c.id, c.points_balance AS before, {_PROGRAM_COLUMNS}
    FROM loyalty_cards c
    JOIN loyalty_programs p ON p.id = c.program_id
    JOIN merchants m ON m.id = c.merchant_id
    WHERE c.id IN (SELECT card_id FROM due) AND c.deleted_at IS NULL
    ORDER BY c.id
    FOR UPDATE OF c
),
marked AS (
    UPDATE point_lots l SET pending = false
    FROM due d JOIN locked k ON k.id = d.card_id
    WHERE l.card_id = d.card_id AND l.lot_no = d.lot_no
),
per_card AS (
    SELECT d.card_id, sum(d.remaining) AS points,
           json_agg(json_build_array(d.lot_no, d.remaining) ORDER BY d.lot_no) AS lots
    FROM due d JOIN locked k ON k.id = d.card_id
    GROUP BY d.card_id
),
moved AS (
    UPDATE loyalty_cards c
    SET points_balance = c.points_balance + r.points,
        points_pending = c.points_pending - r.points,
        version = c.version + 1, updated_at = now()
    FROM per_card r JOIN locked k ON k.id = r.card_id
    WHERE c.id = r.card_id
    RETURNING c.id, c.merchant_id, c.card_number, c.stamp_count, c.points_balance,
              c.points_pending, c.is_active, c.version, r.points AS moved, r.lots, k.before,
              k.merchant_code, k.program_id, k.stamps_target, k.stamps_enabled,
              k.minimum_redemption_points
),
ledger AS (
    INSERT INTO ledger_entries (card_id, merchant_id, entry_type, stamps_delta, points_delta,
        pending_delta, stamp_count_after, points_balance_after, source_event_id,
        occurred_at, lots)
    SELECT id, merchant_id, 'points_released', 0, moved, -moved, stamp_count,
           points_balance, $3::uuid, $1::timestamptz, lots::jsonb
    FROM moved
),
messages AS (
    {_wallet("points_released")}
    UNION ALL
    SELECT v.id, 1, v.card_number, 'loyalty.notifications.v1', json_build_object(
        'event_id', gen_random_uuid(), 'type', 'reward.available',
        'occurred_at', $4::timestamptz, 'card_number', v.card_number,
        'merchant_code', v.merchant_code, 'reward', w.code)
    FROM moved v JOIN rewards w ON w.program_id = v.program_id AND w.is_active
    WHERE v.before < greatest(w.points_required, v.minimum_redemption_points)
      AND greatest(w.points_required, v.minimum_redemption_points) <= v.points_balance
),
{_OUTBOX}
SELECT count(*) AS cards, coalesce(sum(moved), 0) AS points FROM moved
"""  # noqa: S608 - no outside input

_EXPIRE_SQL = f"""
WITH dated AS (
    SELECT DISTINCT l.card_id
    FROM point_lots l JOIN merchants m ON m.id = l.merchant_id
    WHERE l.remaining > 0 AND l.expires_at IS NOT NULL AND l.expires_at <= $1::timestamptz
      AND NOT l.pending AND {_MERCHANTS}
),
-- Cards with a dated lot due, and idle cards with points: two index-friendly sets, not an OR
-- (an OR with a subquery is judged row by row: quadratic over a million cards).
candidates AS (
    SELECT card_id AS id FROM dated
    UNION
    SELECT c.id
    FROM loyalty_cards c
    JOIN loyalty_programs p ON p.id = c.program_id AND p.deleted_at IS NULL
    JOIN merchants m ON m.id = c.merchant_id
    WHERE c.deleted_at IS NULL AND c.points_balance > 0 AND {_MERCHANTS}
      AND p.points_expiration_days IS NOT NULL AND p.type IN ('points', 'hybrid')
      AND c.last_activity_at < $1::timestamptz - make_interval(days => p.points_expiration_days)
),
locked AS (
    SELECT c.id,
           p.points_expiration_days IS NOT NULL AND c.last_activity_at IS NOT NULL
           AND c.last_activity_at < $1::timestamptz
               - make_interval(days => p.points_expiration_days) AS idle,
           {_PROGRAM_COLUMNS}, m.timezone
    FROM candidates x
    JOIN loyalty_cards c ON c.id = x.id
    JOIN loyalty_programs p ON p.id = c.program_id AND p.deleted_at IS NULL
    JOIN merchants m ON m.id = c.merchant_id
    WHERE c.deleted_at IS NULL AND p.type IN ('points', 'hybrid') AND {_MERCHANTS}
    ORDER BY c.id
    FOR UPDATE OF c
),
due AS (
    SELECT l.card_id, l.lot_no, l.remaining, l.expires_at IS NULL AS by_inactivity
    FROM point_lots l JOIN locked k ON k.id = l.card_id
    WHERE l.remaining > 0 AND NOT l.pending
      AND ((l.expires_at IS NOT NULL AND l.expires_at <= $1::timestamptz)
           OR (l.expires_at IS NULL AND k.idle))
),
gone AS (
    UPDATE point_lots l SET remaining = 0
    FROM due d WHERE l.card_id = d.card_id AND l.lot_no = d.lot_no
),
per_card AS (
    SELECT card_id, sum(remaining) AS points,
           coalesce(sum(remaining) FILTER (WHERE NOT by_inactivity), 0) AS dated,
           bool_or(by_inactivity) AS by_inactivity,
           json_agg(json_build_array(lot_no, -remaining) ORDER BY lot_no) AS lots
    FROM due GROUP BY card_id
),
-- The first dated expiry left after the run, and the points due on that local day.
next_dated AS (
    SELECT DISTINCT ON (card_id) card_id, at, points
    FROM (
        SELECT l.card_id, (l.expires_at AT TIME ZONE k.timezone)::date AS day,
               min(l.expires_at) AS at, sum(l.remaining) AS points
        FROM point_lots l JOIN locked k ON k.id = l.card_id
        WHERE l.card_id IN (SELECT card_id FROM per_card)
          AND l.remaining > 0 AND l.expires_at > $1::timestamptz
        GROUP BY 1, 2
    ) x
    ORDER BY card_id, day
),
moved AS (
    UPDATE loyalty_cards c
    SET points_expired = c.points_expired + r.points,
        points_balance = c.points_balance - r.points,
        dated_points = c.dated_points - r.dated,
        next_expiry_at = n.at, next_expiry_points = coalesce(n.points, 0),
        version = c.version + 1, updated_at = now()
    FROM per_card r JOIN locked k ON k.id = r.card_id
    LEFT JOIN next_dated n ON n.card_id = r.card_id
    WHERE c.id = r.card_id
    RETURNING c.id, c.merchant_id, c.card_number, c.stamp_count, c.points_balance,
              c.points_pending, c.is_active, c.version, r.points AS expired, r.lots,
              r.by_inactivity, k.merchant_code, k.stamps_target, k.stamps_enabled
),
ledger AS (
    INSERT INTO ledger_entries (card_id, merchant_id, entry_type, stamps_delta, points_delta,
        stamp_count_after, points_balance_after, source_event_id, notes, occurred_at, lots)
    SELECT id, merchant_id, 'points_expired', 0, -expired, stamp_count, points_balance,
           $3::uuid, CASE WHEN by_inactivity THEN 'inactivity' ELSE 'expiry date' END,
           $1::timestamptz, lots::jsonb
    FROM moved
),
messages AS ({_wallet("points_expired")}),
{_OUTBOX}
SELECT count(*) AS cards, coalesce(sum(expired), 0) AS points FROM moved
"""  # noqa: S608 - no outside input

# ``points.expiring`` once per card and expiry date, ``expiry_reminder_days`` ahead: dated
# lots by their local expiry day, and inactivity-kept points by the day the card will have
# been idle too long. Here $3 is the processing time.
_REMIND_SQL = f"""
WITH programs AS (
    SELECT p.id, p.points_expiration_days, p.expiry_reminder_days, m.code AS merchant_code,
           m.timezone
    FROM loyalty_programs p JOIN merchants m ON m.id = p.merchant_id
    WHERE p.deleted_at IS NULL AND p.type IN ('points', 'hybrid')
      AND p.expiry_reminder_days > 0 AND {_MERCHANTS}
),
dated AS (
    SELECT c.id AS card_id, c.card_number, g.merchant_code, g.timezone,
           min(l.expires_at) AS expires_at, sum(l.remaining) AS points
    FROM point_lots l
    JOIN loyalty_cards c ON c.id = l.card_id AND c.deleted_at IS NULL
    JOIN programs g ON g.id = c.program_id
    WHERE l.remaining > 0 AND l.expires_at > $1::timestamptz
      AND l.expires_at <= $1::timestamptz + make_interval(days => g.expiry_reminder_days)
    GROUP BY c.id, c.card_number, g.merchant_code, g.timezone,
             (l.expires_at AT TIME ZONE g.timezone)::date
),
idle AS (
    SELECT c.id AS card_id, c.card_number, g.merchant_code, g.timezone,
           c.last_activity_at + make_interval(days => g.points_expiration_days) AS expires_at,
           c.points_balance + c.points_pending - c.dated_points AS points
    FROM loyalty_cards c JOIN programs g ON g.id = c.program_id
    WHERE c.deleted_at IS NULL AND g.points_expiration_days IS NOT NULL
      AND c.points_balance + c.points_pending - c.dated_points > 0
      AND c.last_activity_at + make_interval(days => g.points_expiration_days)
          > $1::timestamptz
      AND c.last_activity_at + make_interval(days => g.points_expiration_days)
          <= $1::timestamptz + make_interval(days => g.expiry_reminder_days)
),
due AS (
    SELECT card_id, min(card_number) AS card_number, min(merchant_code) AS merchant_code,
           (expires_at AT TIME ZONE timezone)::date AS expires_on, min(expires_at) AS expires_at,
           sum(points) AS points
    FROM (SELECT * FROM dated UNION ALL SELECT * FROM idle) x
    GROUP BY card_id, (expires_at AT TIME ZONE timezone)::date
),
sent AS (
    INSERT INTO expiry_reminders (card_id, expires_on, points)
    SELECT card_id, expires_on, points FROM due ORDER BY card_id, expires_on
    ON CONFLICT DO NOTHING
    RETURNING card_id, expires_on
),
messages AS (
    SELECT d.card_id AS id, 0 AS n, d.card_number, 'loyalty.notifications.v1' AS topic,
           json_build_object(
               'event_id', gen_random_uuid(), 'type', 'points.expiring',
               'occurred_at', $3::timestamptz, 'card_number', d.card_number,
               'merchant_code', d.merchant_code, 'points', d.points,
               'expires_at', d.expires_at) AS payload
    FROM due d JOIN sent s ON s.card_id = d.card_id AND s.expires_on = d.expires_on
),
{_OUTBOX}
SELECT count(*) FROM sent
"""  # noqa: S608 - no outside input


# Tiers (CONTRACT.md 7.4): every card of a tiered program gets its qualifying points counted
# afresh for the window as of the run, moves up at once if they reach a higher tier, and down
# to the tier they give once it has been below its own since ``tier_grace_days`` (counted
# from the first run that found it below). The one-card form: ``rules.tiers.judge_daily``.
_TIERS_SQL = f"""
WITH programs AS (
    SELECT p.id, p.tiers, p.tier_grace_days, p.stamps_target,
           p.type IN ('stamps', 'hybrid') AS stamps_enabled, m.code AS merchant_code,
           CASE WHEN p.tier_window = 'calendar_year'
                THEN date_trunc('year', $1::timestamptz AT TIME ZONE m.timezone)
                     AT TIME ZONE m.timezone
                ELSE ($1::timestamptz AT TIME ZONE m.timezone - interval '1 year')
                     AT TIME ZONE m.timezone
           END AS start
    FROM loyalty_programs p JOIN merchants m ON m.id = p.merchant_id
    WHERE p.deleted_at IS NULL AND jsonb_array_length(p.tiers) > 0 AND {_MERCHANTS}
),
ranked AS (
    SELECT g.id AS program_id, t.n - 1 AS rank, t.tier->>'id' AS code,
           (t.tier->>'threshold_points')::bigint AS threshold
    FROM programs g CROSS JOIN LATERAL jsonb_array_elements(g.tiers) WITH ORDINALITY AS t(tier, n)
),
locked AS (
    SELECT c.id, c.tier, c.tier_below_since, g.id AS program_id, g.start, g.tier_grace_days,
           g.merchant_code, g.stamps_target, g.stamps_enabled
    FROM loyalty_cards c JOIN programs g ON g.id = c.program_id
    WHERE c.deleted_at IS NULL
    ORDER BY c.id
    FOR UPDATE OF c
),
counted AS (
    SELECT k.id, coalesce(sum(p.points_earned - p.points_voided), 0)::bigint AS points
    FROM locked k LEFT JOIN purchases p ON p.card_id = k.id AND p.occurred_at >= k.start
    GROUP BY k.id
),
verdict AS (
    SELECT k.*, n.points,
           due.code AS due, coalesce(due.rank, -1) AS due_rank,
           coalesce((SELECT r.rank FROM ranked r
                     WHERE r.program_id = k.program_id AND r.code = k.tier), -1) AS cur_rank
    FROM locked k JOIN counted n ON n.id = k.id
    LEFT JOIN LATERAL (
        SELECT r.code, r.rank FROM ranked r
        WHERE r.program_id = k.program_id AND r.threshold <= n.points
        ORDER BY r.rank DESC LIMIT 1
    ) due ON true
),
decided AS (
    SELECT v.*,
           v.due_rank >= v.cur_rank
           OR $1::timestamptz - coalesce(v.tier_below_since, $1::timestamptz)
              >= make_interval(days => v.tier_grace_days) AS settle
    FROM verdict v
),
moved AS (
    UPDATE loyalty_cards c
    SET qualifying_points = d.points, qualifying_from = d.start,
        tier = CASE WHEN d.settle THEN d.due ELSE d.tier END,
        tier_below_since = CASE WHEN d.settle THEN NULL
                                ELSE coalesce(d.tier_below_since, $1::timestamptz) END,
        version = c.version + (d.settle AND d.due IS DISTINCT FROM d.tier)::int,
        updated_at = now()
    FROM decided d WHERE c.id = d.id
    RETURNING c.id, c.merchant_id, c.card_number, c.stamp_count, c.points_balance,
              c.points_pending, c.is_active, c.version, c.tier AS new_tier, d.tier AS old_tier,
              d.points, d.merchant_code, d.stamps_target, d.stamps_enabled
),
changed AS (SELECT * FROM moved WHERE new_tier IS DISTINCT FROM old_tier),
history AS (
    INSERT INTO tier_changes (card_id, merchant_id, from_tier, to_tier, qualifying_points,
        occurred_at, source_event_id)
    SELECT id, merchant_id, old_tier, new_tier, points, $1::timestamptz, $3::uuid
    FROM changed ORDER BY id
),
messages AS (
    {_wallet("tier_changed").replace("FROM moved", "FROM changed")}
    UNION ALL
    SELECT id, 1, card_number, 'loyalty.notifications.v1', json_build_object(
        'event_id', gen_random_uuid(), 'type', 'tier.changed',
        'occurred_at', $4::timestamptz, 'card_number', card_number,
        'merchant_code', merchant_code, 'from_tier', old_tier, 'to_tier', new_tier,
        'source_event_id', $3::uuid)
    FROM changed WHERE old_tier IS NOT NULL
),
{_OUTBOX}
SELECT count(*) FROM changed
"""  # noqa: S608 - no outside input


class RunTotals(msgspec.Struct, frozen=True):
    """What a daily run did."""

    cards_expired: int = 0
    points_expired: int = 0
    cards_released: int = 0
    points_released: int = 0
    reminders: int = 0
    tiers_changed: int = 0


async def run_in_sql(conn: Conn, run: ExpiryRun, now: datetime) -> RunTotals:
    """The daily run as of ``run.occurred_at``: releases, expiries, reminders, tiers."""
    args = (run.occurred_at, run.merchant_code, run.event_id, now)
    released = await conn.fetchrow(_RELEASE_SQL, *args)
    expired = await conn.fetchrow(_EXPIRE_SQL, *args)
    reminders = await conn.fetchval(_REMIND_SQL, run.occurred_at, run.merchant_code, now)
    tiers_changed = await conn.fetchval(_TIERS_SQL, *args)
    return RunTotals(
        cards_expired=int(expired["cards"]) if expired else 0,
        points_expired=int(expired["points"]) if expired else 0,
        cards_released=int(released["cards"]) if released else 0,
        points_released=int(released["points"]) if released else 0,
        reminders=int(reminders or 0),
        tiers_changed=int(tiers_changed or 0),
    )
