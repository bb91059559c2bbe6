"""Webhooks (issue 16): a merchant's HTTPS endpoints, each sent the output types it chose.

``/webhooks`` leads a merchant admin to their merchant's endpoints and a platform admin to a
choice of merchant; ``/merchants/{id}/webhooks`` lists the endpoints with how their
deliveries fare; ``/merchants/{id}/webhooks/new`` adds one; ``/webhooks/{id}`` is an
endpoint's page: its deliveries (``webhook_deliveries``), its settings, its signing secret
and its deletion. The secret is shown in full only right after it is made (creation,
"Rotate secret"), with a copy button; everywhere else it is masked (``whsec_…abcd``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from fastapi.responses import RedirectResponse
from nicegui import ui
from starlette.responses import Response

from admin_ui import texts
from admin_ui.formatting import local_when, number
from admin_ui.frame import frame, not_found
from admin_ui.guard import admin_page
from admin_ui.pages.common import danger_zone, guarded, parse_id, section, submit_form
from admin_ui.pages.webhook_deliveries import deliveries_section
from admin_ui.problems import FieldLabels, FieldProblem
from admin_ui.queries import webhooks
from admin_ui.queries.admins import Principal
from admin_ui.queries.common import PageRequest, Rows
from admin_ui.queries.merchants import MerchantRow, list_merchants
from admin_ui.queries.webhooks import EndpointRow, WebhookMerchant
from admin_ui.runtime import Runtime, transaction
from admin_ui.widgets import Column, ErrorBox, Listing, confirm, show_problems, tag

_HEAD = "text-xs uppercase tracking-wide text-slate-500"
# The form's fields as its labels name them, for the list of what to correct.
_LABELS = FieldLabels({"url": "URL", "event_types": "Send", "description": "Description"})


def register(rt: Runtime) -> None:
    """The webhook pages."""

    @admin_page(rt, "/webhooks")
    async def webhooks_page(me: Principal) -> Response | None:
        if not me.is_platform:
            return RedirectResponse(f"/merchants/{me.merchant_id}/webhooks")
        with frame(me, "Webhooks", active="webhooks"):
            await _merchant_choice(rt, me)
        return None

    @admin_page(rt, "/merchants/{merchant_id}/webhooks")
    async def endpoints_page(me: Principal, merchant_id: str) -> Response | None:
        merchant = await _merchant(rt, me, merchant_id)
        if merchant is None:
            not_found(me)
            return None
        async with rt.session() as session:
            rows = await webhooks.list_endpoints(session, me, merchant.id, now=_now())
        with frame(me, f"Webhooks of {merchant.name}", active="webhooks"):
            _endpoint_list(merchant, rows)
        return None

    @admin_page(rt, "/merchants/{merchant_id}/webhooks/new")
    async def new_endpoint_page(me: Principal, merchant_id: str) -> Response | None:
        merchant = await _merchant(rt, me, merchant_id)
        if merchant is None:
            not_found(me)
            return None
        with frame(me, "New webhook endpoint", active="webhooks"):
            _new_endpoint(rt, me, merchant)
        return None

    @admin_page(rt, "/webhooks/{endpoint_id}")
    async def endpoint_page(me: Principal, endpoint_id: str) -> Response | None:
        wanted = parse_id(endpoint_id)
        async with rt.session() as session:
            found = (
                await webhooks.find_endpoint(session, me, wanted, now=_now()) if wanted else None
            )
        if found is None:
            not_found(me)
            return None
        endpoint, merchant = found
        with frame(me, "Webhook endpoint", active="webhooks"):
            await _endpoint_detail(rt, me, endpoint, merchant)
        return None


def _now() -> datetime:
    return datetime.now(UTC)


async def _merchant(rt: Runtime, me: Principal, merchant_id: str) -> WebhookMerchant | None:
    wanted = parse_id(merchant_id)
    async with rt.session() as session:
        return await webhooks.webhook_merchant(session, me, wanted) if wanted else None


async def _merchant_choice(rt: Runtime, me: Principal) -> None:
    """The merchants a platform admin may open the endpoints of."""

    async def fetch(request: PageRequest) -> Rows[MerchantRow]:
        async with rt.session() as session:
            return await list_merchants(session, me, request)

    ui.label("Endpoints belong to a merchant: choose one.").classes("text-slate-600")
    listing: Listing[MerchantRow] = Listing(
        "webhook-merchants",
        [
            Column("Code", lambda r: r.code, lambda r: f"/merchants/{r.id}/webhooks"),
            Column("Name", lambda r: r.name),
        ],
        fetch,
        deleted_switches=False,
        placeholder="Search code or name",
    )
    await listing.load()


# --- the list -------------------------------------------------------------------------------


def _endpoint_list(merchant: WebhookMerchant, rows: Sequence[EndpointRow]) -> None:
    with ui.row().classes("gap-x-4 gap-y-1 items-center"):
        tag(ui.link(f"Merchant: {merchant.name}", f"/merchants/{merchant.id}"), "merchant-link")
    ui.label(
        "Each endpoint is sent the outputs you choose as signed HTTPS POST requests. A delivery "
        "that keeps failing is retried for 24 hours, then parked here until you re-send it."
    ).classes("text-slate-600")
    new = f"/merchants/{merchant.id}/webhooks/new"
    tag(ui.button("Add endpoint", icon="add", on_click=lambda: ui.navigate.to(new)), "new-webhook")
    with tag(ui.column().classes("w-full gap-2"), "webhooks-list"):
        if not rows:
            ui.label("No endpoint yet.").classes("text-slate-500 italic").mark("webhooks-empty")
        for row in rows:
            _endpoint_card(row, merchant.timezone)


def _endpoint_card(row: EndpointRow, zone: str) -> None:
    with tag(ui.card().classes("w-full gap-1"), "webhooks-row"):
        with ui.row().classes("w-full items-center gap-2 no-wrap"):
            link = ui.link(row.url, f"/webhooks/{row.id}").classes("font-mono break-all min-w-0")
            tag(link, f"webhook-open-{row.id}")
            ui.space()
            _active_badge(row.is_active)
        if row.description:
            ui.label(row.description).classes("text-sm text-slate-700 break-words")
        _type_chips(row.event_types)
        _figures(row, zone)


def _active_badge(active: bool) -> None:
    badge = ui.badge("Active" if active else "Off", color="positive" if active else "grey")
    tag(badge.props("outline"), "webhook-state")


def _type_chips(types: Sequence[str]) -> None:
    """What the endpoint is sent, in words; the type as a shop system receives it (its
    ``type`` field) in each chip's tooltip."""
    with ui.row().classes("gap-1"):
        for code in types:
            chip = ui.badge(texts.webhook_event_type(code), color="blue-grey").props("outline")
            tag(chip.classes("whitespace-normal text-left"), "webhook-type-chip").tooltip(code)


def _figures(row: EndpointRow, zone: str) -> None:
    """How the endpoint's deliveries fare: counts, the last delivery, the last error."""
    with ui.row().classes("gap-x-4 gap-y-0 text-sm text-slate-700"):
        tag(ui.label(f"{number(row.pending)} pending"), "webhook-pending")
        parked = tag(ui.label(f"{number(row.parked)} parked"), "webhook-parked")
        if row.parked:
            parked.classes("text-red-700 font-medium")
        delivered = f"{number(row.delivered_recently)} delivered in 24 h"
        tag(ui.label(delivered), "webhook-delivered")
    last = local_when(row.last_delivered_at, zone) if row.last_delivered_at else "never"
    ui.label(f"Last delivered: {last}").classes("text-sm text-slate-600")
    if row.last_error:
        status = f"HTTP {row.last_status}: " if row.last_status else ""
        error = ui.label(f"Last error: {status}{texts.printable(row.last_error, 200)}")
        tag(error.classes("text-sm text-red-700 break-all"), "webhook-last-error")


# --- the form -------------------------------------------------------------------------------


class _LineError:
    """A refusal's sentence under a group of inputs that has no error slot of its own (the
    type checkboxes); ``show_problems`` sets it as it sets an input's ``error``."""

    def __init__(self, marker: str) -> None:
        self.label = tag(ui.label("").classes("text-xs text-negative"), marker)
        self.label.visible = False

    @property
    def error(self) -> str | None:
        """The sentence shown, if any."""
        return self.label.text or None

    @error.setter
    def error(self, message: str | None) -> None:
        self.label.text = message or ""
        self.label.visible = bool(message)


class EndpointForm:
    """The inputs of an endpoint: URL, the output types, a description and the switch."""

    def __init__(self, values: EndpointRow | None) -> None:
        self.url = tag(
            ui.input(
                "URL",
                value=values.url if values else "",
                placeholder="https://shop.example.com/loyalty/webhook",
            ),
            "webhook-url",
        )
        ui.label("Send").classes(f"{_HEAD} pt-2")
        chosen = set(values.event_types) if values else set()
        with ui.column().classes("gap-0"):
            self.types = {
                code: tag(
                    ui.checkbox(texts.webhook_event_type(code), value=code in chosen),
                    f"webhook-type-{code}",
                )
                for code in webhooks.EVENT_TYPES
            }
            for code, box in self.types.items():
                box.tooltip(f"Sent with type {code}")
        self.types_error = _LineError("webhook-types-error")
        self.description = tag(
            ui.input("Description (optional)", value=(values.description or "") if values else ""),
            "webhook-description",
        )
        self.active = tag(
            ui.switch("Active: deliveries are sent", value=values.is_active if values else True),
            "webhook-active",
        )
        self.errors = ErrorBox("webhook-errors")
        for element in (self.url, self.description):
            element.classes("w-full").props("hide-bottom-space")

    def spec(self) -> webhooks.EndpointSpec:
        """What the form holds, as the service takes it."""
        description = (self.description.value or "").strip()
        return webhooks.EndpointSpec(
            url=(self.url.value or "").strip(),
            event_types=tuple(code for code, box in self.types.items() if box.value),
            description=description or None,
            is_active=bool(self.active.value),
        )

    def show(self, problems: Sequence[FieldProblem]) -> None:
        """Write each problem under its field, and list them all (none: clear them), each
        named as the form names it ("Send", not ``event_types``)."""
        fields = {
            "url": self.url,
            "event_types": self.types_error,
            "description": self.description,
        }
        show_problems(problems, fields, self.errors)
        if problems:
            lines = [_LABELS.sentence(p) for p in problems]
            self.errors.show("Please correct: " + "; ".join(lines))


def _secret_panel(secret: str, note: str) -> None:
    """The secret in full, this once, with a copy button."""
    with tag(ui.column().classes("w-full gap-2"), "webhook-secret-panel"):
        ui.label(note).classes("text-sm text-amber-900 bg-amber-50 rounded px-3 py-2 w-full")
        with ui.row().classes("w-full items-center gap-2 no-wrap"):
            shown = ui.label(secret).classes(
                "font-mono text-sm break-all bg-slate-100 rounded px-3 py-2 min-w-0 flex-1"
            )
            tag(shown, "webhook-secret")

            def copy() -> None:
                ui.clipboard.write(secret)
                ui.notify("Secret copied.", type="positive")

            copy_button = ui.button(icon="content_copy", on_click=copy).props("flat round")
            tag(copy_button.tooltip("Copy"), "webhook-secret-copy")


def _new_endpoint(rt: Runtime, me: Principal, merchant: WebhookMerchant) -> None:
    tag(ui.link(f"Webhooks of {merchant.name}", f"/merchants/{merchant.id}/webhooks"), "back-link")
    box = ui.column().classes("w-full")
    with box, section("Endpoint"):
        form = EndpointForm(None)

        async def create() -> None:
            spec = form.spec()
            made: list[tuple[int, str]] = []

            async def work() -> None:
                async with transaction(rt) as session:
                    made.append(
                        await webhooks.create_endpoint(
                            session,
                            me,
                            merchant.id,
                            spec,
                            allow_private=rt.settings.webhook_allow_private,
                        )
                    )

            if await submit_form(form.show, work, "Endpoint created.") and made:
                _created(box, *made[0])

        tag(ui.button("Create", on_click=create), "webhook-create")


def _created(box: ui.column, endpoint_id: int, secret: str) -> None:
    """The new endpoint's secret in place of the form, and the way on to its page."""
    box.clear()
    with box, section("Endpoint created"):
        _secret_panel(
            secret,
            "This is the endpoint's signing secret. Copy it now into your shop system: "
            "it is not shown again (you can rotate it for a new one).",
        )
        to = f"/webhooks/{endpoint_id}"
        tag(ui.button("Open the endpoint", on_click=lambda: ui.navigate.to(to)), "webhook-opened")


# --- one endpoint ---------------------------------------------------------------------------


async def _endpoint_detail(
    rt: Runtime, me: Principal, endpoint: EndpointRow, merchant: WebhookMerchant
) -> None:
    back = f"/merchants/{merchant.id}/webhooks"
    tag(ui.link(f"Webhooks of {merchant.name}", back), "back-link")
    with ui.row().classes("w-full items-center gap-2 no-wrap"):
        heading = ui.label(endpoint.url).classes("font-mono text-lg break-all min-w-0")
        tag(heading, "webhook-url-shown")
        _active_badge(endpoint.is_active)
    if endpoint.description:
        ui.label(endpoint.description).classes("text-slate-700 break-words")
    dialogs = ui.element("div")

    await deliveries_section(rt, me, endpoint, merchant.timezone, dialogs)

    with section("Settings"):
        form = EndpointForm(endpoint)

        async def save() -> None:
            spec = form.spec()

            async def work() -> None:
                async with transaction(rt) as session:
                    await webhooks.update_endpoint(
                        session,
                        me,
                        endpoint.id,
                        spec,
                        allow_private=rt.settings.webhook_allow_private,
                    )

            await submit_form(form.show, work, "Endpoint saved.")

        tag(ui.button("Save", on_click=save), "webhook-save")

    with section("Signing secret"):
        _secret(rt, me, endpoint, dialogs)

    with danger_zone():
        ui.label(
            "Nothing more is sent to a deleted endpoint; its pending deliveries stop."
        ).classes("text-sm text-slate-600")

        async def remove() -> None:
            with dialogs:
                asked = await confirm(f"Delete the endpoint {endpoint.url}?")
            if not asked:
                return

            async def work() -> None:
                async with transaction(rt) as session:
                    await webhooks.delete_endpoint(session, me, endpoint.id)

            if await guarded(work, success="Endpoint deleted."):
                ui.navigate.to(back)

        tag(
            ui.button("Delete endpoint", on_click=remove).props("color=negative outline"),
            "webhook-delete",
        )


def _secret(rt: Runtime, me: Principal, endpoint: EndpointRow, dialogs: ui.element) -> None:
    ui.label(
        "Every delivery is signed with it (HMAC-SHA256 over the timestamp and the body): "
        "your endpoint checks the signature with it."
    ).classes("text-sm text-slate-600")
    box = ui.column().classes("w-full gap-2")
    with box:
        tag(ui.label(endpoint.secret_hint).classes("font-mono"), "webhook-secret-hint")

    async def rotate() -> None:
        with dialogs:
            asked = await confirm(
                "Rotate the signing secret?",
                "The current secret stops at once: deliveries are signed with the new one "
                "from now on. Put the new one in your shop system right away.",
                ok="Rotate",
            )
        if not asked:
            return
        made: list[str] = []

        async def work() -> None:
            async with transaction(rt) as session:
                made.append(await webhooks.rotate_secret(session, me, endpoint.id))

        if await guarded(work, success="New secret made.") and made:
            box.clear()
            with box:
                _secret_panel(made[0], "The new signing secret, shown this once: copy it now.")

    tag(
        ui.button("Rotate secret", icon="autorenew", on_click=rotate).props("outline"),
        "webhook-rotate",
    )
