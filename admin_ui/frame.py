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
        ("dashboard", "Dashboard", "/"),
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


def _role(me: Principal) -> str:
    return "platform admin" if me.is_platform else "merchant admin"


@contextmanager
def frame(me: Principal, title: str, *, active: str = "") -> Iterator[ui.column]:
    """Header and navigation around a page's content; yields the content column.

    From 1,280 px wide (Tailwind's ``xl``) the links are in the header, as a row; narrower,
    a menu button opens a drawer from the left with the links, who is signed in and Sign out
    (a platform admin's twelve links need about 1,250 px: at 1,024 they would not fit).
    Both carry the same test names (``nav-<key>``, ``whoami``, ``sign-out``): the header's
    come first in the page, the drawer's are inside ``nav-drawer``.
    """
    ui.page_title(f"{title} · {APP_NAME}")
    ui.query("body").classes("bg-slate-50")
    links = _nav(me)
    with ui.header().classes(
        "bg-slate-800 text-white items-center gap-2 xl:gap-4 px-2 sm:px-4 xl:px-6 py-2 no-wrap"
    ):
        menu = ui.button(icon="menu").props('flat round dense color=white aria-label="Menu"')
        tag(menu.classes("xl:hidden"), "nav-menu")
        ui.link(APP_NAME, "/").classes(
            "text-lg font-semibold text-white no-underline whitespace-nowrap"
        )
        # One line always: should the links not fit (longer words one day), they scroll in
        # their own box rather than wrap the header.
        bar = ui.row().classes("gap-0 items-center no-wrap min-w-0 overflow-x-auto max-xl:hidden")
        with tag(bar, "nav-bar"):
            for key, label, href in links:
                link = ui.link(label, href).classes(
                    "px-2 py-1 rounded text-sm text-white no-underline hover:bg-slate-600"
                    " whitespace-nowrap"
                )
                if key == active:
                    link.classes("bg-slate-600")
                tag(link, f"nav-{key}")
        ui.space()
        with tag(ui.column().classes("gap-0 items-end max-xl:hidden"), "whoami"):
            ui.label(me.username).classes("text-sm leading-tight whitespace-nowrap")
            ui.label(_role(me)).classes("text-xs text-slate-400 leading-tight whitespace-nowrap")
        tag(
            ui.button("Sign out", on_click=auth.sign_out)
            .props("flat dense color=white no-caps")
            .classes("max-xl:hidden whitespace-nowrap"),
            "sign-out",
        )
    drawer = _drawer(me, links, active)
    menu.on_click(drawer.toggle)
    with ui.column().classes("w-full max-w-6xl mx-auto p-3 sm:p-6 gap-4") as content:
        tag(ui.label(title).classes("text-2xl font-semibold text-slate-800"), "page-title")
        yield content


def _drawer(me: Principal, links: list[tuple[str, str, str]], active: str) -> ui.left_drawer:
    """The navigation of narrow screens: closed until the menu button opens it, over the
    page (never beside it, whatever the width)."""
    drawer = ui.left_drawer(value=False).props("behavior=mobile width=272")
    with tag(drawer.classes("bg-slate-800 text-white p-0"), "nav-drawer"):
        ui.label(APP_NAME).classes("px-5 pt-4 pb-2 text-lg font-semibold")
        with ui.column().classes("w-full gap-0 pb-2"):
            for key, label, href in links:
                link = ui.link(label, href).classes(
                    "w-full px-5 py-3 text-white no-underline hover:bg-slate-600"
                )
                if key == active:
                    link.classes("bg-slate-600 font-medium")
                tag(link, f"nav-{key}")
        ui.separator().classes("bg-slate-600")
        with ui.column().classes("w-full gap-2 px-5 py-4"):
            tag(
                ui.label(f"{me.username} · {_role(me)}").classes("text-sm text-slate-300"), "whoami"
            )
            tag(
                ui.button("Sign out", icon="logout", on_click=auth.sign_out).props(
                    "outline color=white no-caps"
                ),
                "sign-out",
            )
    return drawer


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
