"""the admin audit trail (issue 17)

``admin_audit_log``: one row per change a person made in the admin panel or on the command
line, with who, when, from where, what, and the values before and after (``domain.audit_trail``).
Rows are written once: a trigger refuses every UPDATE and DELETE statement, even one that
matches no row. TRUNCATE is left to the table's owner, as for the ledger: the tests empty every
table of the model between tests (``tests.support.db``).

Revision ID: e8a0c2d4f6b9
Revises: d7f9b1c3e5a8
Create Date: 2026-12-07 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "e8a0c2d4f6b9"
down_revision: str | None = "d7f9b1c3e5a8"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "admin_audit_log",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("entity", sa.String(length=64), nullable=False),
        sa.Column("entity_id", sa.Text(), nullable=True),
        sa.Column("merchant_id", sa.BigInteger(), nullable=True),
        sa.Column("before", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("after", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "source IN ('panel', 'cli', 'system')", name=op.f("ck_admin_audit_log_source_known")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_audit_log")),
    )
    op.create_index("ix_admin_audit_log_at", "admin_audit_log", ["at"], unique=False)
    op.create_index(
        "ix_admin_audit_log_merchant_at", "admin_audit_log", ["merchant_id", "at"], unique=False
    )
    op.execute(
        """
        CREATE FUNCTION admin_audit_log_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'the admin audit trail cannot be edited (% refused)', TG_OP;
        END $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER admin_audit_log_immutable BEFORE UPDATE OR DELETE ON admin_audit_log
            FOR EACH STATEMENT EXECUTE FUNCTION admin_audit_log_immutable();
        """
    )


def downgrade() -> None:
    """Revert this revision."""
    op.execute("DROP TRIGGER admin_audit_log_immutable ON admin_audit_log")
    op.execute("DROP FUNCTION admin_audit_log_immutable()")
    op.drop_index("ix_admin_audit_log_merchant_at", table_name="admin_audit_log")
    op.drop_index("ix_admin_audit_log_at", table_name="admin_audit_log")
    op.drop_table("admin_audit_log")
