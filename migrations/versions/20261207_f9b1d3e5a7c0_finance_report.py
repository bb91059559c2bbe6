"""the finance report (issue 17): the months in which each card was active

The finance report counts the members active in a period and the retention of each month's
new cards (``domain.finance``). The ledger answers both, but only by reading every entry of the
period: seconds for a year of a merchant with a million cards. Two tables kept by triggers, in
the transaction of every write, answer them from a few hundred rows:

- ``card_active_months``: each merchant-local month in which a card had activity (a ledger
  entry of a kind that moves ``last_activity_at``), one row per card and month;
- ``active_month_counts``: those rows counted per merchant, cohort (the month the card was
  created), the card's previous active month (``-infinity`` for its first) and the month.
  Cards active in months A..B are the rows of A..B whose previous month is before A: each such
  card has exactly one, its first active month from A on. A cohort's cards active in a month
  are that month's rows of the cohort.

A card's activity in a month earlier than its last (a late event) changes the previous month
of its next active month: the trigger recounts the card's pairs from the last month before
the new ones, so the counts stay exact whatever the order of events. Each database session
writes count rows of its own (``writer`` = its backend pid; the readers sum them): two
transactions never wait on one count row, so concurrent workers never deadlock on them.

The triggers: after an insert into ``ledger_entries`` (every writer, the engine's COPY
included: it has no month of its own to keep), after an insert into ``loyalty_cards`` (a card
inserted after its first ledger rows in the same transaction, as a batch's write-ahead does,
is counted then), and after an update of a card's ``created_at`` (its cohort moves).
``stats_rebuild`` rebuilds these tables too (``activity_rebuild``), so a new time zone, a
repair or a bulk load made with triggers off leave them right.

Revision ID: f9b1d3e5a7c0
Revises: e8a0c2d4f6b9
Create Date: 2026-12-07 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "f9b1d3e5a7c0"
down_revision: str | None = "e8a0c2d4f6b9"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The SQL is written out here, not imported from the application: a migration must keep doing
# what it did when it was written. The kinds of entry that are a card's activity are those
# that move ``last_activity_at`` (``domain.rules.project``).
_ACTIVITY = (
    "stamp_earned",
    "stamp_redeemed",
    "stamp_voided",
    "stamp_adjusted",
    "points_earned",
    "points_redeemed",
    "points_voided",
    "points_adjusted",
    "welcome_bonus",
    "card_created",
)
_ACTIVE = "(" + ", ".join(f"'{kind}'" for kind in _ACTIVITY) + ")"
_COUNT_KEY = "merchant_id, cohort, previous, month, writer"
_ADD = f"ON CONFLICT ({_COUNT_KEY}) DO UPDATE SET cards = t.cards + excluded.cards"
_INSERT_COUNTS = f"INSERT INTO active_month_counts AS t ({_COUNT_KEY}, cards)"


def _month(instant: str, zone: str) -> str:
    return f"date_trunc('month', {instant} AT TIME ZONE {zone})::date"


# ``activity_record(cards, months)``: each card was active in the merchant-local month beside
# it. The new (card, month) rows; for the cards that exist (the others are counted when
# inserted), their pairs (previous active month, month) from the last month before the first
# new one: counted with the new rows, less counted without them. The CTE's insert is not seen by
# the statement's reads of ``card_active_months``: those are the rows before it. The ledger's
# trigger calls it; a writer that keeps the months itself (the engine, some day) may too.
_RECORD_BODY = f"""
WITH fresh AS (
    INSERT INTO card_active_months AS t (card_id, month)
    SELECT DISTINCT u.card_id, u.month FROM unnest(p_cards, p_months) AS u(card_id, month)
    ON CONFLICT (card_id, month) DO NOTHING
    RETURNING t.card_id, t.month
),
cards AS MATERIALIZED (
    SELECT f.card_id, min(f.month) AS first_new, c.merchant_id,
           {_month("c.created_at", "m.timezone")} AS cohort
    FROM fresh f
    JOIN loyalty_cards c ON c.id = f.card_id
    JOIN merchants m ON m.id = c.merchant_id
    GROUP BY f.card_id, c.merchant_id, c.created_at, m.timezone
),
lasts AS MATERIALIZED (
    SELECT k.card_id, k.merchant_id, k.cohort, k.first_new,
           (SELECT max(o.month) FROM card_active_months o WHERE o.card_id = k.card_id) AS last
    FROM cards k
),
-- In order (the usual case: no month of the card after its first new one), the last month
-- is the anchor and the only row before to read; a late month reads from the anchor on.
anchored AS MATERIALIZED (
    SELECT l.card_id, l.merchant_id, l.cohort, l.last >= l.first_new AS late,
           CASE WHEN l.last IS NULL OR l.last < l.first_new THEN l.last
                ELSE (SELECT max(o.month) FROM card_active_months o
                      WHERE o.card_id = l.card_id AND o.month < l.first_new)
           END AS anchor
    FROM lasts l
),
before AS MATERIALIZED (
    SELECT card_id, anchor AS month FROM anchored WHERE NOT late AND anchor IS NOT NULL
    UNION ALL
    SELECT o.card_id, o.month
    FROM anchored a
    JOIN card_active_months o
      ON o.card_id = a.card_id AND o.month >= coalesce(a.anchor, '-infinity'::date)
    WHERE a.late
),
pairs AS (
    SELECT x.card_id, x.month,
           lag(x.month) OVER (PARTITION BY x.card_id ORDER BY x.month) AS previous, 1 AS n
    FROM (
        SELECT card_id, month FROM before
        UNION ALL
        -- Cards not inserted yet are left out by the join with ``anchored`` below.
        SELECT card_id, month FROM fresh
    ) x
    UNION ALL
    SELECT card_id, month, lag(month) OVER (PARTITION BY card_id ORDER BY month), -1
    FROM before
)
{_INSERT_COUNTS}
SELECT a.merchant_id, a.cohort, coalesce(p.previous, '-infinity'::date), p.month,
       pg_backend_pid(), sum(p.n)
FROM pairs p JOIN anchored a ON a.card_id = p.card_id
WHERE a.anchor IS NULL OR p.month > a.anchor
GROUP BY 1, 2, 3, 4
HAVING sum(p.n) <> 0
{_ADD}
"""  # noqa: S608 - no outside input

_RECORD = f"""
CREATE FUNCTION activity_record(p_cards bigint[], p_months date[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
{_RECORD_BODY};
END $$
"""

# The activity of a statement's ledger rows, in months not recorded yet (most entries are of a
# card already active that month: one look at the index each, nothing written).
_LEDGER_INSERTED = f"""
PERFORM activity_record(array_agg(x.card_id), array_agg(x.month))
FROM (
    SELECT DISTINCT n.card_id, {_month("n.occurred_at", "m.timezone")} AS month
    FROM new_rows n JOIN merchants m ON m.id = n.merchant_id
    WHERE n.entry_type IN {_ACTIVE}
) x
WHERE NOT EXISTS (
    SELECT 1 FROM card_active_months a WHERE a.card_id = x.card_id AND a.month = x.month
)
HAVING count(*) > 0
"""  # noqa: S608 - no outside input

# Cards inserted after ledger rows of theirs (same transaction): every month counted now.
_CARDS_INSERTED = f"""
{_INSERT_COUNTS}
SELECT x.merchant_id, x.cohort, coalesce(x.previous, '-infinity'::date), x.month,
       pg_backend_pid(), count(*)
FROM (
    SELECT n.merchant_id, {_month("n.created_at", "m.timezone")} AS cohort, o.month,
           lag(o.month) OVER (PARTITION BY o.card_id ORDER BY o.month) AS previous
    FROM new_rows n
    JOIN merchants m ON m.id = n.merchant_id
    JOIN card_active_months o ON o.card_id = n.id
) x
GROUP BY 1, 2, 3, 4
{_ADD}
"""  # noqa: S608 - no outside input

# A card's creation moved (repairs, imports, tests): its months move to the new cohort.
_CARD_CREATED_MOVED = f"""
{_INSERT_COUNTS}
SELECT NEW.merchant_id, c.cohort, coalesce(a.previous, '-infinity'::date), a.month,
       pg_backend_pid(), sum(c.n)
FROM (
    SELECT month, lag(month) OVER (ORDER BY month) AS previous
    FROM card_active_months WHERE card_id = NEW.id
) a
CROSS JOIN (
    SELECT {_month("OLD.created_at", "m.timezone")}, -1 FROM merchants m WHERE m.id = OLD.merchant_id
    UNION ALL
    SELECT {_month("NEW.created_at", "m.timezone")}, 1 FROM merchants m WHERE m.id = NEW.merchant_id
) c(cohort, n)
GROUP BY 1, 2, 3, 4
HAVING sum(c.n) <> 0
{_ADD}
"""  # noqa: S608 - no outside input

_REBUILD = f"""
CREATE FUNCTION activity_rebuild(p_merchant_id bigint) RETURNS void LANGUAGE plpgsql
SET work_mem = '256MB'
AS $$
BEGIN
IF p_merchant_id IS NULL THEN
    TRUNCATE card_active_months, active_month_counts;
ELSE
    DELETE FROM active_month_counts WHERE merchant_id = p_merchant_id;
    DELETE FROM card_active_months a USING loyalty_cards c
    WHERE c.id = a.card_id AND c.merchant_id = p_merchant_id;
END IF;
INSERT INTO card_active_months (card_id, month)
SELECT DISTINCT l.card_id, {_month("l.occurred_at", "m.timezone")}
FROM ledger_entries l JOIN merchants m ON m.id = l.merchant_id
WHERE (p_merchant_id IS NULL OR l.merchant_id = p_merchant_id) AND l.entry_type IN {_ACTIVE}
-- Rows of a card that no longer exists (a hard delete) were not removed above.
ON CONFLICT (card_id, month) DO NOTHING;
{_INSERT_COUNTS}
SELECT x.merchant_id, x.cohort, coalesce(x.previous, '-infinity'::date), x.month, 0, count(*)
FROM (
    SELECT c.merchant_id, {_month("c.created_at", "m.timezone")} AS cohort, a.month,
           lag(a.month) OVER (PARTITION BY a.card_id ORDER BY a.month) AS previous
    FROM card_active_months a
    JOIN loyalty_cards c ON c.id = a.card_id
    JOIN merchants m ON m.id = c.merchant_id
    WHERE p_merchant_id IS NULL OR c.merchant_id = p_merchant_id
) x
GROUP BY 1, 2, 3, 4;
END $$
"""  # noqa: S608 - no outside input

_TRIGGERS = (
    (
        "activity_ledger_inserted",
        _LEDGER_INSERTED,
        # The engine records its own batches' months (``domain.engine.rollups``).
        "AFTER INSERT ON ledger_entries REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
        "WHEN (current_setting('loyalty.ledger_rollups', true) IS DISTINCT FROM 'engine')",
    ),
    (
        "activity_cards_inserted",
        _CARDS_INSERTED,
        "AFTER INSERT ON loyalty_cards REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT",
    ),
    (
        "activity_card_created_moved",
        _CARD_CREATED_MOVED,
        "AFTER UPDATE OF created_at ON loyalty_cards FOR EACH ROW "
        "WHEN (OLD.created_at IS DISTINCT FROM NEW.created_at)",
    ),
)

# ``stats_rebuild`` (every repair, every new time zone) rebuilds these tables too; its text
# is edited in place, as the point lots' revision did.
_REBUILD_END = "END $function$"
_REBUILD_CALL = "PERFORM activity_rebuild(p_merchant_id);\n    END $function$"


def _edit_stats_rebuild(old: str, new: str) -> None:
    op.execute(
        f"""
        DO $edit$
        DECLARE body text := pg_get_functiondef('stats_rebuild(bigint)'::regprocedure);
        BEGIN
            IF position('{old}' IN body) = 0 THEN
                RAISE EXCEPTION 'statistics function stats_rebuild(bigint) not as expected';
            END IF;
            body := replace(body, '{old}', '{new}');
            EXECUTE body;
        END $edit$
        """
    )


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "card_active_months",
        sa.Column("card_id", sa.BigInteger(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("card_id", "month", name=op.f("pk_card_active_months")),
    )
    op.create_table(
        "active_month_counts",
        sa.Column("merchant_id", sa.BigInteger(), nullable=False),
        sa.Column("cohort", sa.Date(), nullable=False),
        sa.Column("previous", sa.Date(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("writer", sa.Integer(), nullable=False),
        sa.Column("cards", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint(
            "merchant_id",
            "cohort",
            "previous",
            "month",
            "writer",
            name=op.f("pk_active_month_counts"),
        ),
    )
    op.execute(_REBUILD)
    op.execute(_RECORD)
    for name, body, when in _TRIGGERS:
        op.execute(
            f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
            f"BEGIN\n{body};\nRETURN NULL;\nEND $$"
        )
        op.execute(f"CREATE TRIGGER {name} {when} EXECUTE FUNCTION {name}()")
    _edit_stats_rebuild(_REBUILD_END, _REBUILD_CALL)
    # Existing data (a database migrated with rows already in it).
    op.execute("SELECT activity_rebuild(NULL)")


def downgrade() -> None:
    """Revert this revision."""
    _edit_stats_rebuild(_REBUILD_CALL, _REBUILD_END)
    for name, _, when in _TRIGGERS:
        table = "ledger_entries" if "ledger_entries" in when else "loyalty_cards"
        op.execute(f"DROP TRIGGER {name} ON {table}")
        op.execute(f"DROP FUNCTION {name}()")
    op.execute("DROP FUNCTION activity_record(bigint[], date[])")
    op.execute("DROP FUNCTION activity_rebuild(bigint)")
    op.drop_table("active_month_counts")
    op.drop_table("card_active_months")
