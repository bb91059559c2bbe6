"""the card counts' moves summed by the engine for its own card updates

As revision d2f4a6c8e0b3 for the ledger: the statement trigger that moves ``card_daily_counts``
on an update of ``loyalty_cards`` stands aside when the transaction says the engine counts its
own updates (``loyalty.card_rollups`` = ``engine``, transaction-local). Inserts and deletes of
cards, and every other writer's updates, still go through the triggers. See
``domain.engine.rollups``.

Revision ID: e5a7c9b1d3f2
Revises: d2f4a6c8e0b3
Create Date: 2026-12-05 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "e5a7c9b1d3f2"
down_revision: str | None = "d2f4a6c8e0b3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _trigger(when: str) -> None:
    op.execute("DROP TRIGGER stats_cards_updated ON loyalty_cards")
    op.execute(
        "CREATE TRIGGER stats_cards_updated AFTER UPDATE ON loyalty_cards "
        "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT "
        f"{when}EXECUTE FUNCTION stats_cards_updated()"
    )


def upgrade() -> None:
    _trigger("WHEN (current_setting('loyalty.card_rollups', true) IS DISTINCT FROM 'engine') ")


def downgrade() -> None:
    _trigger("")
