"""The deliveries queue: its statuses, its wake-up channel, and the dispatcher's statements
over it (plain SQL with asyncpg's ``$n`` parameters; ``consumers.webhooks`` says when each
runs, ``domain.webhooks.endpoints`` shares the names).

``webhook_deliveries.status`` is ``pending`` (queued or between retries), ``delivered`` or
``parked`` (its retry window passed, or its endpoint was deleted); a re-send puts parked
deliveries back to pending. A ``NOTIFY`` on ``NOTIFY_CHANNEL`` wakes the dispatchers when
deliveries are queued or re-sent, before their next poll.
"""

from __future__ import annotations

from typing import Final

PENDING: Final = "pending"
DELIVERED: Final = "delivered"
PARKED: Final = "parked"
STATUSES: tuple[str, ...] = (PENDING, DELIVERED, PARKED)

NOTIFY_CHANNEL: Final = "loyalty_webhooks"

ENDPOINT_DELETED: Final = "endpoint deleted"
"""``last_error`` of the deliveries an endpoint's deletion parked."""

# --- the dispatcher's statements --------------------------------------------------------

# Ids follow the batch's order (ORDER BY ord): the senders send a card's deliveries by id.
QUEUE_SQL = """
INSERT INTO webhook_deliveries (endpoint_id, event_id, event_type, card_number, body, status,
                                attempts)
SELECT e.id, m.event_id, m.event_type, m.card_number, m.body, 'pending', 0
FROM unnest($1::text[], $2::uuid[], $3::text[], $4::text[], $5::bytea[])
     WITH ORDINALITY AS m(merchant_code, event_id, event_type, card_number, body, ord)
JOIN merchants AS c ON c.code = m.merchant_code AND c.deleted_at IS NULL
JOIN webhook_endpoints AS e
  ON e.merchant_id = c.id AND e.deleted_at IS NULL AND e.is_active
 AND m.event_type = ANY(e.event_types)
ORDER BY m.ord, e.id
ON CONFLICT (endpoint_id, event_id) DO NOTHING
RETURNING event_type
"""

NOTIFY_SQL = f"SELECT pg_notify('{NOTIFY_CHANNEL}', '')"

# heads: the oldest pending delivery of each (endpoint, card); card-less ones (a rejected
# event without a card) are not ordered among themselves. busy: attempts under way per
# endpoint (only heads are ever leased, bar a re-send racing an attempt). A head is taken
# when due, not leased, within its endpoint's free slots, and no other delivery of its card
# is under way; then locked with SKIP LOCKED, which re-reads each row's latest version.
CLAIM_SQL = """
WITH heads AS (
    (SELECT DISTINCT ON (d.endpoint_id, d.card_number)
            d.id, d.endpoint_id, d.card_number, d.next_attempt_at, d.lease_until
     FROM webhook_deliveries AS d
     WHERE d.status = 'pending' AND d.card_number IS NOT NULL
     ORDER BY d.endpoint_id, d.card_number, d.id)
    UNION ALL
    SELECT d.id, d.endpoint_id, d.card_number, d.next_attempt_at, d.lease_until
    FROM webhook_deliveries AS d
    WHERE d.status = 'pending' AND d.card_number IS NULL
),
busy AS (
    SELECT endpoint_id, count(*) AS leased FROM heads WHERE lease_until > now()
    GROUP BY endpoint_id
),
due AS (
    SELECT h.id, h.endpoint_id, h.card_number, h.next_attempt_at,
           row_number() OVER (PARTITION BY h.endpoint_id ORDER BY h.next_attempt_at, h.id)
               AS rank
    FROM heads AS h
    JOIN webhook_endpoints AS e ON e.id = h.endpoint_id AND e.deleted_at IS NULL AND e.is_active
    JOIN merchants AS m ON m.id = e.merchant_id AND m.deleted_at IS NULL
    WHERE h.next_attempt_at <= now() AND (h.lease_until IS NULL OR h.lease_until <= now())
),
picked AS (
    SELECT due.id FROM due LEFT JOIN busy USING (endpoint_id)
    WHERE due.rank <= $1 - coalesce(busy.leased, 0)
      AND (due.card_number IS NULL OR NOT EXISTS (
            SELECT 1 FROM webhook_deliveries AS l
            WHERE l.endpoint_id = due.endpoint_id AND l.card_number = due.card_number
              AND l.status = 'pending' AND l.lease_until > now()))
    ORDER BY due.next_attempt_at, due.id
    LIMIT $2
),
locked AS (
    SELECT d.id FROM webhook_deliveries AS d
    WHERE d.id IN (SELECT id FROM picked)
      AND d.status = 'pending' AND (d.lease_until IS NULL OR d.lease_until <= now())
    FOR UPDATE SKIP LOCKED
)
UPDATE webhook_deliveries AS d
SET lease_until = now() + make_interval(secs => $3), attempts = d.attempts + 1
FROM locked, webhook_endpoints AS e
WHERE d.id = locked.id AND e.id = d.endpoint_id
RETURNING d.id, d.endpoint_id, d.event_id, d.event_type, d.body, d.attempts, d.retry_from,
          e.url, e.secret
"""

# A delivery is delivered once answered 2xx, even if its endpoint was deleted meanwhile.
DELIVERED_SQL = """
UPDATE webhook_deliveries
SET status = 'delivered', delivered_at = now(), lease_until = NULL, last_status = $2
WHERE id = $1
"""

# Only while this attempt is the latest (attempts unchanged): a dispatcher whose lease ran
# out must not overwrite the outcome of the attempt that followed.
FAILED_SQL = """
UPDATE webhook_deliveries
SET status = $4, last_status = $2, last_error = $3, lease_until = NULL,
    next_attempt_at = now() + make_interval(secs => $5)
WHERE id = $1 AND status = 'pending' AND attempts = $6
"""

GAUGES_SQL = """
SELECT count(*) FILTER (WHERE d.status = 'pending') AS pending,
       count(*) FILTER (WHERE d.status = 'parked') AS parked
FROM webhook_deliveries AS d
JOIN webhook_endpoints AS e ON e.id = d.endpoint_id AND e.deleted_at IS NULL
WHERE d.status IN ('pending', 'parked')
"""

PRUNE_SQL = """
DELETE FROM webhook_deliveries WHERE id IN (
    SELECT id FROM webhook_deliveries
    WHERE status = 'delivered' AND delivered_at < now() - make_interval(days => $1)
    LIMIT $2)
"""
