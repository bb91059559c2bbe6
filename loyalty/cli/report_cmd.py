"""``loyalty report finance``: a merchant's liability, what moved it, redemption and breakage,
members and cohort retention over a period of its local days (``domain.finance``,
``docs/finance.md``). Reads only."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated

import typer

from loyalty.cli import app

if TYPE_CHECKING:
    from domain.finance import FinanceReport

report_app = typer.Typer(help="Reports for a merchant's accounts.", no_args_is_help=True)
app.add_typer(report_app, name="report")


def _day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        message = f"{text!r} is not a date (YYYY-MM-DD)"
        raise typer.BadParameter(message, param_hint=option) from None


@report_app.command("finance")
def finance(
    merchant: Annotated[str, typer.Option("--merchant", help="The merchant's code.")],
    start: Annotated[
        str, typer.Option("--from", help="First day (included), YYYY-MM-DD, merchant's time.")
    ],
    end: Annotated[
        str, typer.Option("--to", help="Last day (included), YYYY-MM-DD, merchant's time.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="The report as one JSON object.")] = False,
    as_csv: Annotated[
        bool, typer.Option("--csv", help="The report as CSV: section,figure,unit,value.")
    ] = False,
) -> None:
    """The liability at the start and at the end of the period (stamps, points with pending
    ones, and their value), what was issued, redeemed, expired, voided, adjusted and taken by
    deleted cards in between, the redemption and breakage rates, active and new members, and
    the retention of each of the last twelve months' new cards. Definitions: docs/finance.md.

    Exits 2 when the merchant does not exist or the dates are wrong.
    """
    if as_json and as_csv:
        raise typer.BadParameter("choose --json or --csv, not both")
    first, last = _day(start, "--from"), _day(end, "--to")
    if first > last:
        raise typer.BadParameter("--from must not be after --to")

    from domain.finance import FinanceNotFound, finance_report, report_csv, report_dict
    from loyalty.cli._db import with_session

    try:
        report = asyncio.run(with_session(lambda s: finance_report(s, merchant, first, last)))
    except FinanceNotFound as exc:
        typer.echo(f"loyalty report finance: {exc}", err=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(report_dict(report)))
    elif as_csv:
        sys.stdout.write(report_csv(report))
    else:
        typer.echo(text_report(report))


def text_report(report: FinanceReport) -> str:
    """The report as a table for a terminal."""
    cur = report.currency

    def money(cents: int) -> str:
        return f"{Decimal(cents) / 100:,.2f} {cur}"

    def line(label: str, stamps: int | str, points: int | str, value: str) -> str:
        s = f"{stamps:,}" if isinstance(stamps, int) else stamps
        p = f"{points:,}" if isinstance(points, int) else points
        return f"{label:<26}{s:>12}{p:>14}{value:>20}"

    names = {
        "issued": "Issued",
        "redeemed": "Redeemed",
        "expired": "Expired",
        "voided": "Voided (returns)",
        "adjusted": "Adjusted",
        "deleted": "Taken by deleted cards",
    }
    opening, closing = report.opening, report.closing
    lines = [
        f"Finance report of {report.merchant_name} ({report.merchant_code}), "
        f"{report.start} to {report.end} ({report.timezone}), in {cur}",
        "",
        line("", "stamps", "points", "value"),
        line("Liability at the start", opening.stamps, opening.points_total, money(opening.cents)),
        line("  of which pending", "", opening.points_pending, ""),
    ]
    for name, m in report.movements():
        lines.append(line(names[name], m.stamps, m.points, money(m.cents)))
    lines += [
        line("Liability at the end", closing.stamps, closing.points_total, money(closing.cents)),
        line("  of which pending", "", closing.points_pending, ""),
        "",
        f"Redemption rate: points {_share(report.points_redemption_rate)}, "
        f"stamps {_share(report.stamps_redemption_rate)}",
        f"Breakage rate:   points {_share(report.points_breakage_rate)}",
        f"Active members:  {report.active_members:,}",
        f"New members:     {report.new_members:,}",
        "",
        "Cohort retention: share of each month's new cards active in that month (+0) and after",
        f"{'cohort':<9}{'cards':>8}" + "".join(f"{'+' + str(i):>7}" for i in range(12)),
    ]
    for c in report.cohorts:
        cells = "".join(f"{_share(r, 0):>7}" for r in c.retention)
        lines.append(f"{c.month:%Y-%m}  {c.cards:>8,}{cells}")
    values = ", ".join(
        f"{p.name}{' (deleted)' if p.deleted else ''}: a stamp "
        f"{p.stamp_value_cents.normalize():f} cents, a point {p.point_value_cents.normalize():f} "
        "cents"
        for p in report.programs
    )
    if values:
        lines += ["", f"Valued at: {values}"]
    return "\n".join(lines)


def _share(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}%}"
