"""The audit log (issue 17): every change made in the panel or on the command line, newest first,
with who made it, when, from where, and the values before and after (personal data masked,
secrets never shown).

Filters: actor, action, kind of row, days, and a text search over the summary, the row's id and
the values; a row's own history is ``/audit?entity=store&entity_id=4``. A merchant admin sees
their merchant's changes only, in the merchant's time zone; a platform admin sees every change,
may pick a merchant, and reads each change's time on its merchant's clock (UTC for a change of
no merchant's). Each entry is a card whose diff lists one field a line (``name: Old → New``),
which reads the same on a laptop and on a phone; what the trail stores in codes (actors such
as ``cli:ops``, field names, JSON values) is said in words, the stored form in a tooltip. The
filters show at once, the entries a moment later. Read only: the trail offers no edit.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date

from nicegui import ui
from starlette.responses import Response

from admin_ui import texts
from admin_ui.formatting import local_when
from admin_ui.frame import frame
from admin_ui.guard import admin_page
from admin_ui.pages.common import parse_id
from admin_ui.queries import audit_log as audit_data
from admin_ui.queries.admins import Principal
from admin_ui.queries.common import PageRequest, Rows
from admin_ui.queries.merchants import merchant_choices
from admin_ui.runtime import Runtime
from admin_ui.widgets import Listing, tag
from core.logs import get_logger

log = get_logger(__name__)
_SHOWN = 160  # characters of a value in words; the tooltip has it all
_ACTION_COLORS = {
    "create": "positive",
    "delete": "negative",
    "erase": "negative",
    "restore": "primary",
    "adjust": "warning",
}


def register(rt: Runtime) -> None:
    """The audit log page."""

    @admin_page(rt, "/audit")
    async def audit_page(
        me: Principal,
        actor: str = "",
        action: str = "",
        entity: str = "",
        entity_id: str = "",
        merchant: str = "",
        since: str = "",
        until: str = "",
        q: str = "",
    ) -> Response | None:
        async with rt.session() as session:
            zone = await audit_data.viewer_zone(session, me)
            merchants = await merchant_choices(session, me) if me.is_platform else {}
        # What the URL asks for is only where the filters start: the query keeps a merchant
        # admin to their merchant whatever they say.
        start = audit_data.AuditFilters(
            actor=actor,
            action=action if action in audit_data.ACTIONS else "",
            entity=entity,
            entity_id=entity_id,
            merchant_id=parse_id(merchant) if me.is_platform else None,
            start=_day(since),
            end=_day(until),
        )
        with frame(me, "Audit log", active="audit"):
            await _log(rt, me, zone, merchants, start, q)
        return None


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text.strip()) if text.strip() else None
    except ValueError:
        return None


def _clock(me: Principal, zone: str) -> str:
    if me.is_platform:
        return (
            "Times are on each merchant's clock (UTC for changes of no merchant); the From and "
            "To days are UTC days."
        )
    return f"Times and days are in {zone}."


async def _log(
    rt: Runtime,
    me: Principal,
    zone: str,
    merchants: dict[int, str],
    start: audit_data.AuditFilters,
    search: str,
) -> None:
    scope = "every merchant" if me.is_platform else "your merchant"
    ui.label(
        f"Every change made in the admin panel or on the command line for {scope}: who, when, "
        "and the values before and after. Personal data is masked and secrets are never "
        f"shown. {_clock(me, zone)}"
    ).classes("text-sm text-slate-600")
    entity_id = start.entity_id
    with ui.row().classes("w-full items-end gap-x-3 gap-y-2"):
        actor = tag(
            ui.input("Who", value=start.actor).props("dense outlined clearable"),
            "audit-actor-filter",
        ).classes("w-full sm:w-40")
        action = tag(
            ui.select(
                {"": "Any action", **{a: texts.audit_action(a) for a in audit_data.ACTIONS}},
                label="Action",
                value=start.action,
            ).props("dense outlined"),
            "audit-action-filter",
        ).classes("w-[calc(50%-0.375rem)] sm:w-36")
        kinds = dict.fromkeys(audit_data.ENTITIES) | ({start.entity: None} if start.entity else {})
        entity = tag(
            ui.select(
                {"": "Any kind", **{k: texts.entity(k).capitalize() for k in kinds}},
                label="Kind",
                value=start.entity,
            ).props("dense outlined"),
            "audit-entity-filter",
        ).classes("w-[calc(50%-0.375rem)] sm:w-40")
        since = tag(
            ui.input("From", value=start.start.isoformat() if start.start else "").props(
                "dense outlined type=date stack-label"
            ),
            "audit-since",
        ).classes("w-[calc(50%-0.375rem)] sm:w-36")
        until = tag(
            ui.input("To", value=start.end.isoformat() if start.end else "").props(
                "dense outlined type=date stack-label"
            ),
            "audit-until",
        ).classes("w-[calc(50%-0.375rem)] sm:w-36")
        merchant = None
        if me.is_platform:
            merchant = tag(
                ui.select(
                    {0: "Every merchant", **merchants},
                    label="Merchant",
                    value=start.merchant_id if start.merchant_id in merchants else 0,
                ).props("dense outlined"),
                "audit-merchant-filter",
            ).classes("w-full sm:w-52")
    only = ui.row().classes("items-center gap-2")

    def filters() -> audit_data.AuditFilters:
        return audit_data.AuditFilters(
            actor=actor.value or "",
            action=action.value or "",
            entity=entity.value or "",
            entity_id=entity_id,
            merchant_id=(merchant.value or None) if merchant is not None else None,
            start=_day(since.value or ""),
            end=_day(until.value or ""),
        )

    async def fetch(request: PageRequest) -> Rows[audit_data.AuditEntry]:
        async with rt.session() as session:
            return await audit_data.entries(session, me, filters(), request, zone)

    def rows(items: Sequence[audit_data.AuditEntry]) -> None:
        for item in items:
            _entry(me, zone, item)

    listing: Listing[audit_data.AuditEntry] = Listing(
        "audit",
        [],
        fetch,
        deleted_switches=False,
        placeholder="Search summary, id or values",
        empty_text="No change matches.",
        rows=rows,
        page_size=25,
    )
    listing.search.value = search

    async def reload() -> None:
        listing.page = 1
        await listing.load()

    def draw_only() -> None:
        # A row's own history, asked for by the URL: said, and undone with one click.
        only.clear()
        if not entity_id:
            return
        with only:
            what = f"{texts.entity(entity.value)} {entity_id}" if entity.value else entity_id
            tag(ui.label(f"Only the changes of {what}").classes("text-sm"), "audit-only")
            tag(ui.button("Show all", on_click=show_all).props("flat dense"), "audit-only-clear")

    async def show_all() -> None:
        nonlocal entity_id
        entity_id = ""
        draw_only()
        await reload()

    draw_only()
    for element in (action, entity, since, until, *([merchant] if merchant else [])):
        element.on_value_change(reload)
    actor.on("keydown.enter", reload)
    actor.on("blur", reload)
    actor.on("clear", reload)
    # The filters stand at once; the entries come a moment later, after the page was sent.
    with listing.body, tag(ui.row().classes("items-center gap-2 text-slate-500"), "audit-loading"):
        ui.spinner(size="md")
        ui.label("Loading the changes…")

    async def first_load() -> None:
        try:
            await listing.load()
        except Exception:  # any failure is shown as a sentence, and logged
            log.exception("admin_ui.audit_load_failed")
            listing.body.clear()
            with listing.body:
                failed = ui.label(
                    "The changes could not be loaded just now. Reload the page to try again."
                ).classes("text-rose-700 bg-rose-50 border border-rose-200 rounded px-3 py-2")
                tag(failed, "audit-failed")

    ui.timer(0.05, first_load, once=True)


def _entry(me: Principal, zone: str, item: audit_data.AuditEntry) -> None:
    """One change as a card: when, who and what on top, the summary, then the diff."""
    at = local_when(item.at, item.merchant_timezone or (None if me.is_platform else zone))
    with tag(
        ui.element("div").classes(
            "w-full flex flex-col gap-1 p-3 bg-white rounded border border-slate-200 min-w-0"
        ),
        "audit-row",
    ):
        with ui.row().classes("w-full items-center gap-x-2 gap-y-1"):
            when = tag(ui.label(at).classes("text-sm font-medium"), "audit-when")
            when.tooltip(texts.when(item.at))
            who = tag(ui.label(texts.actor(item.actor, item.source)), "audit-actor")
            who.classes("text-sm break-all").tooltip(f"{item.actor} · {item.source}")
            tag(
                ui.badge(
                    texts.audit_action(item.action),
                    color=_ACTION_COLORS.get(item.action, "grey-8"),
                ),
                "audit-action",
            )
            if me.is_platform and item.merchant_code:
                tag(
                    ui.label(item.merchant_code).classes("text-xs text-slate-500"), "audit-merchant"
                )
        summary = tag(ui.label(_summary(item)).classes("text-sm break-words"), "audit-summary")
        summary.tooltip(item.summary)
        if item.changes:
            with tag(
                ui.column().classes("w-full gap-0 pl-2 border-l-2 border-slate-200"), "audit-diff"
            ):
                for change in item.changes:
                    line = ui.label(_change(change)).classes("text-xs text-slate-700 break-words")
                    tag(line, "audit-change").tooltip(_stored(change))


def _summary(item: audit_data.AuditEntry) -> str:
    """The trail's one line with its codes in words: ``updated store 4 (s-1): points per
    euro``; the kind of row, then the fields it names."""
    text = item.summary.replace(item.entity.replace("_", " "), texts.entity(item.entity), 1)
    head, colon, fields = text.partition(": ")
    if not colon:
        return text
    names = {c.field: texts.field_name(c.field) for c in item.changes}
    # The fields as the trail listed them, each put into words (a label may hold ": " too).
    shown = re.sub(r"[A-Za-z][A-Za-z0-9_]*", lambda m: names.get(m.group(0), m.group(0)), fields)
    return f"{head}{colon}{shown}"


def _words(stored: object) -> str:
    text = texts.value(stored)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


def _change(change: audit_data.Change) -> str:
    """``field: old → new`` in words; a creation's field without the arrow, a removal's with
    ``—``."""
    name = texts.field_name(change.field)
    if change.old is None:
        return f"{name}: {_words(change.after)}"
    if change.new is None:
        return f"{name}: {_words(change.before)} → —"
    return f"{name}: {_words(change.before)} → {_words(change.after)}"


def _stored(change: audit_data.Change) -> str:
    """The change as the trail stores it, for an engineer: ``points_per_euro: 10 → 11``."""
    return f"{change.field}: {change.old or '—'} → {change.new or '—'}"
