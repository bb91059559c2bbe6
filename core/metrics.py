"""Every Prometheus metric of the engine, in one place (``prometheus-client``).

Each process exports the ones it updates (and the client's own ``process_*`` figures) on its
ops port (``core.health``); ``deploy/grafana`` names them, and a test fails when a dashboard
names one that no process exports. Hot paths update them once per batch or round, never once
per event. Labels hold topics, statuses and outcomes: never a card, a customer or a URL.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

# A ``*_created`` gauge beside every counter and histogram only doubles what is scraped.
disable_created_metrics()  # type: ignore[no-untyped-call]

# Batch sizes of the worker: 1 to the largest fetch (``batch_max_records``, 1,000 by default).
_SIZE_BUCKETS = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)
# Seconds: batches, publishes and HTTP calls last from a millisecond to a timeout.
_TIME_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# --------------------------------------------------------------------------- worker
EVENTS = Counter(
    "loyalty_events",
    "Input events handled by the worker, by topic, message type and outcome "
    "(applied, rejected, held, duplicate, dead_lettered).",
    ["topic", "type", "status"],
)
BATCH_SIZE = Histogram(
    "loyalty_batch_size", "Records per batch applied by the worker.", buckets=_SIZE_BUCKETS
)
BATCH_SECONDS = Histogram(
    "loyalty_batch_duration_seconds",
    "Time to apply one batch (parse, rules, one database transaction).",
    buckets=_TIME_BUCKETS,
)
DEAD_LETTERS = Counter(
    "loyalty_dead_letters", "Input records dead-lettered, by source topic.", ["topic"]
)
BATCHES_DEFERRED = Counter(
    "loyalty_batches_deferred",
    "Batches rewound for a transient failure (database or broker away) and fetched again.",
)
BATCHES_OVERLAPPED = Counter(
    "loyalty_batches_overlapped",
    "Batches started while the batch before was still being written and committed (full "
    "batches: the worker was behind).",
)
CONSUMER_LAG = Gauge(
    "loyalty_consumer_lag",
    "Records not yet consumed, per consumer group, topic and partition (high watermark minus "
    "position), as the consuming process sees it.",
    ["group", "topic", "partition"],
)

# --------------------------------------------------------------------------- relay
OUTBOX_BACKLOG = Gauge(
    "loyalty_outbox_backlog_messages", "Messages in the outbox not yet published to Kafka."
)
OUTBOX_OLDEST_AGE = Gauge(
    "loyalty_outbox_oldest_unsent_age_seconds",
    "Age of the oldest unsent outbox row (0 when none is waiting).",
)
RELAY_PUBLISHED = Counter(
    "loyalty_relay_published", "Messages published by the relay, by topic.", ["topic"]
)
RELAY_PUBLISH_SECONDS = Histogram(
    "loyalty_relay_publish_seconds",
    "Time from handing a round's record batches to the broker to its last acknowledgement.",
    buckets=_TIME_BUCKETS,
)

# --------------------------------------------------------------------------- wallet sync
WALLET_PUSHES = Counter(
    "loyalty_wallet_pushes",
    "Wallet pass updates sent, by platform (apple, google) and outcome (ok, failed, gone).",
    ["platform", "outcome"],
)
WALLET_PUSH_OUTCOMES = ("ok", "failed", "gone")

# --------------------------------------------------------------------------- admin panel
LOCKOUTS = Counter(
    "loyalty_lockouts",
    "Lockouts started, by kind: staff_pin (a store's PINs) or sign_in (an admin name).",
    ["kind"],
)
LOCKOUT_KINDS = ("staff_pin", "sign_in")

# --------------------------------------------------------------------------- webhooks
WEBHOOK_QUEUED = Counter(
    "loyalty_webhook_queued",
    "Deliveries queued for merchants' endpoints, by message type.",
    ["type"],
)
WEBHOOK_ATTEMPTS = Counter(
    "loyalty_webhook_attempts",
    "Delivery attempts, by outcome: delivered, failed (to be retried) or parked.",
    ["outcome"],
)
WEBHOOK_SECONDS = Histogram(
    "loyalty_webhook_request_seconds",
    "Time of one HTTP delivery attempt, answered or timed out.",
    buckets=_TIME_BUCKETS,
)
WEBHOOK_PENDING = Gauge(
    "loyalty_webhook_pending", "Deliveries waiting to be sent or retried, over all endpoints."
)
WEBHOOK_PARKED = Gauge(
    "loyalty_webhook_parked", "Deliveries parked after their retry window, over all endpoints."
)

# --------------------------------------------------------------------------- who exports what
# Every metric lives in the one default registry, so each process would also export the other
# roles' metrics, the unlabelled ones as zeros (a worker's "oldest unsent age 0" beside the
# relay's real one). Each role's ops port exports the metrics listed for it here, plus any
# metric listed for no role, and the client's own process_* and python_* figures.
ROLE_METRICS: dict[str, tuple[Counter | Gauge | Histogram, ...]] = {
    "worker": (
        EVENTS,
        BATCH_SIZE,
        BATCH_SECONDS,
        DEAD_LETTERS,
        BATCHES_DEFERRED,
        BATCHES_OVERLAPPED,
        CONSUMER_LAG,
    ),
    "relay": (OUTBOX_BACKLOG, OUTBOX_OLDEST_AGE, RELAY_PUBLISHED, RELAY_PUBLISH_SECONDS),
    "wallet-sync": (WALLET_PUSHES, CONSUMER_LAG),
    "webhooks": (
        WEBHOOK_QUEUED,
        WEBHOOK_ATTEMPTS,
        WEBHOOK_SECONDS,
        WEBHOOK_PENDING,
        WEBHOOK_PARKED,
        CONSUMER_LAG,
    ),
    "admin": (LOCKOUTS,),
}
