"""``loyalty demo history``: backdated traffic for the demo merchants (``loyalty.demo_history``),
so a first ``make run`` opens on charts and reports with a past."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from core.settings import get_settings
from loyalty.cli import app

demo_app = typer.Typer(help="Demo data for the merchants of demo/demo.yaml.", no_args_is_help=True)
app.add_typer(demo_app, name="demo")


@demo_app.command("history")
def history(
    days: Annotated[int, typer.Option(min=1, max=730, help="Days of history, ending now.")] = 90,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed, the same history.")] = 7,
    file: Annotated[
        Path | None, typer.Option(help="The demo provisioning file (default demo/demo.yaml).")
    ] = None,
) -> None:
    """Apply about DAYS days of backdated purchases, enrolments, returns and redemptions to
    the demo merchants through the engine, once: nothing is done when they already have a
    history."""
    from consumers.simulate import DEMO_FILE, SimulationError
    from loyalty.demo_history import HistoryRefused, seed_history

    try:
        report = asyncio.run(
            seed_history(get_settings(), days=days, seed=seed, demo_file=file or DEMO_FILE)
        )
    except (HistoryRefused, SimulationError) as exc:
        raise SystemExit(f"loyalty demo history: {exc}") from None
    if report.skipped:
        typer.echo(f"demo history: nothing done ({report.skipped})")
        return
    statuses = ", ".join(f"{n:,} {status}" for status, n in sorted(report.statuses.items()))
    typer.echo(
        f"demo history: {report.events:,} events over {report.days} days for "
        f"{', '.join(report.merchants)} ({statuses}); {report.backdated_cards:,} cards dated "
        "from their enrolment"
    )
