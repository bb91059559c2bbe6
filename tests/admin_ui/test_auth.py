"""Signing in, signing out, the lockout, and what each role may see."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from typing import Any

from nicegui.testing import User
from sqlalchemy.ext.asyncio import AsyncSession

from core.settings import REPO_ROOT
from domain.users import MAX_FAILED_LOGINS
from tests.admin_ui.helpers import ALICE, MAIN_FILE, PLATFORM, WAIT, enrol, sign_in, status_of

pytestmark = MAIN_FILE


async def answered(user: User) -> None:
    """Wait for the sign-in just clicked to answer: the page empties the password then.

    The button is disabled while a sign-in runs and a click on it is dropped, so the next
    attempt must wait for this one (bcrypt is slow on a loaded CI machine).
    """
    (password,) = user.find(marker="login-password").elements
    for _ in range(WAIT):
        if not password.value:  # type: ignore[attr-defined]
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the sign-in attempt never answered")


async def test_a_protected_page_sends_to_the_sign_in_page(
    user: User, people: dict[str, Any]
) -> None:
    await user.open("/merchants")
    await user.should_see(marker="login-card")
    await user.should_not_see(marker="whoami")


async def test_a_platform_admin_signs_in_and_comes_back_where_they_were_going(
    user: User, people: dict[str, Any]
) -> None:
    await sign_in(user, PLATFORM, to="/stores")
    await user.should_see("Stores", retries=WAIT)
    await user.should_see(people["a_store_codes"][0], retries=WAIT)
    await user.should_see(people["b_store_codes"][0])
    await user.should_see(marker="nav-pipeline")


async def test_a_wrong_password_says_so_without_telling_which_part_was_wrong(
    user: User, people: dict[str, Any]
) -> None:
    await user.open("/login")
    user.find(marker="login-username").type("root")
    user.find(marker="login-password").type("not-the-password")
    user.find(marker="login-submit").click()
    await user.should_see("Unknown user name or wrong password.", retries=WAIT)
    user.find(marker="login-username").type("nobody")
    user.find(marker="login-password").type("whatever-password")
    user.find(marker="login-submit").click()
    await user.should_see("Unknown user name or wrong password.", retries=WAIT)
    await user.should_not_see(marker="whoami")


async def test_repeated_failures_lock_the_account_even_for_the_right_password(
    user: User, people: dict[str, Any]
) -> None:
    await user.open("/login")
    for _ in range(5):
        user.find(marker="login-password").type("wrong-password")
        user.find(marker="login-username").type("")
        (name,) = user.find(marker="login-username").elements
        name.value = "alice"  # type: ignore[attr-defined]
        user.find(marker="login-submit").click()
        await user.should_not_see("Enter your user name and password.")
        await answered(user)
    await user.should_see("this account is locked until", retries=WAIT)
    (name,) = user.find(marker="login-username").elements
    name.value = "alice"  # type: ignore[attr-defined]
    user.find(marker="login-password").type(ALICE[1])
    user.find(marker="login-submit").click()
    await user.should_see("this account is locked until", retries=WAIT)
    await user.should_not_see(marker="whoami")


async def test_signing_out_ends_the_session(user: User, people: dict[str, Any]) -> None:
    await sign_in(user, PLATFORM)
    user.find(marker="sign-out").click()
    await user.should_see(marker="login-card", retries=WAIT)
    await user.open("/merchants")
    await user.should_see(marker="login-card")


async def test_a_merchant_admin_sees_only_their_merchant(
    user: User, people: dict[str, Any]
) -> None:
    await sign_in(user, ALICE)
    # The start page is their merchant's dashboard; the platform's pages are not in the menu.
    await user.should_see(marker="dashboard-merchant-name", retries=WAIT)
    await user.should_see(people["a_code"])
    await user.should_not_see(marker="nav-pipeline")
    await user.open("/stores")
    await user.should_see(people["a_store_codes"][0], retries=WAIT)
    await user.should_not_see(people["b_store_codes"][0])
    await user.open("/merchants")  # the list is their merchant's page
    await user.should_see(people["a_code"], retries=WAIT)
    await user.should_not_see(people["b_code"])


async def test_a_merchant_admin_typing_another_merchants_urls_gets_not_found(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    theirs = await enrol(db, people["b_store_codes"][0], "someone@b.example")
    mine = await enrol(db, people["a_store_codes"][0], "someone@a.example")
    from sqlalchemy import select

    from domain.models import Customer, LoyaltyCard

    cards = dict((await db.execute(select(LoyaltyCard.card_number, LoyaltyCard.id))).all())
    customers = dict((await db.execute(select(Customer.email, Customer.id))).all())
    await sign_in(user, ALICE)
    others = [
        f"/merchants/{people['b']}",
        f"/stores/{people['b_stores'][0]}",
        f"/programs/{people['b_program']}",
        f"/customers/{customers['someone@b.example']}",
        f"/cards/{cards[theirs]}",
        f"/stats/merchants/{people['b']}",
        f"/stats/programs/{people['b_program']}",
        "/pipeline",
        "/merchants/999999",  # a merchant that does not exist answers the same
        "/cards/not-a-number",
    ]
    for path in others:
        status, body = await status_of(user, path)
        assert status == 404, path
        assert "not allowed to see it" in body, path
        assert people["b_code"] not in body, path
    own = [
        f"/merchants/{people['a']}",
        f"/stores/{people['a_stores'][0]}",
        f"/programs/{people['a_program']}",
        f"/customers/{customers['someone@a.example']}",
        f"/cards/{cards[mine]}",
        f"/stats/merchants/{people['a']}",
    ]
    for path in own:
        status, body = await status_of(user, path)
        assert status == 200, path
        assert "not allowed to see it" not in body, path


async def test_public_pages_need_no_sign_in(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    from sqlalchemy import select

    from domain.models import LoyaltyCard

    number = await enrol(db, people["a_store_codes"][0], "pub@example.com")
    token = await db.scalar(select(LoyaltyCard.link_token).where(LoyaltyCard.card_number == number))
    for path in (
        f"/enroll/{people['a_store_codes'][0]}",
        f"/terminal/{people['a_store_codes'][0]}",
        f"/card/{token}",
        "/healthz",
    ):
        status, body = await status_of(user, path)
        assert status == 200, path
        assert "login-card" not in body and "Sign in to manage" not in body, path


async def test_an_unknown_name_locks_like_an_account_so_names_cannot_be_probed(
    user: User, people: dict[str, Any]
) -> None:
    stranger = f"stranger-{uuid.uuid4().hex[:8]}"  # the process keeps unknown names' counts
    await user.open("/login")
    for _ in range(MAX_FAILED_LOGINS):
        user.find(marker="login-password").type("wrong-password")
        user.find(marker="login-username").type("")
        (name,) = user.find(marker="login-username").elements
        name.value = stranger  # type: ignore[attr-defined]
        user.find(marker="login-submit").click()
        await user.should_not_see("Enter your user name and password.")
        await answered(user)
    await user.should_see("this account is locked until", retries=WAIT)
    user.find(marker="login-password").type("any-password")
    user.find(marker="login-submit").click()
    await user.should_see("this account is locked until", retries=WAIT)
    await user.should_not_see(marker="whoami")


def test_the_admin_will_not_serve_beyond_loopback_with_the_default_secret(
    database_url: str,
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "LOYALTY_SESSION_SECRET"}
    env.update(
        LOYALTY_DATABASE_URL=database_url,
        LOYALTY_BCRYPT_ROUNDS="4",
        # TEST-NET-1: no interface has it, so were the start not refused, binding would fail
        # at once (no hang, and nothing listening beyond this machine).
        LOYALTY_ADMIN_HOST="192.0.2.1",
    )
    done = subprocess.run(
        [sys.executable, "-m", "loyalty", "admin"],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "loyalty admin: LOYALTY_SESSION_SECRET is the public default" in done.stderr
    assert "'192.0.2.1'" in done.stderr and "Traceback" not in done.stderr
