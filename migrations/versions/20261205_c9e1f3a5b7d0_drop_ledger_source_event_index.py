"""drop the ledger's source_event_id index

Nothing reads ledger entries by their source event but the audit, which scans them all; the
index cost every ledger insert of the engine's hot path a random B-tree insertion.

Revision ID: c9e1f3a5b7d0
Revises: b7d2e4f6a8c1
Create Date: 2026-12-05 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "c9e1f3a5b7d0"
down_revision: str | None = "b7d2e4f6a8c1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_ledger_entries_source_event", table_name="ledger_entries")


def downgrade() -> None:
    op.create_index(
        "ix_ledger_entries_source_event", "ledger_entries", ["source_event_id"], unique=False
    )
