"""The panel's writes go through the catalog service: what provisioning does, the forms do
(a program made in the panel is active from its creation; the values are validated where they
are written, not only on the page), with the admin's scope on top."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from admin_ui.problems import DomainRefusal
from admin_ui.queries import merchants, programs
from admin_ui.queries.admins import Principal
from domain.models import LoyaltyProgram, Merchant, UserRole

ROOT = Principal(1, "root", UserRole.PLATFORM_ADMIN, None)


def _merchant(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "code": "cafe-1",
        "name": "Café",
        "timezone": "Europe/Luxembourg",
        "allow_self_enrollment": True,
        "allow_cross_location_redemption": False,
    }
    data.update(changes)
    return data


async def test_a_program_made_in_the_panel_is_active_from_its_creation(
    db: AsyncSession,
) -> None:
    merchant_id = await merchants.create_merchant(db, ROOT, _merchant())
    program_id = await programs.create_program(db, ROOT, merchant_id, "stamps", "Card")
    await db.commit()

    program = await db.get(LoyaltyProgram, program_id)
    assert program is not None
    assert (program.require_staff_pin, program.is_active) == (True, True)
    assert program.activated_at is not None


async def test_the_panel_refuses_what_provisioning_refuses(db: AsyncSession) -> None:
    merchant_id = await merchants.create_merchant(db, ROOT, _merchant())
    with pytest.raises(DomainRefusal, match="timezone: unknown time zone 'Europe/Atlantis'"):
        await merchants.update_merchant(
            db, ROOT, merchant_id, _merchant(timezone="Europe/Atlantis")
        )
    with pytest.raises(DomainRefusal, match="name: must have at most 200 characters"):
        await programs.create_program(db, ROOT, merchant_id, "stamps", "x" * 201)
    alice = Principal(2, "alice", UserRole.MERCHANT_ADMIN, merchant_id)
    with pytest.raises(DomainRefusal, match="only a platform admin changes a merchant's code"):
        await merchants.update_merchant(db, alice, merchant_id, _merchant(code="cafe-2"))
    merchant = await db.get(Merchant, merchant_id)
    assert merchant is not None and merchant.timezone == "Europe/Luxembourg"


async def test_the_program_form_reads_and_writes_the_expiry_settings(db: AsyncSession) -> None:
    merchant_id = await merchants.create_merchant(db, ROOT, _merchant())
    program_id = await programs.create_program(db, ROOT, merchant_id, "points", "Card")
    await db.commit()
    detail = await programs.get_program(db, ROOT, program_id)
    assert detail is not None
    # A new program keeps v1's behaviour; the policy comes as the select's key.
    assert {k: detail.settings[k] for k in _EXPIRY} == {
        "expiry_policy": "inactivity",
        "pending_days": 0,
        "expiry_reminder_days": 30,
    }

    form = {**detail.settings, "points_rewards": detail.rewards}
    form.update(expiry_policy="calendar_year", pending_days=3, expiry_reminder_days=45)
    await programs.update_program(db, ROOT, program_id, form)
    await db.commit()
    db.expire_all()

    saved = await programs.get_program(db, ROOT, program_id)
    assert saved is not None
    assert {k: saved.settings[k] for k in _EXPIRY} == {
        "expiry_policy": "calendar_year",
        "pending_days": 3,
        "expiry_reminder_days": 45,
    }
    refused = {**form, "expiry_policy": "rolling", "points_expiration_days": 3}
    with pytest.raises(DomainRefusal, match="pending_days: must be < points_expiration_days"):
        await programs.update_program(db, ROOT, program_id, refused)


_EXPIRY = ("expiry_policy", "pending_days", "expiry_reminder_days")
