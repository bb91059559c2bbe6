"""The one frame every admin page shares: header, navigation, sign-out; and the not-found page."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from nicegui import ui

from admin_ui import auth
from admin_ui.queries.admins import Principal
from admin_ui.widgets import tag

APP_NAME = "Loyalty admin"


def _nav(me: Principal) -> list[tuple[str, str, str]]:
    items = [
        ("merchants", "Merchants" if me.is_platform else "My merchant", "/merchants"),
        ("stores", "Stores", "/stores"),
        ("programs", "Programs", "/programs"),
        ("campaigns", "Campaigns", "/campaigns"),
        ("customers", "Customers", "/customers"),
        ("cards", "Cards", "/cards"),
        ("stats", "Statistics", "/stats"),
        ("finance", "Finance", "/finance"),
        ("webhooks", "Webhooks", "/webhooks"),
        ("audit", "Audit log", "/audit"),
    ]
    if me.is_platform:
        items.append(("pipeline", "Pipeline", "/pipeline"))
    return items


@contextmanager
def frame(me: Principal, title: str, *, active: str = "") -> Iterator[ui.column]:
    """Header and navigation around a page's content; yields the content column."""
    ui.page_title(f"{title} · {APP_NAME}")
    ui.query("body").classes("bg-slate-50")
    with ui.header().classes("bg-slate-800 text-white items-center gap-6 px-6 py-2"):
        ui.link(APP_NAME, "/").classes("text-lg font-semibold text-white no-underline")
        with ui.row().classes("gap-1 items-center"):
            for key, label, href in _nav(me):
                link = ui.link(label, href).classes(
                    "px-3 py-1 rounded text-white no-underline hover:bg-slate-600"
                )
                if key == active:
                    link.classes("bg-slate-600")
                tag(link, f"nav-{key}")
        ui.space()
        role = "platform admin" if me.is_platform else "merchant admin"
        tag(ui.label(f"{me.username} · {role}").classes("text-sm text-slate-300"), "whoami")
        tag(ui.button("Sign out", on_click=auth.sign_out).props("flat color=white"), "sign-out")
    with ui.column().classes("w-full max-w-6xl mx-auto p-6 gap-4") as content:
        tag(ui.label(title).classes("text-2xl font-semibold text-slate-800"), "page-title")
        yield content


def not_found(me: Principal) -> None:
    """The page for anything that does not exist or that this admin may not see.

    Both answer alike, with HTTP 404, so a merchant admin cannot even learn that another
    merchant's store or card exists by typing URLs.
    """
    ui.context.client.status_code = 404
    with frame(me, "Not found"):
        ui.label("This page does not exist, or you are not allowed to see it.").mark("not-found")
        ui.link("Back to the start page", "/")


def public_not_found(message: str) -> None:
    """A 404 page of the public pages (terminal, enrolment), without the admin frame."""
    ui.context.client.status_code = 404
    ui.page_title("Not found")
    with ui.column().classes("absolute-center items-center"):
        ui.label("Not found").classes("text-2xl font-semibold")
        ui.label(message).mark("not-found")
