"""One card's page: balances (pending points and the next expiry too, the tier and what the
next one takes), open point lots, tier history, ledger, wallet sync state, and the admin's
actions on it (adjustment by hand; deactivate, reactivate and delete in the danger zone below
the ledger), applied by ``domain.engine.admin_actions`` with an idempotency key made when the
form is shown. The list of cards is ``card_list``'s."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from nicegui import ui
from starlette.responses import Response

from admin_ui import domain_api
from admin_ui.formatting import local_when, number
from admin_ui.frame import frame, not_found
from admin_ui.guard import admin_page
from admin_ui.pages.card_list import card_listing, signed
from admin_ui.pages.common import (
    actor_words,
    counted,
    danger_zone,
    delete_with_counts,
    deleted_banner,
    guarded,
    parse_id,
    restore_with_counts,
    section,
)
from admin_ui.pages.enrol_dialog import enrol_dialog
from admin_ui.problems import DomainRefusal
from admin_ui.queries.admins import Principal
from admin_ui.queries.cards import (
    CardDetail,
    LedgerLine,
    LotLine,
    TierChangeLine,
    card_ledger,
    get_card,
    open_lots,
    tier_history,
    wallet_sync,
)
from admin_ui.queries.common import PageRequest, Rows
from admin_ui.runtime import Runtime, transaction
from admin_ui.widgets import Column, ErrorBox, Listing, as_int, confirm, tag
from core.enums import ProgramType
from wallet.i18n import day_text, expiry_text


def register(rt: Runtime) -> None:
    """The card pages."""

    @admin_page(rt, "/cards")
    async def cards_page(me: Principal) -> Response | None:
        with frame(me, "Cards", active="cards"):

            async def enrolled(card_id: int) -> None:
                ui.navigate.to(f"/cards/{card_id}")

            with ui.row().classes("w-full"):
                tag(
                    ui.button(
                        "Issue a card",
                        icon="add_card",
                        on_click=lambda: enrol_dialog(rt, me, enrolled),
                    ),
                    "new-card",
                )
            await card_listing(rt, me)
        return None

    @admin_page(rt, "/cards/{card_id}")
    async def card_page(me: Principal, card_id: str) -> Response | None:
        wanted = parse_id(card_id)
        async with rt.session() as session:
            card = await get_card(session, me, wanted) if wanted else None
        if card is None:
            not_found(me)
            return None
        with frame(me, f"Card {card.card_number}", active="cards"):
            await _card_detail(rt, me, card)
        return None


def _figure(label: str, value: str, marker: str) -> None:
    with ui.card().classes("min-w-36 items-start gap-0 p-3"):
        ui.label(label).classes("text-xs uppercase text-slate-500")
        tag(ui.label(value).classes("text-2xl font-semibold text-slate-800"), marker)


async def _card_detail(rt: Runtime, me: Principal, card: CardDetail) -> None:
    zone = card.zone
    deleted_banner(
        "card", card.deleted_at, card.deleted_by, zone=zone, hidden_with=card.hidden_with
    )
    with ui.row().classes("gap-x-4 gap-y-1 text-slate-600"):
        ui.link(f"Customer: {card.customer}", f"/customers/{card.customer_id}")
        ui.link(f"Merchant: {card.merchant_name}", f"/merchants/{card.merchant_id}")
        where = f"{card.store_name} ({card.store_code})" if card.store_code else "—"
        ui.label(f"Issued at {where} on {local_when(card.created_at, zone)}")
    with ui.row().classes("gap-4"):
        stamps = card.program_type in (ProgramType.STAMPS, ProgramType.HYBRID)
        points = card.program_type in (ProgramType.POINTS, ProgramType.HYBRID)
        if stamps:
            _figure(
                "Stamps",
                f"{number(card.stamp_count)} / {number(card.stamps_target)}",
                "card-stamps",
            )
        if points:
            _figure("Points", number(card.points_balance), "card-points")
            _figure("Pending", number(card.points_pending), "card-pending")
        if card.tier is not None:
            _figure("Tier", card.tier.name, "card-tier")
            _figure("Qualifying points", number(card.qualifying_points), "card-qualifying")
            if card.tier.next_name is not None:
                to_next = f"{number(card.tier.points_to_next)} points to {card.tier.next_name}"
            else:
                to_next = "top tier"
            _figure("Next tier", to_next, "card-tier-next")
        _figure("Status", card.status, "card-status")
        _figure("Rewards redeemed", number(card.rewards_redeemed), "card-rewards")
    ui.label(
        f"Lifetime: {counted(card.lifetime_stamps, 'stamp', 'stamps')}, "
        f"{counted(card.lifetime_points_earned, 'point', 'points')} earned, "
        f"{counted(card.points_redeemed, 'point', 'points')} redeemed · "
        f"last activity {local_when(card.last_activity_at, zone)}"
    ).classes("text-sm text-slate-600")
    if points:
        await _lots(rt, card)
    if card.tier is not None:
        await _tier_history(rt, card)

    if card.deleted_at is not None and card.hidden_with is None:

        async def bring_back() -> None:
            if await restore_with_counts(rt, me, "card", card.id, f"Card {card.card_number}"):
                ui.navigate.reload()

        tag(ui.button("Restore card", on_click=bring_back), "card-restore")
    elif card.deleted_at is None:
        _adjust(rt, me, card)

    with section("Ledger"):
        tag(ui.label(f"Times on the merchant's clock ({zone.key})."), "ledger-zone").classes(
            "text-sm text-slate-600"
        )

        async def fetch(request: PageRequest) -> Rows[LedgerLine]:
            async with rt.session() as session:
                return await card_ledger(session, card.id, request)

        ledger: Listing[LedgerLine] = Listing(
            "ledger",
            [
                Column("When", lambda r: local_when(r.occurred_at, zone)),
                Column("Entry", lambda r: r.entry_type.replace("_", " ")),
                Column(
                    "Stamps",
                    lambda r: signed(r.stamps_delta) if r.stamps_delta else "",
                    numeric=True,
                ),
                Column("Points", _points_moved, numeric=True),
                Column(
                    "Balance after",
                    lambda r: (
                        f"{counted(r.stamp_count_after, 'stamp', 'stamps')} · "
                        f"{counted(r.points_balance_after, 'point', 'points')}"
                    ),
                ),
                Column("Store", lambda r: r.store_code or "—"),
                Column("By", lambda r: actor_words(r.actor) if r.actor else "—"),
                Column("Detail", lambda r: r.detail),
            ],
            fetch,
            searchable=False,
            deleted_switches=False,
            page_size=25,
            empty_text="No ledger entry.",
        )
        await ledger.load()

    if card.deleted_at is None:
        _link_section(rt, card)

    with section("Wallets"):
        async with rt.session() as session:
            wallets = await wallet_sync(session, card.id)
        if not wallets:
            tag(
                ui.label("No wallet has this card yet."),
                "wallet-none",
            ).classes("text-slate-500 italic")
        for w in wallets:
            behind = card.version - w.synced_version
            if behind <= 0:
                state = "up to date"
            else:
                state = f"{number(behind)} change{'' if behind == 1 else 's'} not sent yet"
            with tag(ui.row().classes("items-center gap-x-4 gap-y-1"), "wallet-row"):
                ui.label(_WALLETS.get(w.wallet, w.wallet.capitalize())).classes("font-medium w-32")
                ui.label(state)
                ui.label(f"last sent {local_when(w.synced_at, zone)}").classes("text-slate-500")
                if w.last_error:
                    ui.label(
                        f"last error {local_when(w.last_error_at, zone)}: {w.last_error} "
                        f"({number(w.attempts)} attempt{'' if w.attempts == 1 else 's'})"
                    ).classes("text-red-700")

    if card.deleted_at is None:
        _danger(rt, me, card)


_WALLETS = {"apple": "Apple Wallet", "google": "Google Wallet"}


def _points_moved(line: LedgerLine) -> str:
    """A ledger entry's points: the spendable change, then the pending one (``+120 pending``,
    CONTRACT.md 7.2), blank when it moves no points."""
    parts = []
    if line.points_delta:
        parts.append(signed(line.points_delta))
    if line.pending_delta:
        parts.append(f"{signed(line.pending_delta)} pending")
    return " · ".join(parts)


async def _lots(rt: Runtime, card: CardDetail) -> None:
    """The next expiry, and the lots with points left (what the next debits spend, first
    things first), CONTRACT.md 7.2 and 7.3."""
    if card.next_expiry_on is not None:
        words = expiry_text(card.next_expiry_points, card.next_expiry_on, "en")
        next_expiry = f"Next expiry: {words} (merchant's time)."
    else:
        next_expiry = "No points due to expire."
    tag(ui.label(next_expiry), "card-next-expiry").classes("text-sm text-slate-600")
    idle = f"if idle, {day_text(card.idle_expiry_on, 'en')}" if card.idle_expiry_on else "never"
    zone = card.zone

    def release(lot: LotLine) -> str:
        if lot.pending:
            return f"pending until {local_when(lot.releases_at, zone)}"
        return "spendable"

    with section("Open point lots"):
        tag(
            ui.label(f"Times on the merchant's clock ({zone.key})."),
            "lots-zone",
        ).classes("text-sm text-slate-600")

        async def fetch(request: PageRequest) -> Rows[LotLine]:
            async with rt.session() as session:
                return await open_lots(session, card.id, request)

        lots: Listing[LotLine] = Listing(
            "lots",
            [
                Column("Lot", lambda r: f"#{r.lot_no}"),
                Column("Earned", lambda r: local_when(r.earned_at, zone)),
                Column("Points", lambda r: number(r.points), numeric=True),
                Column("Remaining", lambda r: number(r.remaining), numeric=True),
                Column("Release", release),
                Column(
                    "Expires",
                    lambda r: local_when(r.expires_at, zone) if r.expires_at else idle,
                ),
            ],
            fetch,
            searchable=False,
            deleted_switches=False,
            page_size=10,
            empty_text="No open lot: the card holds no points.",
        )
        await lots.load()


async def _tier_history(rt: Runtime, card: CardDetail) -> None:
    """The card's moves between tiers, newest first (CONTRACT.md 7.4): up at an event, down
    at a daily run."""
    with section("Tier history"):

        async def fetch(request: PageRequest) -> Rows[TierChangeLine]:
            async with rt.session() as session:
                return await tier_history(session, card.id, request)

        changes: Listing[TierChangeLine] = Listing(
            "tier-history",
            [
                Column("When", lambda r: local_when(r.occurred_at, card.zone)),
                Column("From", lambda r: card.tier_name(r.from_tier)),
                Column("To", lambda r: card.tier_name(r.to_tier)),
                Column("Qualifying points", lambda r: number(r.qualifying_points), numeric=True),
            ],
            fetch,
            searchable=False,
            deleted_switches=False,
            page_size=10,
            empty_text="No tier change yet.",
        )
        await changes.load()


def _link_section(rt: Runtime, card: CardDetail) -> None:
    """The customer's page link, and a new one when the old one leaked."""
    with section("Customer's card page"):
        ui.label(
            "The customer opens the card through a secret link (sent by email at "
            "self-enrolment). A new link stops the old one at once; the QR code and the "
            "wallet passes keep working."
        ).classes("text-sm text-slate-600")
        page = domain_api.card_page(card.link_token)
        link = tag(ui.link("Open the customer's page", page, new_tab=True), "card-page-link")

        async def rotate() -> None:
            if not await confirm("Make a new link? The old link stops working.", ok="New link"):
                return
            token: list[str] = []

            async def work() -> None:
                async with transaction(rt) as session:
                    token.append(await domain_api.rotate_card_link(session, card.id))

            if await guarded(work, success="The card has a new link; the old one is closed."):
                link.props(f"href={domain_api.card_page(token[0])}")

        tag(
            ui.button("New link", icon="autorenew", on_click=rotate).props("outline"),
            "card-link-rotate",
        )


def _adjust(rt: Runtime, me: Principal, card: CardDetail) -> None:
    with section("Adjust by hand"):
        ui.label(
            "Adds (or, negative, removes) stamps and points, with a reason kept in the ledger."
        ).classes("text-sm text-slate-600")
        # The idempotency key of this form, armed when it is shown: two clicks on "Apply" act
        # once; a new key is armed only after an answer.
        armed = {"adjust": uuid.uuid4()}
        with ui.row().classes("items-start gap-4 w-full"):
            stamps = tag(
                ui.number("Stamps ±", value=0, format="%d").classes("w-28"), "adjust-stamps"
            )
            points = tag(
                ui.number("Points ±", value=0, format="%d").classes("w-28"), "adjust-points"
            )
            reason = tag(ui.input("Reason (required)").classes("grow"), "adjust-reason")
        errors = ErrorBox("adjust-errors")

        async def adjust() -> None:
            errors.clear()
            s, p = as_int(stamps.value or 0), as_int(points.value or 0)
            if not isinstance(s, int) or not isinstance(p, int):
                errors.show("Stamps and points are whole numbers.")
                return
            if not (reason.value or "").strip():
                errors.show("A reason is required for a manual adjustment.")
                return
            button.disable()
            try:
                async with transaction(rt) as session:
                    outcome = await domain_api.adjust_card(
                        session,
                        action_id=armed["adjust"],
                        card_id=card.id,
                        stamps=s,
                        points=p,
                        reason=reason.value,
                        actor=me.actor,
                        now=datetime.now(UTC),
                    )
            except DomainRefusal as exc:
                errors.show(str(exc)[:1].upper() + str(exc)[1:] + ".")
                return
            finally:
                button.enable()
            armed["adjust"] = uuid.uuid4()
            if outcome.status == "duplicate":
                ui.notify("This adjustment was already applied.", type="info")
            else:
                ui.notify(
                    f"Adjusted: {number(outcome.stamp_count)} stamps, "
                    f"{number(outcome.points_balance)} points.",
                    type="positive",
                )
            ui.navigate.reload()

        button = tag(ui.button("Apply adjustment", on_click=adjust), "adjust-submit")


def _danger(rt: Runtime, me: Principal, card: CardDetail) -> None:
    """Deactivate (or reactivate) and delete, set apart below the ledger."""
    armed = {"status": uuid.uuid4()}
    with danger_zone():
        target = not card.is_active
        label = "Reactivate card" if target else "Deactivate card"
        ui.label(
            "A deactivated card is refused for purchases and redemptions until it is "
            "reactivated; a deleted card is hidden everywhere and can be restored."
        ).classes("text-sm text-slate-600")
        note = tag(ui.input("Reason (optional)").classes("w-full max-w-md"), "status-reason")

        async def flip() -> None:
            if not target and not await confirm(
                "Deactivate this card?",
                "Purchases and redemptions with it are refused until it is reactivated.",
                ok="Deactivate",
            ):
                return

            async def work() -> None:
                async with transaction(rt) as session:
                    await domain_api.set_card_active(
                        session,
                        action_id=armed["status"],
                        card_id=card.id,
                        active=target,
                        actor=me.actor,
                        now=datetime.now(UTC),
                        reason=note.value,
                    )

            if await guarded(work, success="Card reactivated." if target else "Card deactivated."):
                armed["status"] = uuid.uuid4()
                ui.navigate.reload()

        async def remove() -> None:
            if await delete_with_counts(
                rt,
                me,
                "card",
                card.id,
                question=f"Delete card {card.card_number}?",
                warning="It can be restored.",
                subject=f"Card {card.card_number}",
            ):
                ui.navigate.reload()

        with ui.row().classes("gap-2"):
            tag(
                ui.button(label, on_click=flip).props(
                    "outline" if target else "color=negative outline"
                ),
                "card-reactivate" if target else "card-deactivate",
            )
            tag(
                ui.button("Delete card", on_click=remove).props("color=negative outline"),
                "card-delete",
            )
