"""customers' data: erasure (issue 17)

``customers.erased_at``: when the customer's personal data was replaced by a pseudonym
(CONTRACT.md 7.6, ``domain.customer_data``), with a partial index over the erased rows, which
the wallet sync reads for the push tokens it still has to replace.

Revision ID: d7f9b1c3e5a8
Revises: c6e8a0b2d4f7
Create Date: 2026-12-07 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d7f9b1c3e5a8"
down_revision: str | None = "c6e8a0b2d4f7"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.add_column("customers", sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_customers_erased",
        "customers",
        ["erased_at"],
        unique=False,
        postgresql_where=sa.text("erased_at IS NOT NULL"),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index(
        "ix_customers_erased",
        table_name="customers",
        postgresql_where=sa.text("erased_at IS NOT NULL"),
    )
    op.drop_column("customers", "erased_at")
