"""The admin audit trail (issue 17): each kind of change, made through the real services while an
admin acts, is one row with the actor, the values before and after, personal data masked and
secrets left out; nothing is recorded while nobody acts; the table cannot be edited; a
``loyalty`` command acts as ``cli:<user>``."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from typer.testing import CliRunner

from core.enums import CampaignStatus
from core.settings import get_settings
from domain import audit_trail, campaigns, card_links, catalog, soft_delete, staff_pins, webhooks
from domain.audit_trail import acting_as, record_change, recording_by_hand
from domain.engine import admin_actions
from domain.engine.conn import Conn
from domain.models import AdminAuditLog, Merchant, UserRole
from domain.users import create_user, set_password
from loyalty.cli import app, users_cmd  # noqa: F401 - registers the command
from tests.domain import factories as f

NOW = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)


async def _rows(db: AsyncSession) -> list[AdminAuditLog]:
    return list(await db.scalars(select(AdminAuditLog).order_by(AdminAuditLog.id)))


async def _only(db: AsyncSession) -> AdminAuditLog:
    (row,) = await _rows(db)
    return row


async def _conn(db: AsyncSession) -> Conn:
    connection = await db.connection()
    await connection.exec_driver_sql("SELECT 1")  # BEGIN, so the engine's writes are ours
    raw = await connection.get_raw_connection()
    driver: Conn = raw.driver_connection  # type: ignore[assignment]
    return driver


async def _merchant(db: AsyncSession) -> Merchant:
    merchant = await f.merchant(db, "m1")
    await db.commit()
    return merchant


async def test_creating_a_store_records_who_and_its_values(db: AsyncSession) -> None:
    merchant = await _merchant(db)

    with acting_as("alice"):
        store = await catalog.create_store(db, merchant.id, "s-1", "Kirchberg")
        await db.commit()

    row = await _only(db)
    assert (row.actor, row.source, row.action, row.entity) == ("alice", "panel", "create", "store")
    assert (row.entity_id, row.merchant_id) == (str(store.id), merchant.id)
    assert row.before is None
    assert row.after is not None
    assert row.after["code"] == "s-1"
    assert row.after["name"] == "Kirchberg"
    assert row.summary == f"created store {store.id} (s-1)"
    assert row.at is not None


async def test_an_update_records_the_changed_fields_only(db: AsyncSession) -> None:
    merchant = await _merchant(db)
    program = await f.program(db, merchant, points_per_euro=10, name="Coffee card")
    await db.commit()

    with acting_as("alice"):
        changed = await catalog.update_program(
            db, program, {"points_per_euro": 12, "name": "Coffee card", "stamps_target": 8}, at=NOW
        )
        await db.commit()

    assert changed
    row = await _only(db)
    assert (row.action, row.entity, row.entity_id) == ("update", "program", str(program.id))
    assert row.before == {"points_per_euro": 10, "stamps_target": 10}
    assert row.after == {"points_per_euro": 12, "stamps_target": 8}
    assert (
        row.summary == f"updated program {program.id} (Coffee card): points_per_euro, stamps_target"
    )


async def test_nothing_is_recorded_while_nobody_acts(db: AsyncSession) -> None:
    merchant = await _merchant(db)
    await catalog.create_store(db, merchant.id, "s-1", "Kirchberg")
    await db.commit()

    assert await _rows(db) == []


async def test_deleting_and_restoring_a_merchant_is_one_row_each_naming_the_cascade(
    db: AsyncSession,
) -> None:
    merchant = await _merchant(db)
    await f.store(db, merchant, "s-1")
    await f.store(db, merchant, "s-2")
    await f.program(db, merchant)
    await db.commit()

    with acting_as("root"):
        await soft_delete.soft_delete(db, Merchant, [merchant.id], by="admin:root", at=NOW)
        await db.commit()
        assert await soft_delete.restore(db, Merchant, [merchant.id]) == 4
        await db.commit()

    deleted, restored = await _rows(db)
    assert (deleted.action, deleted.entity, deleted.entity_id) == (
        "delete",
        "merchant",
        str(merchant.id),
    )
    assert deleted.merchant_id == merchant.id
    assert deleted.before == {"deleted_at": None}
    assert deleted.after == {"deleted_at": NOW.isoformat()}
    assert deleted.summary == f"deleted merchant {merchant.id} (m1) with 2 store(s), 1 program(s)"
    assert (restored.action, restored.actor) == ("restore", "root")
    assert restored.before == {"deleted_at": NOW.isoformat()}
    assert restored.after == {"deleted_at": None}
    assert (
        restored.summary
        == f"restored merchant {merchant.id} (m1) with 3 more row(s) of its deletion"
    )


async def test_adjusting_a_card_records_the_balances_before_and_after(db: AsyncSession) -> None:
    merchant = await _merchant(db)
    program = await f.program(db, merchant, points_per_euro=10)
    card = await f.card(db, merchant, program, points_balance=0)
    await db.commit()

    with acting_as("alice"):
        outcome = await admin_actions.adjust_card(
            await _conn(db),
            action_id=uuid.uuid4(),
            card_id=card.id,
            stamps=0,
            points=50,
            reason="goodwill",
            actor="admin:alice",
            now=NOW,
        )
        await db.commit()

    assert outcome.status == "applied"
    row = await _only(db)
    assert (row.actor, row.source, row.action, row.entity) == ("alice", "panel", "adjust", "card")
    assert (row.entity_id, row.merchant_id) == (str(card.id), merchant.id)
    assert row.before == {"points_balance": 0}
    assert row.after == {"points_balance": 50, "reason": "goodwill"}
    assert row.summary == f"adjusted card {card.id} ({card.card_number})"


async def test_a_deactivation_is_recorded_unless_the_caller_records_by_hand(
    db: AsyncSession,
) -> None:
    merchant = await _merchant(db)
    program = await f.program(db, merchant)
    card = await f.card(db, merchant, program)
    other = await f.card(db, merchant, program)
    await db.commit()

    with acting_as("alice"):
        for target, quiet in ((card, False), (other, True)):
            with recording_by_hand() if quiet else contextlib.nullcontext():
                outcome = await admin_actions.set_card_active(
                    await _conn(db),
                    action_id=uuid.uuid4(),
                    card_id=target.id,
                    active=False,
                    actor="admin:alice",
                    now=NOW,
                    reason="lost",
                )
            assert outcome.status == "applied"
            await db.commit()

    row = await _only(db)
    assert (row.action, row.entity_id) == ("deactivate", str(card.id))
    assert (row.before, row.after) == ({"is_active": True}, {"is_active": False, "reason": "lost"})


async def test_a_pin_reset_keeps_no_pin_and_masks_the_staff_members_name(db: AsyncSession) -> None:
    merchant = await _merchant(db)
    store = await f.store(db, merchant, "s-1")
    await db.commit()

    with acting_as("alice"):
        anna = await staff_pins.add_pin(db, "s-1", "Anna", "4821", rounds=4)
        await db.commit()
        await staff_pins.change_pin(db, anna.id, "7305", rounds=4)
        await db.commit()

    added, reset = await _rows(db)
    assert (added.action, added.entity, added.merchant_id) == ("create", "staff_pin", merchant.id)
    assert added.after is not None
    assert added.after["name"] == "A***"
    assert added.after["pin_hash"] == "[secret set]"
    assert added.after["store_id"] == store.id
    assert added.summary == f"created staff pin {anna.id} (A***)"
    assert (reset.action, reset.before, reset.after) == (
        "pin_reset",
        {"pin_hash": "[secret]"},
        {"pin_hash": "[secret changed]"},
    )
    stored = " ".join(str(r.before) + str(r.after) + r.summary for r in (added, reset))
    assert "Anna" not in stored
    assert "4821" not in stored
    assert "7305" not in stored
    assert "$2" not in stored  # no bcrypt hash either


async def test_webhook_endpoints_are_recorded_without_their_secret(db: AsyncSession) -> None:
    merchant = await _merchant(db)
    spec = webhooks.EndpointSpec(
        "https://hooks.example.com/a", ("card.balance_changed",), secret="s3cr3t-s3cr3t-s3cr3t"
    )

    with acting_as("alice"):
        endpoint = await webhooks.create_endpoint(db, merchant.id, spec, allow_private=True)
        await db.commit()
        changed = webhooks.EndpointSpec(
            "https://hooks.example.com/b", ("card.balance_changed", "tier.changed")
        )
        await webhooks.update_endpoint(db, endpoint.id, changed, allow_private=True)
        await db.commit()
        await webhooks.rotate_secret(db, endpoint.id)
        await db.commit()
        await webhooks.delete_endpoint(db, endpoint.id, by="admin:alice", at=NOW)
        await db.commit()

    created, updated, rotated, deleted = await _rows(db)
    assert all(
        r.entity == "webhook_endpoint" and r.merchant_id == merchant.id
        for r in (created, updated, rotated, deleted)
    )
    assert created.action == "create"
    assert created.after is not None
    assert created.after["secret"] == "[secret set]"
    assert created.after["url"] == "https://hooks.example.com/a"
    assert (updated.action, updated.before, updated.after) == (
        "update",
        {"url": "https://hooks.example.com/a", "event_types": ["card.balance_changed"]},
        {
            "url": "https://hooks.example.com/b",
            "event_types": ["card.balance_changed", "tier.changed"],
        },
    )
    assert (rotated.action, rotated.after) == ("secret_reset", {"secret": "[secret changed]"})
    assert (deleted.action, deleted.before, deleted.after) == (
        "delete",
        {"deleted_at": None},
        {"deleted_at": NOW.isoformat()},
    )
    assert "s3cr3t" not in " ".join(str(r.after) for r in (created, updated, rotated, deleted))


async def test_campaign_changes_are_recorded_with_their_merchant(db: AsyncSession) -> None:
    merchant = await _merchant(db)
    program = await f.program(db, merchant, points_per_euro=10)
    await db.commit()
    form = {"id": "double", "name": "Double points", "multiplier": Decimal(2)}

    with acting_as("alice"):
        made = await campaigns.create_campaign(db, merchant.id, program.id, form)
        await db.commit()
        await campaigns.set_campaign_status(db, merchant.id, made.id, CampaignStatus.ACTIVE)
        await db.commit()
        await campaigns.delete_campaign(db, merchant.id, made.id, by="admin:alice", at=NOW)
        await db.commit()
        await campaigns.restore_campaign(db, merchant.id, made.id)
        await db.commit()

    rows = await _rows(db)
    assert [(r.action, r.entity, r.merchant_id) for r in rows] == [
        ("create", "campaign", merchant.id),
        ("update", "campaign", merchant.id),
        ("delete", "campaign", merchant.id),
        ("restore", "campaign", merchant.id),
    ]
    assert rows[0].after is not None
    assert rows[0].after["code"] == "double"
    assert Decimal(rows[0].after["multiplier"]) == 2
    assert (rows[1].before, rows[1].after) == ({"status": "draft"}, {"status": "active"})
    assert rows[3].after == {"deleted_at": None}


async def test_personal_data_is_masked(db: AsyncSession) -> None:
    merchant = await _merchant(db)
    customer = await f.customer(db, merchant, email="kim.lee@example.com")
    await db.commit()

    with acting_as("alice"):
        customer.email = "kim@example.org"
        customer.first_name = "Kim"
        customer.phone = "+352 621 123 456"
        await db.commit()

    row = await _only(db)
    assert (row.action, row.entity, row.merchant_id) == ("update", "customer", merchant.id)
    assert row.before == {"email": "k***@example.com", "first_name": None, "phone": None}
    assert row.after == {"email": "k***@example.org", "first_name": "K***", "phone": "***56"}
    assert row.summary == f"updated customer {customer.id}: email, first_name, phone"


async def test_an_explicit_record_is_masked_and_by_hand_writes_are_not_recorded_twice(
    db: AsyncSession,
) -> None:
    merchant = await _merchant(db)
    customer = await f.customer(db, merchant, email="kim@example.com")
    await db.commit()

    with acting_as("cli:ops", source="cli"):
        with recording_by_hand():
            customer.email = "erased-1@invalid"
            await db.flush()
        await record_change(
            db,
            action="erase",
            entity="customer",
            entity_id=customer.id,
            merchant_id=merchant.id,
            before={"email": "kim@example.com", "push_token": "abcdef"},
            after={"email": "erased-1@invalid", "push_token": None},
        )
        await db.commit()

    row = await _only(db)
    assert (row.actor, row.source, row.action) == ("cli:ops", "cli", "erase")
    assert row.before == {"email": "k***@example.com", "push_token": "a***"}
    assert row.after == {"email": "e***@invalid", "push_token": None}
    assert row.summary == f"erased customer {customer.id}"


async def test_an_explicit_record_without_an_actor_names_the_system(db: AsyncSession) -> None:
    await record_change(
        db,
        action="update",
        entity="setting",
        entity_id=None,
        merchant_id=None,
        before={},
        after={"pin": "1234"},
    )
    await db.commit()

    row = await _only(db)
    assert (row.actor, row.source, row.entity_id) == ("system", "system", None)
    assert row.after == {"pin": "[secret set]"}


async def test_users_are_recorded_without_their_password(db: AsyncSession) -> None:
    with acting_as("root"):
        user = await create_user(db, "ops", "a-long-password", UserRole.PLATFORM_ADMIN, rounds=4)
        await db.commit()
        await set_password(db, user.id, "another-password", rounds=4)
        await db.commit()

    created, reset = await _rows(db)
    assert (created.action, created.entity, created.merchant_id) == ("create", "admin_user", None)
    assert created.after is not None
    assert created.after["username"] == "ops"
    assert created.after["password_hash"] == "[secret set]"
    assert reset.action == "password_reset"
    assert reset.after is not None
    assert reset.after["password_hash"] == "[secret changed]"


async def test_the_trail_cannot_be_edited(db: AsyncSession) -> None:
    merchant = await _merchant(db)
    with acting_as("alice"):
        await catalog.create_store(db, merchant.id, "s-1", "Kirchberg")
        await db.commit()

    for statement in (
        "UPDATE admin_audit_log SET actor = 'someone else'",
        "DELETE FROM admin_audit_log",
        "UPDATE admin_audit_log SET actor = 'x' WHERE false",  # even when it matches nothing
    ):
        with pytest.raises(DBAPIError, match="cannot be edited"):
            await db.execute(text(statement))
        await db.rollback()
    assert (await _only(db)).actor == "alice"


def test_masking() -> None:
    assert audit_trail.mask("anna.muller@example.com", "email") == "a***@example.com"
    assert audit_trail.mask("Jean", "first_name") == "J***"
    assert audit_trail.mask("+352 621 123 456", "phone") == "***56"
    assert audit_trail.mask(None, "email") is None
    before, after = audit_trail.masked_pair(
        "customer",
        {"email": "a@b.lu", "token": "x", "tiers": [{"name": "Gold"}]},
        {"email": "c@d.lu", "token": "y", "settings": {"password": "p", "last_name": "Muller"}},
    )
    assert before == {"email": "a***@b.lu", "token": "[secret]", "tiers": [{"name": "Gold"}]}
    assert after == {
        "email": "c***@d.lu",
        "token": "[secret changed]",
        "settings": {"password": "[secret]", "last_name": "M***"},
    }


# -- the command line ------------------------------------------------------------------------


async def test_a_command_records_its_changes_as_the_cli(
    db_sessions: async_sessionmaker[AsyncSession],
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LOYALTY_DATABASE_URL", database_url)
    get_settings.cache_clear()
    result = await asyncio.to_thread(
        CliRunner().invoke,
        app,
        ["users", "add", "ops", "--role", "platform_admin", "--password-stdin"],
        input="a-long-password\n",
    )
    assert result.exit_code == 0, result.output

    async with db_sessions() as session:
        row = await _only(session)
    assert (row.actor, row.source, row.action, row.entity) == (
        f"cli:{getpass.getuser()}",
        "cli",
        "create",
        "admin_user",
    )
    assert row.after is not None
    assert row.after["password_hash"] == "[secret set]"


async def test_a_card_link_rotation_is_recorded_without_the_token(db: AsyncSession) -> None:
    merchant = await _merchant(db)
    program = await f.program(db, merchant, points_per_euro=10)
    card = await f.card(db, merchant, program)
    await db.commit()

    with acting_as("alice"):
        token = await card_links.rotate_link(db, card.id)
        await db.commit()

    row = await _only(db)
    assert (row.actor, row.action, row.entity, row.entity_id) == (
        "alice",
        "rotate_link",
        "card",
        str(card.id),
    )
    assert row.merchant_id == merchant.id
    assert token not in str(row.before) + str(row.after) + row.summary
