"""the ledger's daily totals summed by the engine for its own batches

The statement trigger that keeps ``ledger_daily_totals`` stands aside when the transaction says
the engine sums its rows itself (``loyalty.ledger_rollups`` = ``engine``, set with
``set_config(..., true)`` and so gone at commit); every other writer still goes through it.
See ``domain.engine.rollups``.

Revision ID: d2f4a6c8e0b3
Revises: c9e1f3a5b7d0
Create Date: 2026-12-05 09:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "d2f4a6c8e0b3"
down_revision: str | None = "c9e1f3a5b7d0"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _trigger(when: str) -> None:
    op.execute("DROP TRIGGER stats_ledger_inserted ON ledger_entries")
    op.execute(
        "CREATE TRIGGER stats_ledger_inserted AFTER INSERT ON ledger_entries "
        f"REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT {when}"
        "EXECUTE FUNCTION stats_ledger_inserted()"
    )


def upgrade() -> None:
    _trigger("WHEN (current_setting('loyalty.ledger_rollups', true) IS DISTINCT FROM 'engine') ")


def downgrade() -> None:
    _trigger("")
