"""The staff terminal's till, once open: the PIN pad with its idle lock, the card found, and
the purchase, stamp and redemption buttons, each sent through the engine with an action key
armed when its form is shown (see ``admin_ui.pages.terminal``)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from nicegui import ui
from pydantic import ValidationError

from admin_ui import domain_api, texts
from admin_ui.pages.terminal_access import Access, still_allowed
from admin_ui.problems import DomainRefusal
from admin_ui.queries.terminal import CardSummary, StoreInfo, card_summary
from admin_ui.runtime import Runtime, transaction
from admin_ui.widgets import tag
from streams.commands import InputEvent
from streams.inputs import PurchaseCompleted, RewardRedeemRequested
from streams.topics import Topic

IDLE_LOCK = timedelta(minutes=5)


class Terminal:
    """One open terminal page: its lock, the card on screen and the armed action keys."""

    def __init__(self, rt: Runtime, info: StoreInfo, access: Access) -> None:
        self.rt = rt
        self.info = info
        self.access = access
        self.staff_id: int | None = None
        self.staff_name = ""
        self.card: CardSummary | None = None
        self.keys: dict[str, uuid.UUID] = {}
        self.busy = False
        self.last_used = datetime.now(UTC)

    # --- layout --------------------------------------------------------------------------

    def build(self) -> None:
        """Draw the page: the PIN pad, then (once unlocked) the till."""
        ui.page_title(f"Terminal {self.info.code}")
        ui.query("body").classes("bg-slate-100")
        with ui.header().classes("bg-emerald-800 text-white items-center px-6 py-2"):
            ui.label(f"{self.info.merchant_name} · {self.info.name} ({self.info.code})").classes(
                "text-lg font-semibold"
            )
            ui.space()
            ui.label(self.access.label).classes("text-xs opacity-75")
            self.who = tag(ui.label(""), "terminal-staff").classes("text-sm")
            self.lock_button = tag(
                ui.button("Lock", icon="lock", on_click=self.lock).props("flat color=white"),
                "terminal-lock",
            )
        with ui.column().classes("w-full max-w-3xl mx-auto p-6 gap-4"):
            self.refused = tag(
                ui.label(
                    "This terminal is no longer signed in (the device was revoked or the admin "
                    "signed out). Reload the page to sign in or pair it again."
                ),
                "terminal-refused",
            ).classes("text-red-700 text-lg")
            self.refused.visible = False
            self._pin_pad()
            self._till()
        if self.info.program_type is None:
            self.pad.visible = False
            tag(ui.label("This merchant has no loyalty program yet."), "terminal-no-program")
            return
        if not self.info.require_pin:
            self._unlock(None, "")
        else:
            self._show_locked()
        ui.timer(30.0, self._idle_check)

    def _pin_pad(self) -> None:
        with ui.card().classes("w-full items-center gap-3") as self.pad:
            ui.label("Enter your staff PIN").classes("text-xl font-medium")
            self.pin = tag(
                ui.input("PIN", password=True).props("inputmode=numeric autocomplete=off outlined"),
                "terminal-pin",
            ).classes("w-48")
            self.pin.on("keydown.enter", self.unlock)
            tag(ui.button("Unlock", on_click=self.unlock), "terminal-unlock")
            self.pin_message = tag(ui.label(""), "terminal-pin-message").classes("text-red-700")

    def _till(self) -> None:
        with ui.column().classes("w-full gap-4") as self.work:
            with ui.card().classes("w-full"):
                ui.label("Find a card").classes("text-lg font-medium")
                with ui.row().classes("w-full items-center no-wrap"):
                    self.search = tag(
                        ui.input("Card number, QR code text or email").props("outlined"),
                        "terminal-search",
                    ).classes("grow")
                    self.search.on("keydown.enter", self.find)
                    tag(ui.button("Find", icon="search", on_click=self.find), "terminal-find")
                self.find_message = tag(ui.label(""), "terminal-find-message").classes(
                    "text-red-700"
                )
            self.card_box = ui.column().classes("w-full gap-4")

    # --- lock ----------------------------------------------------------------------------

    def _show_locked(self) -> None:
        self.staff_id = None
        self.staff_name = ""
        self.card = None
        self.pad.visible = True
        self.work.visible = False
        self.lock_button.visible = False
        self.who.text = "Locked"
        self.card_box.clear()
        self.search.value = ""

    def _unlock(self, staff_id: int | None, name: str) -> None:
        self.staff_id = staff_id
        self.staff_name = name
        self.pad.visible = False
        self.work.visible = True
        self.lock_button.visible = self.info.require_pin
        self.who.text = f"Staff: {name}" if name else "No PIN needed at this store"
        self.pin.value = ""
        self.pin_message.text = ""
        self.last_used = datetime.now(UTC)

    async def still_allowed(self) -> bool:
        """Whether the admin or the device that opened this page may still act here; when not,
        the page is shut (the caller acts on nothing)."""
        async with self.rt.session() as session:
            ok = await still_allowed(session, self.info, self.access)
        if not ok:
            self._shut()
        return ok

    def _shut(self) -> None:
        self.staff_id = None
        self.card = None
        self.pad.visible = False
        self.work.visible = False
        self.lock_button.visible = False
        self.card_box.clear()
        self.who.text = "Signed out"
        self.refused.visible = True

    async def unlock(self) -> None:
        """Check the PIN typed (the store's lockout counts wrong ones)."""
        if not await self.still_allowed():
            return
        pin = (self.pin.value or "").strip()
        self.pin.value = ""
        if not pin:
            self.pin_message.text = "Enter a PIN."
            return
        try:
            async with self.rt.session() as session:
                staff = await domain_api.verify_pin(session, self.info.code, pin, datetime.now(UTC))
                staff_id, name = staff.id, staff.name
        except domain_api.PinRefused as exc:
            if exc.locked_until is not None:
                self.pin_message.text = (
                    f"Too many wrong PINs: this terminal is locked until "
                    f"{texts.local_when(exc.locked_until, self.info.timezone)}."
                )
            elif exc.remaining is not None:
                tries = "try" if exc.remaining == 1 else "tries"
                self.pin_message.text = f"Wrong PIN: {exc.remaining} {tries} left before the lock."
            else:
                self.pin_message.text = str(exc)
            return
        self._unlock(staff_id, name)

    def lock(self) -> None:
        """Lock the terminal again."""
        self._show_locked()

    def _idle_check(self) -> None:
        if (
            self.info.require_pin
            and self.staff_id is not None
            and datetime.now(UTC) - self.last_used > IDLE_LOCK
        ):
            self._show_locked()

    # --- card ----------------------------------------------------------------------------

    async def find(self) -> None:
        """Look the typed text up as a card number, a QR code text or an email."""
        self.last_used = datetime.now(UTC)
        if not await self.still_allowed():
            return
        if self.info.require_pin and self.staff_id is None:
            self._show_locked()
            return
        text = (self.search.value or "").strip()
        self.find_message.text = ""
        if not text:
            self.find_message.text = "Type a card number, scan a QR code or enter an email."
            return
        try:
            async with self.rt.session() as session:
                number = await domain_api.find_card(session, text, self.info.merchant_code)
                summary = await card_summary(session, number) if number else None
        except DomainRefusal as exc:
            self.find_message.text = str(exc)
            return
        if summary is None:
            self.find_message.text = "No card of this merchant matches."
            self.card = None
            self.card_box.clear()
            return
        self.card = summary
        self.keys = {
            k: uuid.uuid4() for k in ("purchase", "stamp", "redeem_stamps", "redeem_points")
        }
        self._draw_card(None)

    def _draw_card(self, outcome: tuple[str, list[str], str] | None) -> None:
        card = self.card
        assert card is not None
        info = self.info
        self.card_box.clear()
        with self.card_box:
            with ui.card().classes("w-full"):
                with ui.row().classes("w-full items-baseline"):
                    tag(ui.label(card.card_number), "terminal-card-number").classes(
                        "text-2xl font-mono"
                    )
                    ui.label(card.customer).classes("text-slate-600")
                with ui.row().classes("gap-8"):
                    if info.stamps:
                        tag(
                            ui.label(f"{card.stamp_count} / {info.stamps_target} stamps"),
                            "terminal-stamps",
                        ).classes("text-xl font-semibold")
                    if info.points:
                        tag(ui.label(f"{card.points_balance} points"), "terminal-points").classes(
                            "text-xl font-semibold"
                        )
                    if not card.is_active:
                        ui.label("deactivated").classes("text-red-700 font-semibold")
            if outcome is not None:
                status, reasons, deltas = outcome
                color = (
                    "text-emerald-800 bg-emerald-50"
                    if status == "applied"
                    else ("text-amber-900 bg-amber-50")
                )
                with tag(
                    ui.column().classes(f"w-full rounded p-3 gap-1 {color}"), "terminal-result"
                ):
                    ui.label(f"{texts.status(status)}{deltas}").classes("font-semibold")
                    for line in reasons:
                        ui.label(line)
            with ui.card().classes("w-full"):
                ui.label("Purchase").classes("text-lg font-medium")
                with ui.row().classes("items-center"):
                    # No ``min``: Quasar would quietly turn a negative amount into 0 on blur;
                    # the form says what is wrong instead.
                    self.amount = tag(
                        ui.input(f"Amount ({info.currency})").props(
                            "inputmode=decimal autocomplete=off outlined"
                        ),
                        "terminal-amount",
                    ).classes("w-40")
                    self.order = tag(ui.input("Receipt number (optional)"), "terminal-order")
                    tag(ui.button("Record purchase", on_click=self.purchase), "terminal-purchase")
                    if info.stamps:
                        tag(
                            ui.button("Add a stamp", icon="approval", on_click=self.stamp).props(
                                "color=secondary"
                            ),
                            "terminal-stamp",
                        )
                self.form_message = tag(ui.label(""), "terminal-form-message").classes(
                    "text-red-700"
                )
            with ui.card().classes("w-full"):
                ui.label("Redeem").classes("text-lg font-medium")
                if info.stamps:
                    tag(
                        ui.button(
                            f"Stamp card reward ({info.stamps_target} stamps)",
                            on_click=self.redeem_stamps,
                        ).props("outline"),
                        "terminal-redeem-stamps",
                    )
                with ui.row().classes("items-center"):
                    if info.points and info.rewards:
                        self.reward = tag(
                            ui.select(
                                info.rewards, label="Reward", value=next(iter(info.rewards))
                            ).classes("w-72"),
                            "terminal-reward",
                        )
                        tag(
                            ui.button("Redeem reward", on_click=self.redeem_points).props(
                                "outline"
                            ),
                            "terminal-redeem-points",
                        )

    # --- actions -------------------------------------------------------------------------

    def _base(self, key: str, kind: str) -> dict[str, Any]:
        assert self.card is not None
        return {
            "event_id": str(self.keys[key]),
            "type": kind,
            "occurred_at": datetime.now(UTC).isoformat(),
            "store_code": self.info.code,
            "card": {"card_number": self.card.card_number},
        }

    def _typed_cents(self) -> int | str | None:
        """The amount typed in cents, ``None`` when blank, or what is wrong with it."""
        raw = str(self.amount.value or "").strip().replace(",", ".")
        if not raw:
            return None
        try:
            value = Decimal(raw)
        except InvalidOperation:
            return "The amount must be a number, like 4.50."
        if not value.is_finite() or value < 0:
            return "The amount cannot be negative."
        if value != value.quantize(Decimal("0.01")):
            return "The amount has at most two decimals."
        if value > Decimal("1000000"):
            return "The amount is too large."
        return int(value * 100)

    def _amount_or_say(self, blank: int | str) -> int | None:
        """The amount typed in cents; ``blank`` when nothing is typed (a message to show, or
        the amount to use); ``None`` once a message says what is wrong."""
        self.form_message.text = ""
        cents = self._typed_cents()
        if cents is None:
            cents = blank
        if isinstance(cents, str):
            self.form_message.text = cents
            return None
        return cents

    async def purchase(self) -> None:
        """Record a purchase of the amount typed."""
        cents = self._amount_or_say("Enter the purchase amount.")
        if cents is None:
            return
        data = self._base("purchase", "purchase.completed")
        reference = (self.order.value or "").strip()
        data.update(
            order_reference=reference or f"terminal-{self.keys['purchase']}",
            amount_cents=cents,
            currency=self.info.currency,
            channel="in_store",
        )
        await self._send("purchase", Topic.PURCHASES.value, PurchaseCompleted, data)

    async def stamp(self) -> None:
        """Add one stamp: a purchase worth one stamp, of the amount typed.

        Left blank, the amount is the program's minimum purchase: the member of staff vouches
        that the purchase qualifies, and the cooldown and the daily cap still judge it. In a
        hybrid program with a minimum the amount earns points too, so it is asked instead.
        """
        if self.info.points and self.info.minimum_purchase_cents > 0:
            blank: int | str = "Enter the purchase amount: it also earns points."
        else:
            blank = self.info.minimum_purchase_cents
        cents = self._amount_or_say(blank)
        if cents is None:
            return
        data = self._base("stamp", "purchase.completed")
        data.update(
            order_reference=f"terminal-stamp-{self.keys['stamp']}",
            amount_cents=cents,
            currency=self.info.currency,
            channel="in_store",
            stamps=1,
        )
        await self._send("stamp", Topic.PURCHASES.value, PurchaseCompleted, data)

    async def redeem_stamps(self) -> None:
        """Redeem a full stamp card."""
        data = self._base("redeem_stamps", "reward.redeem_requested")
        data["reward"] = {"kind": "stamps"}
        await self._send("redeem_stamps", Topic.REDEMPTIONS.value, RewardRedeemRequested, data)

    async def redeem_points(self) -> None:
        """Redeem the chosen catalog reward."""
        data = self._base("redeem_points", "reward.redeem_requested")
        data["reward"] = {"kind": "points", "reward_id": self.reward.value}
        await self._send("redeem_points", Topic.REDEMPTIONS.value, RewardRedeemRequested, data)

    async def _send(self, key: str, topic: str, model: Any, data: dict[str, Any]) -> None:
        if self.busy:
            return  # a second click while the first is on its way
        self.busy = True
        self.last_used = datetime.now(UTC)
        try:
            if not await self.still_allowed():
                return
            if self.info.require_pin and self.staff_id is None:
                self._show_locked()
                return
            try:
                message: InputEvent = model.model_validate(data)
            except ValidationError as exc:
                self.form_message.text = "; ".join(
                    f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
                )
                return
            now = datetime.now(UTC)
            actor = f"terminal:{self.info.code}"
            async with transaction(self.rt) as session:
                outcome = await domain_api.apply_events(
                    session,
                    [domain_api.inbound(topic, message, staff_pin_id=self.staff_id, actor=actor)],
                    now,
                )
                assert self.card is not None
                summary = await card_summary(session, self.card.card_number)
            if outcome.duplicates:
                shown: tuple[str, list[str], str] = ("duplicate", [], "")
            else:
                result = outcome.results[0]
                shown = (result.status, texts.reasons(result.reasons), _deltas(result))
                self.keys[key] = uuid.uuid4()  # answered: the next click is a new action
            if summary is not None:
                self.card = summary
            self._draw_card(shown)
        finally:
            self.busy = False


def _deltas(result: Any) -> str:
    parts = []
    if result.stamps_delta:
        parts.append(f"{result.stamps_delta:+d} stamp(s)")
    if result.points_delta:
        parts.append(f"{result.points_delta:+d} points")
    return (": " + ", ".join(parts)) if parts else ""
