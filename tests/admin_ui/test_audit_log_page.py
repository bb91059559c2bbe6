"""The audit log (issue 17): a change made in the panel is recorded as its admin and listed;
the page filters and pages its rows newest first; a merchant admin sees their merchant's rows
only, whatever the URL says, in the merchant's time zone; a platform admin sees every row, each
on its merchant's clock (UTC for a change of no merchant's). Who acted, the fields and their
values are said in words. The filters come at once, the rows a moment later, and a failure to
read them is a sentence. A real Chromium shows it at 1440 and 390 pixels wide
(``$LOYALTY_SCREENSHOTS``)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from nicegui import ui
from nicegui.testing import User
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from admin_ui.queries import audit_log as audit_data
from admin_ui.queries.admins import Principal
from admin_ui.queries.common import PageRequest
from domain.audit_trail import acting_as, record_change
from domain.models import AdminAuditLog, UserRole
from tests.admin_ui.browser import browser_sign_in, element, no_traceback, wait
from tests.admin_ui.helpers import (
    ALICE,
    MAIN_FILE,
    PLATFORM,
    WAIT,
    set_value,
    sign_in,
    status_of,
    texts,
)

pytestmark = MAIN_FILE

EVERY = PageRequest("", "all", 0, 50)
LUXEMBOURG = "Europe/Luxembourg"


async def _seed(db: AsyncSession, people: dict[str, Any]) -> None:
    """A change of each merchant's and one of the platform's, as their admins made them."""
    with acting_as("alice"):
        await record_change(
            db,
            action="update",
            entity="store",
            entity_id=people["a_stores"][0],
            merchant_id=people["a"],
            before={"name": "Shop 0"},
            after={"name": "Kirchberg"},
        )
    with acting_as("bob"):
        await record_change(
            db,
            action="update",
            entity="store",
            entity_id=people["b_stores"][0],
            merchant_id=people["b"],
            before={"name": "Shop 0"},
            after={"name": "Plans of b"},
        )
        await record_change(
            db,
            action="update",
            entity="customer",
            entity_id=7,
            merchant_id=people["b"],
            before={"email": "kim@example.com"},
            after={"email": "kim.lee@example.com"},
        )
    with acting_as("cli:ops", source="cli"):
        await record_change(
            db,
            action="create",
            entity="admin_user",
            entity_id=99,
            merchant_id=None,
            before=None,
            after={"username": "ops", "password_hash": "$2b$04$abc"},
        )
    await db.commit()


def _in_order(user: User, marker: str) -> list[str]:
    """The texts of the list's labels with this marker, top to bottom."""
    (listing,) = user.find(marker="audit-list").elements
    try:
        marked = user.find(marker=marker).elements
    except AssertionError:  # none on the page (yet)
        return []
    return [e.text for e in listing.descendants() if isinstance(e, ui.label) and e in marked]


async def _listed(user: User, actors: list[str]) -> None:
    """Wait until the list shows the changes of ``actors``, top to bottom (a filter reloads
    the list in the background)."""
    for _ in range(WAIT):
        if _in_order(user, "audit-actor") == actors:
            return
        await asyncio.sleep(0.1)
    assert _in_order(user, "audit-actor") == actors


def _admins(people: dict[str, Any]) -> tuple[Principal, Principal]:
    return (
        Principal(1, "root", UserRole.PLATFORM_ADMIN, None),
        Principal(2, "alice", UserRole.MERCHANT_ADMIN, people["a"]),
    )


# -- the query --------------------------------------------------------------------------------


async def test_a_merchant_admin_gets_their_merchants_rows_whatever_the_filters_say(
    db: AsyncSession, people: dict[str, Any]
) -> None:
    await _seed(db, people)
    root, alice = _admins(people)

    mine = await audit_data.entries(db, alice, audit_data.AuditFilters(), EVERY)
    assert [e.actor for e in mine.items] == ["alice"]
    for tampered in (
        audit_data.AuditFilters(merchant_id=people["b"]),
        audit_data.AuditFilters(entity_id=str(people["b_stores"][0])),
        audit_data.AuditFilters(actor="bob"),
    ):
        found = await audit_data.entries(db, alice, tampered, EVERY)
        assert [e.actor for e in found.items if e.actor != "alice"] == []
    searched = await audit_data.entries(
        db, alice, audit_data.AuditFilters(), PageRequest("Plans", "all", 0, 50)
    )
    assert searched.total == 0

    every = await audit_data.entries(db, root, audit_data.AuditFilters(), EVERY)
    assert [e.actor for e in every.items] == ["cli:ops", "bob", "bob", "alice"]  # newest first
    of_b = await audit_data.entries(
        db, root, audit_data.AuditFilters(merchant_id=people["b"]), EVERY
    )
    assert {e.actor for e in of_b.items} == {"bob"}
    assert of_b.items[0].merchant_code == people["b_code"]
    created = await audit_data.entries(db, root, audit_data.AuditFilters(action="create"), EVERY)
    assert [(e.source, e.entity) for e in created.items] == [("cli", "admin_user")]
    by_text = await audit_data.entries(
        db, root, audit_data.AuditFilters(), PageRequest("k***@", "all", 0, 50)
    )
    assert [e.entity for e in by_text.items] == ["customer"]
    # Personal data was masked when written: the clear address is nowhere to be found.
    assert (
        await audit_data.entries(
            db, root, audit_data.AuditFilters(), PageRequest("kim.lee", "all", 0, 50)
        )
    ).total == 0
    paged = await audit_data.entries(
        db, root, audit_data.AuditFilters(), PageRequest("", "all", 1, 2)
    )
    assert (paged.total, [e.actor for e in paged.items]) == (4, ["bob", "bob"])


async def test_days_are_the_viewers_and_the_diff_is_field_by_field(
    db: AsyncSession, people: dict[str, Any]
) -> None:
    await _seed(db, people)
    root, alice = _admins(people)
    assert await audit_data.viewer_zone(db, alice) == LUXEMBOURG
    assert await audit_data.viewer_zone(db, root) == "UTC"
    today = datetime.now(ZoneInfo(LUXEMBOURG)).date()

    def days(start: Any, end: Any) -> audit_data.AuditFilters:
        return audit_data.AuditFilters(start=start, end=end)

    assert (await audit_data.entries(db, alice, days(today, today), EVERY, LUXEMBOURG)).total == 1
    yesterday = today - timedelta(days=1)
    assert (
        await audit_data.entries(db, alice, days(None, yesterday), EVERY, LUXEMBOURG)
    ).total == 0
    assert (
        await audit_data.entries(
            db, alice, days(today + timedelta(days=1), None), EVERY, LUXEMBOURG
        )
    ).total == 0

    (row,) = (await audit_data.entries(db, alice, audit_data.AuditFilters(), EVERY)).items
    assert row.changes == (audit_data.Change("name", "Shop 0", "Kirchberg"),)
    created = (
        await audit_data.entries(db, root, audit_data.AuditFilters(action="create"), EVERY)
    ).items[0]
    assert created.changes == (
        audit_data.Change("password_hash", None, "[secret set]"),
        audit_data.Change("username", None, "ops"),
    )


# -- the page ---------------------------------------------------------------------------------


async def test_a_change_made_in_the_panel_is_listed_as_its_admins(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    store_id = people["a_stores"][0]
    await sign_in(user, ALICE, to=f"/stores/{store_id}")
    await user.should_see(marker="store-name", retries=WAIT)
    user.find(marker="store-name").clear().type("Kirchberg")
    user.find(marker="store-save").click()
    await user.should_see("Store saved.", retries=WAIT)

    (row,) = (await db.scalars(select(AdminAuditLog))).all()
    assert (row.actor, row.source, row.action, row.entity) == ("alice", "panel", "update", "store")
    assert (row.entity_id, row.merchant_id) == (str(store_id), people["a"])
    assert (row.before, row.after) == ({"name": "Shop 0"}, {"name": "Kirchberg"})

    await user.open("/audit")
    await user.should_see(marker="audit-row", retries=WAIT)
    assert texts(user, "audit-actor") == ["alice (panel)"]
    assert texts(user, "audit-change") == ["name: Shop 0 → Kirchberg"]
    assert texts(user, "audit-summary") == [
        f"updated store {store_id} ({people['a_store_codes'][0]}): name"
    ]
    (when,) = texts(user, "audit-when")
    assert when.endswith(("CET", "CEST")), when  # the merchant's clock
    await user.should_see("Times and days are in Europe/Luxembourg")


async def test_the_changes_come_after_the_filters_and_a_failure_is_a_sentence(
    user: User, people: dict[str, Any], db: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _seed(db, people)
    await sign_in(user, ALICE)
    status, body = await status_of(user, "/audit")
    assert status == 200
    assert "audit-actor-filter" in body and "audit-loading" in body
    assert "audit-row" not in body

    async def broken(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("the database went away")

    monkeypatch.setattr(audit_data, "entries", broken)
    await user.open("/audit")
    await user.should_see(marker="audit-failed", retries=WAIT)
    await user.should_not_see(marker="audit-row")
    await user.should_not_see("Traceback")


async def test_a_merchant_admin_never_sees_another_merchants_rows(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    await _seed(db, people)
    await sign_in(user, ALICE)
    # Another merchant asked for by the URL, and the other merchant's admin as the actor.
    await user.open(f"/audit?merchant={people['b']}&actor=bob")
    await user.should_see(marker="audit-actor-filter", retries=WAIT)
    await user.should_see("No change matches.")
    await user.should_not_see(marker="audit-merchant-filter")  # no choice of merchant at all
    set_value(user, "audit-actor-filter", "")
    user.find(marker="audit-actor-filter").trigger("keydown.enter")
    await _listed(user, ["alice (panel)"])
    await user.should_not_see("Plans of b")
    await user.should_not_see("bob")


async def test_a_platform_admin_sees_and_filters_every_row(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    await _seed(db, people)
    await sign_in(user, PLATFORM, to="/audit")
    await user.should_see(marker="audit-row", retries=WAIT)
    # Newest first; who acted and from where in words, not the trail's "cli:ops".
    assert _in_order(user, "audit-actor") == [
        "ops (command line)",
        "bob (panel)",
        "bob (panel)",
        "alice (panel)",
    ]
    # Each change on its merchant's clock; the platform's own change (no merchant) in UTC.
    (platform_change, *merchants_changes) = _in_order(user, "audit-when")
    assert platform_change.endswith(" UTC"), platform_change
    assert all(w.endswith(("CET", "CEST")) for w in merchants_changes), merchants_changes
    await user.should_see("Times are on each merchant's clock")
    # Field names and values in words: no "password_hash", no "[secret set]" in a code.
    # (the stored form stays in each line's tooltip, for an engineer).
    assert "password: [secret set]" in texts(user, "audit-change")
    shown = texts(user, "audit-change") + texts(user, "audit-summary")
    assert [t for t in shown if "password_hash" in t or "admin_user" in t] == [], shown
    await user.should_see("email: k***@example.com → k***@example.com")
    badges = [e.text for e in user.find(marker="audit-action").elements if isinstance(e, ui.badge)]
    assert sorted(badges) == ["Changed", "Changed", "Changed", "Created"]

    set_value(user, "audit-action-filter", "create")
    await _listed(user, ["ops (command line)"])
    set_value(user, "audit-action-filter", "")
    set_value(user, "audit-merchant-filter", people["b"])
    await _listed(user, ["bob (panel)", "bob (panel)"])
    assert set(texts(user, "audit-merchant")) == {people["b_code"]}

    # A row's own history, from its link: said on the page, and undone with one click.
    await user.open(f"/audit?entity=store&entity_id={people['a_stores'][0]}")
    await user.should_see(marker="audit-only", retries=WAIT)
    assert texts(user, "audit-only") == [f"Only the changes of store {people['a_stores'][0]}"]
    await _listed(user, ["alice (panel)"])  # the list comes a moment after the filters
    user.find(marker="audit-only-clear").click()
    await user.should_not_see(marker="audit-only", retries=WAIT)
    await _listed(user, ["bob (panel)", "alice (panel)"])  # the stores' changes, of both


# -- in a real browser ------------------------------------------------------------------------


async def test_the_audit_log_in_a_browser_at_two_widths(
    server: str, browser: WebDriver, people: dict[str, Any], db: AsyncSession, screenshots: Path
) -> None:
    await _seed(db, people)
    with acting_as("alice"):
        for n in range(3):
            await record_change(
                db,
                action="update",
                entity="program",
                entity_id=people["a_program"],
                merchant_id=people["a"],
                before={"points_per_euro": 10 + n, "tiers": []},
                after={
                    "points_per_euro": 11 + n,
                    "tiers": [{"id": "gold", "name": "Gold", "threshold_points": 1000}],
                },
            )
    await db.commit()
    for who, credentials in (("platform", PLATFORM), ("merchant", ALICE)):
        browser.delete_all_cookies()
        browser_sign_in(browser, server, credentials)
        browser.get(f"{server}/audit")
        element(browser, "audit-row")
        no_traceback(browser)
        for width in (1440, 390):
            browser.set_window_size(width, 900)
            await asyncio.sleep(1.0)  # the layout follows the new width
            overflow = browser.execute_script(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"the audit log at {width} px scrolls sideways by {overflow} px"
            height = browser.execute_script("return document.documentElement.scrollHeight")
            browser.set_window_size(width, min(max(int(height) + 150, 900), 4000))
            await asyncio.sleep(0.3)
            wait(browser).until(ec.presence_of_element_located((By.CSS_SELECTOR, "body")))
            browser.save_screenshot(str(screenshots / f"audit-log-{who}-{width}.png"))
        browser.set_window_size(1400, 1000)
