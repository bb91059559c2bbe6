"""the outbox wakes the relays itself: a statement trigger sends ``NOTIFY loyalty_outbox``

Every writer of the outbox (the engine's batches, the expiry's SQL, the dead letters) sent
``SELECT pg_notify('loyalty_outbox', '')`` after its insert: one more round trip per batch,
which at 2,000 events/s (batches of ~30) is a few per cent of the batch's time, and so of the
time from publish to result. The trigger sends it in the insert's own statement instead. The
notification is still delivered at commit, and PostgreSQL folds the duplicates of one
transaction into one, as before.

Revision ID: a1c3e5f7b9d2
Revises: f9b1d3e5a7c0
Create Date: 2026-12-08 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "a1c3e5f7b9d2"
down_revision: str | None = "f9b1d3e5a7c0"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('loyalty_outbox', '');
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER outbox_notify AFTER INSERT ON outbox "
        "FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER outbox_notify ON outbox")
    op.execute("DROP FUNCTION outbox_notify()")
