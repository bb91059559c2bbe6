"""The live preview beside a program's form: a sample card as the customer's phone page shows
it and as the front of its wallet pass, redrawn from the form's current values as the admin
types, before anything is saved.

The phone page is the card page's own drawing (``admin_ui.card_page``), not a look-alike; the
pass front lays out the very fields the Apple pass is built with
(``wallet.apple_pass.store_card_fields``: header, primary, secondary and auxiliary fields), in
the program's colours, with the merchant's name as the logo text and a placeholder of the
barcode. The numbers are a sample's (``admin_ui.queries.programs.preview_card``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nicegui import ui

from admin_ui.card_page import brand_card, qr_data_url
from admin_ui.card_texts import text_of
from admin_ui.formatting import number
from admin_ui.public_widgets import safe_web_url
from admin_ui.queries.card_page import WalletCard
from admin_ui.widgets import tag
from wallet import i18n
from wallet.apple_pass import store_card_fields

LANGUAGE = "en"
# The phone's width on the page: a small phone's screen, so what fits there fits every phone.
_PHONE = "w-full max-w-[20rem] mx-auto"


class ProgramPreview:
    """The preview's two drawings; ``read`` gives the sample card of the form's values now."""

    def __init__(self, read: Callable[[], WalletCard]) -> None:
        self.read = read
        self.phone: ui.element | None = None
        self.wallet: ui.element | None = None
        self._qr = qr_data_url("preview")

    def build(self) -> None:
        """Draw the preview where the caller stands (beside the form, or below it)."""
        with tag(ui.column().classes("w-full gap-3"), "program-preview"):
            ui.label("Preview").classes("text-lg font-medium text-slate-700")
            ui.label("Sample numbers. Changes show here as you type, before you save.").classes(
                "text-xs text-slate-600"
            )
            ui.label("The customer's card page").classes("text-sm font-medium text-slate-700")
            self.phone = tag(ui.element("div"), "program-preview-phone").classes(_PHONE)
            ui.label("Wallet pass (front)").classes("text-sm font-medium text-slate-700 pt-2")
            self.wallet = tag(ui.element("div"), "program-preview-pass").classes(_PHONE)
        self.refresh()

    def refresh(self) -> None:
        """Redraw both from the form's current values."""
        if self.phone is None or self.wallet is None:
            return
        card = self.read()
        self.phone.clear()
        with self.phone:
            self._phone_page(card)
        self.wallet.clear()
        with self.wallet:
            self._pass_front(card)

    def _phone_page(self, card: WalletCard) -> None:
        # A phone's screen: the card page's card, then the start of its code panel.
        frame = "w-full rounded-[1.75rem] border-[6px] border-slate-800 bg-slate-100 p-2 gap-2"
        with ui.column().classes(frame):
            brand_card(card, LANGUAGE)
            with ui.card().classes("w-full items-center gap-1 py-3"):
                code = ui.image(self._qr).classes("w-24 h-24")
                code.props("no-spinner no-transition")
                ui.label(text_of(LANGUAGE, "show_code")).classes("text-xs text-slate-600")
                ui.label(f"{text_of(LANGUAGE, 'card_number')}: {card.card_number}").classes(
                    "font-mono text-xs"
                )

    def _pass_front(self, card: WalletCard) -> None:
        pass_card = card.pass_card()
        groups = store_card_fields(pass_card)
        fg, label = pass_card.foreground_color, pass_card.label_color
        box = tag(ui.column(), "program-preview-pass-card").classes(
            "w-full rounded-xl p-3 gap-3 shadow-md"
        )
        with box.style(f"background-color: {pass_card.background_color}; color: {fg}"):
            with ui.row(wrap=False).classes("w-full items-center gap-2"):
                _logo(card.logo_url, card.merchant_name, fg)
                logo_text = ui.label(card.merchant_name).classes("font-semibold truncate min-w-0")
                tag(logo_text, "program-preview-logo-text")
                ui.space()
                for field in groups.get("headerFields", []):
                    _field(field, label, size="text-base", align="items-end")
            for field in groups.get("primaryFields", []):
                _field(field, label, size="text-4xl font-light")
            below = [*groups.get("secondaryFields", []), *groups.get("auxiliaryFields", [])]
            if below:
                with ui.row().classes("w-full justify-between gap-x-4 gap-y-2"):
                    for field in below:
                        _field(field, label, size="text-sm")
            # The barcode, centred on a white plate as both wallets draw it.
            with ui.column().classes("mx-auto items-center gap-0 rounded-lg bg-white p-2"):
                barcode = ui.image(self._qr).classes("w-20 h-20")
                barcode.props("no-spinner no-transition")
                ui.label(card.card_number).classes("font-mono text-[11px] text-slate-700")


def _shown(value: Any) -> str:
    return number(value) if isinstance(value, int) else str(value)


def _field(field: dict[str, Any], label: str, *, size: str, align: str = "") -> None:
    """One field of the pass: its label (in the label colour, small capitals) over its value."""
    with ui.column().classes(f"gap-0 min-w-0 {align}"):
        ui.label(i18n.translate(field["label"], LANGUAGE)).classes(
            "text-[10px] uppercase tracking-wide"
        ).style(f"color: {label}")
        value = ui.label(_shown(field["value"])).classes(f"{size} leading-tight break-words")
        tag(value, f"program-preview-pass-{field['key']}")


def _logo(url: str | None, merchant: str, colour: str) -> None:
    """The program's logo (a web address only), else its initial in a circle."""
    target = safe_web_url(url)
    if target is not None:
        ui.image(target).classes("w-8 h-8 shrink-0").props("fit=contain no-spinner")
        return
    initial = (merchant.strip()[:1] or "?").upper()
    ui.label(initial).classes(
        "w-8 h-8 shrink-0 rounded-full flex items-center justify-center font-semibold"
    ).style(f"border: 2px solid {colour}")
