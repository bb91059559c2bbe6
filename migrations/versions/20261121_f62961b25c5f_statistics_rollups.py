"""statistics rollups

Daily totals of the ledger and daily counts of live cards, per merchant, program, store and
merchant-local day, kept by triggers in the transaction of every write, so the statistics of a
merchant with a million cards and ten million ledger rows read a few thousand rows
(``domain.stats``). Statement-level triggers with transition tables: one aggregate per
statement, so a batch of a thousand entries costs one small upsert, not a thousand.

Revision ID: f62961b25c5f
Revises: 1799aa3c9187
Create Date: 2026-11-21 05:48:03.851060
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# The SQL is written out here, not imported from the application: a migration must keep doing
# what it did when it was written.

_LEDGER_COLUMNS = (
    "entries, stamps_earned, stamps_redeemed, stamps_voided, stamps_adjusted, stamps_net, "
    "points_earned, points_welcome, points_redeemed, points_voided, points_expired, "
    "points_adjusted, points_net"
)


# A ledger entry names no program. The trigger takes the merchant's live program, which is the
# entry's card's in every case but one no engine path produces (a new entry on a card of a
# deleted program: deleting a program deletes its cards), and spares a card lookup per entry on
# the engine's hot path. The rebuild takes the one program of merchants that only ever had one,
# and looks the card up for the others, whose history spans programs.
_CARD_PROGRAM = ("c.program_id", "JOIN loyalty_cards c ON c.id = n.card_id")
_LIVE_PROGRAM = (
    "coalesce(p.id, 0)",
    "LEFT JOIN loyalty_programs p ON p.merchant_id = n.merchant_id AND p.deleted_at IS NULL",
)
# For a merchant that only ever had one program (deleted or not).
_ONLY_PROGRAM = (
    "coalesce(p.id, 0)",
    "LEFT JOIN loyalty_programs p ON p.merchant_id = n.merchant_id",
)


def _ledger_sums(source: str, where: str, program: tuple[str, str]) -> str:
    """Ledger entries of ``source`` summed per merchant, program, store and local day."""

    def total(column: str, kind: str, sign: str = "") -> str:
        return f"coalesce({sign}sum(n.{column}) FILTER (WHERE n.entry_type = '{kind}'), 0)"

    return f"""
    SELECT n.merchant_id AS merchant_id, {program[0]} AS program_id,
           coalesce(n.store_id, 0) AS store_id,
           (n.occurred_at AT TIME ZONE m.timezone)::date AS day,
           count(*) AS entries,
           {total("stamps_delta", "stamp_earned")} AS stamps_earned,
           {total("stamps_delta", "stamp_redeemed", "-")} AS stamps_redeemed,
           {total("stamps_delta", "stamp_voided", "-")} AS stamps_voided,
           {total("stamps_delta", "stamp_adjusted")} AS stamps_adjusted,
           coalesce(sum(n.stamps_delta), 0) AS stamps_net,
           {total("points_delta", "points_earned")} AS points_earned,
           {total("points_delta", "welcome_bonus")} AS points_welcome,
           {total("points_delta", "points_redeemed", "-")} AS points_redeemed,
           {total("points_delta", "points_voided", "-")} AS points_voided,
           {total("points_delta", "points_expired", "-")} AS points_expired,
           {total("points_delta", "points_adjusted")} AS points_adjusted,
           coalesce(sum(n.points_delta), 0) AS points_net
    FROM {source} n
    {program[1]}
    JOIN merchants m ON m.id = n.merchant_id
    {where}
    GROUP BY 1, 2, 3, 4
    """  # noqa: S608 - no outside input


def _card_contributions(source: str, sign: str, where: str = "TRUE") -> str:
    """What the cards of ``source`` add to (sign 1) or take from (sign -1) the daily counts."""
    return f"""
    SELECT r.merchant_id, r.program_id, coalesce(r.store_id, 0) AS store_id,
           (r.created_at AT TIME ZONE m.timezone)::date AS day,
           {sign} AS cards_created, {sign} * r.is_active::int AS active_cards_created,
           0 AS last_active_cards
    FROM {source} r JOIN merchants m ON m.id = r.merchant_id
    WHERE r.deleted_at IS NULL AND {where}
    UNION ALL
    SELECT r.merchant_id, r.program_id, coalesce(r.store_id, 0),
           (r.last_activity_at AT TIME ZONE m.timezone)::date, 0, 0, {sign}
    FROM {source} r JOIN merchants m ON m.id = r.merchant_id
    WHERE r.deleted_at IS NULL AND r.last_activity_at IS NOT NULL AND {where}
    """  # noqa: S608 - no outside input


def _card_counts(contributions: str) -> str:
    """The contributions summed per key, zero sums dropped (an update that moved nothing)."""
    return f"""
    SELECT merchant_id, program_id, store_id, day, sum(cards_created),
           sum(active_cards_created), sum(last_active_cards)
    FROM ({contributions}) x
    GROUP BY 1, 2, 3, 4
    HAVING sum(cards_created) <> 0 OR sum(active_cards_created) <> 0
        OR sum(last_active_cards) <> 0
    """  # noqa: S608 - no outside input


_CARD_COLUMNS = "cards_created, active_cards_created, last_active_cards"
# How far back the statistics ever read last-activity days (a 30-day window, today included).
_ACTIVITY_REACH_DAYS = 30
_KEY = "merchant_id, program_id, store_id, day"


def _upsert(table: str, columns: str, rows: str) -> str:
    # Rows are upserted in key order, so two transactions lock shared summary rows in the same
    # order and cannot deadlock on them.
    adds = ", ".join(f"{c} = t.{c} + excluded.{c}" for c in columns.split(", "))
    return f"""
    INSERT INTO {table} AS t ({_KEY}, {columns})
    SELECT * FROM ({rows}) s ORDER BY 1, 2, 3, 4
    ON CONFLICT ({_KEY}) DO UPDATE SET {adds}
    """  # noqa: S608 - no outside input


def _function(name: str, body: str, args: str = "", returns: str = "trigger") -> str:
    return f"""
    CREATE FUNCTION {name}({args}) RETURNS {returns} LANGUAGE plpgsql AS $$
    BEGIN
    {body};
    RETURN{" NULL" if returns == "trigger" else ""};
    END $$
    """


_REBUILD = f"""
    CREATE FUNCTION stats_rebuild(p_merchant_id bigint) RETURNS void LANGUAGE plpgsql
    -- A rebuild sums the whole ledger: memory for its hash tables.
    SET work_mem = '256MB'
    AS $$
    DECLARE
        several bigint[];
    BEGIN
    SELECT coalesce(array_agg(merchant_id), '{{}}') INTO several FROM (
        SELECT merchant_id FROM loyalty_programs GROUP BY merchant_id HAVING count(*) > 1
    ) x;
    DELETE FROM ledger_daily_totals WHERE p_merchant_id IS NULL OR merchant_id = p_merchant_id;
    -- CREATE TABLE AS may run in parallel workers; INSERT ... SELECT may not.
    CREATE TEMP TABLE stats_rebuilt ON COMMIT DROP AS
    {
    _ledger_sums(
        "ledger_entries",
        "WHERE (p_merchant_id IS NULL OR n.merchant_id = p_merchant_id)"
        " AND NOT n.merchant_id = ANY(several)",
        _ONLY_PROGRAM,
    )
}
    UNION ALL
    {
    _ledger_sums(
        "ledger_entries",
        "WHERE (p_merchant_id IS NULL OR n.merchant_id = p_merchant_id)"
        " AND n.merchant_id = ANY(several)",
        _CARD_PROGRAM,
    )
};
    INSERT INTO ledger_daily_totals ({_KEY}, {_LEDGER_COLUMNS}) SELECT * FROM stats_rebuilt;
    DROP TABLE stats_rebuilt;
    DELETE FROM card_daily_counts WHERE p_merchant_id IS NULL OR merchant_id = p_merchant_id;
    INSERT INTO card_daily_counts ({_KEY}, {_CARD_COLUMNS})
    {
    _card_counts(
        _card_contributions(
            "loyalty_cards", "1", "(p_merchant_id IS NULL OR r.merchant_id = p_merchant_id)"
        )
    )
};
    END $$
"""  # noqa: S608 - no outside input

# An update (the engine's UPDATE of a batch of cards) moves a card between keys only when what
# the counts depend on changed: each card's old and new rows are paired (by a GROUP BY on the
# id, which no row estimate can turn into a quadratic join of the two transition tables) and
# only the moves are summed. The last-activity count is taken from the old day only when that
# day is within 30 days of the new one: the statistics read it over the 30 days up to today,
# which never reach further back than that, and skipping the older ones keeps a batch of cards
# that come back after months to a handful of upserted rows instead of one per card.
_CARD_MOVES = f"""
    WITH pairs AS MATERIALIZED (
        SELECT id,
               max(merchant_id) FILTER (WHERE side < 0) AS om,
               max(program_id) FILTER (WHERE side < 0) AS op,
               max(coalesce(store_id, 0)) FILTER (WHERE side < 0) AS os,
               max(created_at) FILTER (WHERE side < 0) AS oc,
               max(last_activity_at) FILTER (WHERE side < 0) AS ol,
               bool_or(live) FILTER (WHERE side < 0) AS olive,
               max(is_active::int) FILTER (WHERE side < 0) AS oact,
               max(merchant_id) FILTER (WHERE side > 0) AS nm,
               max(program_id) FILTER (WHERE side > 0) AS np,
               max(coalesce(store_id, 0)) FILTER (WHERE side > 0) AS ns,
               max(created_at) FILTER (WHERE side > 0) AS nc,
               max(last_activity_at) FILTER (WHERE side > 0) AS nl,
               bool_or(live) FILTER (WHERE side > 0) AS nlive,
               max(is_active::int) FILTER (WHERE side > 0) AS nact
        FROM (
            SELECT -1 AS side, id, merchant_id, program_id, store_id, created_at,
                   last_activity_at, deleted_at IS NULL AS live, is_active
            FROM old_rows
            UNION ALL
            SELECT 1, id, merchant_id, program_id, store_id, created_at, last_activity_at,
                   deleted_at IS NULL, is_active
            FROM new_rows
        ) sides
        GROUP BY id
    ),
    moves AS MATERIALIZED (
        SELECT om, op, os, olive, oact, nm, np, ns, nlive, nact,
               (oc AT TIME ZONE mo.timezone)::date AS o_created,
               (ol AT TIME ZONE mo.timezone)::date AS o_active,
               (nc AT TIME ZONE mn.timezone)::date AS n_created,
               (nl AT TIME ZONE mn.timezone)::date AS n_active,
               (olive, oact, om, op, os, oc) IS DISTINCT FROM (nlive, nact, nm, np, ns, nc)
                   AS created_moved
        FROM pairs p
        JOIN merchants mo ON mo.id = p.om
        JOIN merchants mn ON mn.id = p.nm
        WHERE (olive, oact, om, op, os, oc, ol) IS DISTINCT FROM (nlive, nact, nm, np, ns, nc, nl)
    ),
    activity AS (
        SELECT *, (olive, om, op, os, o_active) IS DISTINCT FROM (nlive, nm, np, ns, n_active)
                   AS active_moved
        FROM moves
    )
    SELECT m, pr, s, d, sum(c), sum(a), sum(l)
    FROM (
        SELECT om, op, os, o_created, -1, -oact, 0 FROM moves WHERE created_moved AND olive
        UNION ALL
        SELECT nm, np, ns, n_created, 1, nact, 0 FROM moves WHERE created_moved AND nlive
        UNION ALL
        SELECT om, op, os, o_active, 0, 0, -1 FROM activity
        WHERE active_moved AND olive AND o_active IS NOT NULL
          AND NOT (nlive AND n_active IS NOT NULL AND (om, op, os) = (nm, np, ns)
                   AND o_active < n_active - {_ACTIVITY_REACH_DAYS})
        UNION ALL
        SELECT nm, np, ns, n_active, 0, 0, 1 FROM activity
        WHERE active_moved AND nlive AND n_active IS NOT NULL
    ) x(m, pr, s, d, c, a, l)
    GROUP BY 1, 2, 3, 4
    HAVING sum(c) <> 0 OR sum(a) <> 0 OR sum(l) <> 0
"""  # noqa: S608 - no outside input

_FUNCTIONS = {
    "stats_ledger_inserted": _upsert(
        "ledger_daily_totals", _LEDGER_COLUMNS, _ledger_sums("new_rows", "", _LIVE_PROGRAM)
    ),
    "stats_cards_inserted": _upsert(
        "card_daily_counts", _CARD_COLUMNS, _card_counts(_card_contributions("new_rows", "1"))
    ),
    "stats_cards_updated": _upsert("card_daily_counts", _CARD_COLUMNS, _CARD_MOVES),
    "stats_cards_deleted": _upsert(
        "card_daily_counts", _CARD_COLUMNS, _card_counts(_card_contributions("old_rows", "-1"))
    ),
}

_TRIGGERS = (
    ("stats_ledger_inserted", "ledger_entries", "INSERT", "NEW TABLE AS new_rows"),
    ("stats_cards_inserted", "loyalty_cards", "INSERT", "NEW TABLE AS new_rows"),
    (
        "stats_cards_updated",
        "loyalty_cards",
        "UPDATE",
        "OLD TABLE AS old_rows NEW TABLE AS new_rows",
    ),
    ("stats_cards_deleted", "loyalty_cards", "DELETE", "OLD TABLE AS old_rows"),
)


revision: str = "f62961b25c5f"
down_revision: str | None = "1799aa3c9187"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    # ### commands auto generated by Alembic - please adjust! ###
    op.create_table(
        "card_daily_counts",
        sa.Column("merchant_id", sa.BigInteger(), nullable=False),
        sa.Column("program_id", sa.BigInteger(), nullable=False),
        sa.Column("store_id", sa.BigInteger(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("cards_created", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "active_cards_created", sa.BigInteger(), server_default=sa.text("0"), nullable=False
        ),
        sa.Column(
            "last_active_cards", sa.BigInteger(), server_default=sa.text("0"), nullable=False
        ),
        sa.PrimaryKeyConstraint(
            "merchant_id", "program_id", "store_id", "day", name=op.f("pk_card_daily_counts")
        ),
    )
    op.create_table(
        "ledger_daily_totals",
        sa.Column("merchant_id", sa.BigInteger(), nullable=False),
        sa.Column("program_id", sa.BigInteger(), nullable=False),
        sa.Column("store_id", sa.BigInteger(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("entries", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("stamps_earned", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("stamps_redeemed", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("stamps_voided", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("stamps_adjusted", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("stamps_net", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("points_earned", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("points_welcome", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("points_redeemed", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("points_voided", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("points_expired", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("points_adjusted", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("points_net", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint(
            "merchant_id", "program_id", "store_id", "day", name=op.f("pk_ledger_daily_totals")
        ),
    )
    op.create_index(
        "ix_loyalty_cards_merchant_deleted",
        "loyalty_cards",
        ["merchant_id"],
        unique=False,
        postgresql_where=sa.text("deleted_at IS NOT NULL"),
    )
    # ### end Alembic commands ###

    op.execute(_REBUILD)
    for name, body in _FUNCTIONS.items():
        op.execute(_function(name, body))
    for name, table, event, transition in _TRIGGERS:
        op.execute(
            f"CREATE TRIGGER {name} AFTER {event} ON {table} REFERENCING {transition} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {name}()"
        )
    # Days are the merchant's local days: a new time zone moves every entry's day.
    op.execute(_function("stats_merchant_timezone_changed", "PERFORM stats_rebuild(NEW.id)"))
    op.execute(
        "CREATE TRIGGER stats_merchant_timezone_changed AFTER UPDATE OF timezone ON merchants "
        "FOR EACH ROW WHEN (OLD.timezone IS DISTINCT FROM NEW.timezone) "
        "EXECUTE FUNCTION stats_merchant_timezone_changed()"
    )
    # Existing data (a database migrated with rows already in it).
    op.execute("SELECT stats_rebuild(NULL)")


def downgrade() -> None:
    """Revert this revision."""
    op.execute("DROP TRIGGER stats_merchant_timezone_changed ON merchants")
    op.execute("DROP FUNCTION stats_merchant_timezone_changed()")
    for name, table, _, _ in _TRIGGERS:
        op.execute(f"DROP TRIGGER {name} ON {table}")
        op.execute(f"DROP FUNCTION {name}()")
    op.execute("DROP FUNCTION stats_rebuild(bigint)")
    # ### commands auto generated by Alembic - please adjust! ###
    op.drop_index(
        "ix_loyalty_cards_merchant_deleted",
        table_name="loyalty_cards",
        postgresql_where=sa.text("deleted_at IS NOT NULL"),
    )
    op.drop_table("ledger_daily_totals")
    op.drop_table("card_daily_counts")
    # ### end Alembic commands ###
