"""Building blocks of the customer-facing pages (the card page, self-enrolment).

A language switch, a link to the merchant's privacy notice and a stamp grid, each in
English, French, German and Luxembourgish. They only draw: the callers pick the language,
read the program and say where the page lives.

Each element carries a NiceGUI marker and a ``data-testid`` of the same name (see
:func:`admin_ui.widgets.tag`): ``language-switch`` and ``lang-<code>``, ``privacy-link``,
``stamp-grid`` with ``stamp-filled``, ``stamp-empty`` and ``stamp-reward``.
"""

from __future__ import annotations

import math
from urllib.parse import urlsplit

from nicegui import ui

from admin_ui.i18n import LANGUAGE_NAMES
from admin_ui.widgets import tag
from wallet.cards import normalize_hex_color

# Larger targets are shown as a number only: 30 circles still fit a phone in five rows.
STAMP_GRID_MAX = 30
# Circles per row at most: six keep each one at least ~44 px wide (a finger) on a phone.
STAMP_GRID_COLUMNS = 6

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "language": "Language",
        "privacy": "Privacy notice",
        "stamps_of": "{count} of {target} {unit}",
        "reward": "Reward",
    },
    "fr": {
        "language": "Langue",
        "privacy": "Protection des données",
        "stamps_of": "{count} sur {target} {unit}",
        "reward": "Récompense",
    },
    "de": {
        "language": "Sprache",
        "privacy": "Datenschutz",
        "stamps_of": "{count} von {target} {unit}",
        "reward": "Prämie",
    },
    "lb": {
        "language": "Sprooch",
        "privacy": "Dateschutz",
        "stamps_of": "{count} vun {target} {unit}",
        "reward": "Belounung",
    },
}

# The unit after "of {target}": (one, several); German and Luxembourgish take the dative.
STAMP_UNITS: dict[str, tuple[str, str]] = {
    "en": ("stamp", "stamps"),
    "fr": ("tampon", "tampons"),
    "de": ("Stempel", "Stempeln"),
    "lb": ("Stempel", "Stempelen"),
}


def public_text(language: str, key: str) -> str:
    """A text of these widgets in ``language`` (English for a language we do not have)."""
    return TEXTS.get(language, TEXTS["en"])[key]


def stamps_label(language: str, count: int, target: int) -> str:
    """``7 of 10 stamps``: what the stamp grid shows, for screen readers."""
    singular, plural = STAMP_UNITS.get(language, STAMP_UNITS["en"])
    unit = singular if target == 1 else plural
    return public_text(language, "stamps_of").format(count=count, target=target, unit=unit)


def language_switch(current: str, path: str) -> ui.element:
    """Four small links to ``path?lang=xx``, each language named in itself.

    ``path`` is the page's own path without a query (already URL-quoted). The current
    language is highlighted and marked ``aria-current``. Returns the ``<nav>`` so a caller
    can place it (it fills its row and aligns its links to the end).
    """
    nav = tag(ui.element("nav"), "language-switch")
    nav.classes("w-full flex flex-wrap justify-end gap-x-3 gap-y-1 text-sm")
    nav.props["aria-label"] = public_text(current, "language")
    with nav:
        for code, name in LANGUAGE_NAMES.items():
            link = tag(ui.link(name, f"{path}?lang={code}"), f"lang-{code}")
            # lang/hreflang: a screen reader reads "Deutsch" in German, not as English.
            link.props["lang"] = code
            link.props["hreflang"] = code
            if code == current:
                link.props["aria-current"] = "page"
                link.classes("font-semibold text-slate-900 underline underline-offset-4")
            else:
                link.classes("text-slate-600 no-underline hover:underline")
    return nav


def safe_web_url(url: str | None) -> str | None:
    """``url`` when it is an absolute http(s) address, else None.

    Program URLs are typed into the admin panel: a ``javascript:`` one must never become
    a link on a customer's page.
    """
    if not url or not url.strip():
        return None
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return url.strip()


def privacy_link(url: str | None, language: str) -> ui.link | None:
    """A link to the merchant's privacy notice, in a new tab; nothing when there is none.

    ``url`` is the program's ``privacy_url``; anything but an http(s) address draws nothing.
    """
    target = safe_web_url(url)
    if target is None:
        return None
    link = tag(ui.link(public_text(language, "privacy"), target, new_tab=True), "privacy-link")
    # No Referer: the card page's own address is the card's secret.
    link.props["rel"] = "noopener noreferrer"
    link.classes("text-sm text-slate-600")
    return link


def _colour(value: str, fallback: str) -> str:
    # Normalised, so a colour typed into the admin panel can never inject CSS.
    try:
        return normalize_hex_color(value)
    except ValueError:
        return fallback


def stamp_grid_columns(target: int) -> int:
    """Circles per row: as few rows as six columns allow, the rows as even as can be.

    10 gives two rows of 5, 8 two of 4, 12 two of 6, 20 four of 5, 30 five of 6.
    """
    if target < 1:
        return 1
    rows = math.ceil(target / STAMP_GRID_COLUMNS)
    return math.ceil(target / rows)


def stamp_grid(
    stamp_count: int,
    target: int,
    *,
    language: str,
    reward: str = "",
    filled_color: str = "#FFFFFF",
    empty_color: str = "#D1D5DB",
    mark_color: str = "#1F2937",
) -> ui.element | None:
    """``target`` circles, the first ``stamp_count`` filled, the last one the reward.

    The colours are the program's: ``filled_color`` fills a collected stamp (its
    foreground), ``empty_color`` draws the empty ones (its label colour), ``mark_color``
    draws the tick and gift on a filled circle (its background). The reward circle shows a
    gift, with ``reward`` (the reward's description) as its tooltip. Screen readers get one
    label, "7 of 10 stamps". Nothing is drawn for a target above :data:`STAMP_GRID_MAX`
    (the number says it better) or below 1; returns the grid, or None then.
    """
    if target < 1 or target > STAMP_GRID_MAX:
        return None
    filled_color = _colour(filled_color, "#FFFFFF")
    empty_color = _colour(empty_color, "#D1D5DB")
    mark_color = _colour(mark_color, "#1F2937")
    filled = max(0, min(stamp_count, target))
    columns = stamp_grid_columns(target)
    label = stamps_label(language, filled, target)
    grid = tag(ui.element("div"), "stamp-grid")
    grid.props["role"] = "img"
    grid.props["aria-label"] = label
    grid.style(
        f"display: grid; grid-template-columns: repeat({columns}, minmax(0, 2.75rem)); "
        "gap: 0.5rem; max-width: 100%"
    )
    with grid:
        for index in range(target):
            is_filled = index < filled
            is_reward = index == target - 1
            name = "stamp-reward" if is_reward else "stamp-filled" if is_filled else "stamp-empty"
            cell = tag(ui.element("div"), name)
            border = "solid" if is_filled else "dashed" if is_reward else "solid"
            cell.classes("flex items-center justify-center rounded-full").style(
                "aspect-ratio: 1 / 1; width: 100%; box-sizing: border-box; "
                f"border: 2px {border} {filled_color if is_filled else empty_color}; "
                f"background-color: {filled_color if is_filled else 'transparent'}"
            )
            with cell:
                if is_reward:
                    ui.icon("redeem").classes("text-xl").style(
                        f"color: {mark_color if is_filled else empty_color}"
                    )
                    ui.tooltip(reward or public_text(language, "reward"))
                elif is_filled:
                    ui.icon("check").classes("text-xl").style(f"color: {mark_color}")
    return grid
