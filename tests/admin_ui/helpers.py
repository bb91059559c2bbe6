"""Story helpers of the admin panel tests: seeding, signing in, reading a page's status."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from nicegui import ui
from nicegui.testing import User
from sqlalchemy.ext.asyncio import AsyncSession

from admin_ui.runtime import raw_connection
from domain.engine.batch import Inbound, process_batch
from domain.models import UserRole
from domain.users import create_user
from streams.commands import to_command
from streams.inputs import EnrollmentRequested, PurchaseCompleted
from streams.topics import Topic
from tests.support.seed import seed_merchant

MAIN_FILE = pytest.mark.nicegui_main_file("admin_ui/main.py")
"""``pytestmark`` of every module using NiceGUI's ``user`` fixture."""

PLATFORM = ("root", "platform-password")
ALICE = ("alice", "alice-password")  # merchant admin of merchant "a"
BOB = ("bob", "bob-password")  # merchant admin of merchant "b"

WAIT = 50  # should_see retries (0.1 s apart): bcrypt and the database take a moment


async def seed_users(session: AsyncSession) -> dict[str, Any]:
    """Merchants ``a`` and ``b`` (two stores and a hybrid program each) and three admins."""
    a, a_stores, a_program = await seed_merchant(
        session, stores=2, rewards={"coffee": 50}, welcome_bonus_points=0
    )
    b, b_stores, b_program = await seed_merchant(session, stores=1)
    await create_user(session, *PLATFORM, UserRole.PLATFORM_ADMIN, rounds=4)
    await create_user(session, *ALICE, UserRole.MERCHANT_ADMIN, merchant_code=a.code, rounds=4)
    await create_user(session, *BOB, UserRole.MERCHANT_ADMIN, merchant_code=b.code, rounds=4)
    await session.commit()
    return {
        "a": a.id,
        "a_code": a.code,
        "a_name": a.name,
        "a_stores": [s.id for s in a_stores],
        "a_store_codes": [s.code for s in a_stores],
        "a_program": a_program.id,
        "b": b.id,
        "b_code": b.code,
        "b_stores": [s.id for s in b_stores],
        "b_store_codes": [s.code for s in b_stores],
        "b_program": b_program.id,
    }


async def enrol(session: AsyncSession, store_code: str, email: str, **customer: Any) -> str:
    """A card issued through the engine (channel staff); returns its number."""
    conn = await raw_connection(session)
    now = datetime.now(UTC)
    message = EnrollmentRequested.model_validate(
        {
            "event_id": str(uuid.uuid4()),
            "type": "enrollment.requested",
            "occurred_at": now.isoformat(),
            "store_code": store_code,
            "customer": {"email": email, **customer},
            "channel": "staff",
        }
    )
    outcome = await process_batch(
        conn, [Inbound(Topic.ENROLLMENTS.value, to_command(message))], now
    )
    await session.commit()
    number = outcome.results[0].card_number
    assert number is not None, outcome.results
    return number


async def sign_in(user: User, credentials: tuple[str, str], *, to: str = "/") -> None:
    """Sign in through the sign-in page and wait for the panel's frame."""
    target = to if to != "/" else ""
    await user.open("/login" + (f"?redirect_to={target}" if target else ""))
    user.find(marker="login-username").type(credentials[0])
    user.find(marker="login-password").type(credentials[1])
    user.find(marker="login-submit").click()
    await user.should_see(marker="whoami", retries=WAIT)


async def status_of(user: User, path: str) -> tuple[int, str]:
    """The HTTP status and body of a page, with the user's session cookie."""
    response = await user.http_client.get(path, follow_redirects=True)
    return response.status_code, response.text


def value_of(user: User, marker: str) -> Any:
    """The value of the one element with this marker."""
    (element,) = user.find(marker=marker).elements
    return element.value  # type: ignore[attr-defined]


def set_value(user: User, marker: str, value: Any) -> None:
    """Set an element's value as the browser would (toggles, selects, number inputs)."""
    with user:
        for element in user.find(marker=marker).elements:
            element.value = value  # type: ignore[attr-defined]


def texts(user: User, marker: str) -> list[str]:
    """The texts of the labels with this marker."""
    return [e.text for e in user.find(marker=marker).elements if isinstance(e, ui.label)]


def element_error(user: User, marker: str) -> str | None:
    """The validation message shown under an input."""
    (element,) = user.find(marker=marker).elements
    return element.error  # type: ignore[attr-defined,no-any-return]


def normalise(text: str) -> str:
    """Whitespace collapsed, for comparing page texts."""
    return re.sub(r"\s+", " ", text).strip()


async def purchase(
    session: AsyncSession,
    store_code: str,
    card_number: str,
    amount_cents: int,
    at: datetime,
    lines: list[dict[str, Any]] | None = None,
) -> None:
    """A ``purchase.completed`` of the card at ``at``, through the engine (committed)."""
    message = PurchaseCompleted.model_validate(
        {
            "event_id": str(uuid.uuid4()),
            "type": "purchase.completed",
            "occurred_at": at.isoformat(),
            "store_code": store_code,
            "order_reference": f"o-{uuid.uuid4().hex[:12]}",
            "amount_cents": amount_cents,
            "card": {"card_number": card_number},
            **({"lines": lines} if lines else {}),
        }
    )
    outcome = await process_batch(
        await raw_connection(session),
        [Inbound(Topic.PURCHASES.value, to_command(message))],
        datetime.now(UTC),
    )
    await session.commit()
    assert outcome.results[0].status == "applied", outcome.results
