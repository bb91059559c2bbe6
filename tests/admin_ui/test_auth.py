"""Signing in, signing out, the lockout, and what each role may see."""

from __future__ import annotations

from typing import Any

from nicegui.testing import User
from sqlalchemy.ext.asyncio import AsyncSession

from tests.admin_ui.helpers import ALICE, MAIN_FILE, PLATFORM, WAIT, enrol, sign_in, status_of

pytestmark = MAIN_FILE


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
    # The start page is their merchant; the platform's pages are not in the menu.
    await user.should_see(people["a_code"], retries=WAIT)
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
    token = await db.scalar(select(LoyaltyCard.qr_token).where(LoyaltyCard.card_number == number))
    for path in (
        f"/enroll/{people['a_store_codes'][0]}",
        f"/terminal/{people['a_store_codes'][0]}",
        f"/card/{token}",
        "/healthz",
    ):
        status, body = await status_of(user, path)
        assert status == 200, path
        assert "login-card" not in body and "Sign in to manage" not in body, path
