"""``loyalty campaign simulate``: campaigns tried on a merchant's past purchases (CONTRACT.md
7.1), writing and publishing nothing."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from core.settings import get_settings
from loyalty.cli import app

campaign_app = typer.Typer(help="Campaigns: try them on past traffic.", no_args_is_help=True)
app.add_typer(campaign_app, name="campaign")


def _instant(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not an ISO 8601 time") from None
    if value.tzinfo is None:
        raise typer.BadParameter(f"{text!r} needs an offset, like 2026-01-01T00:00:00+01:00")
    return value


@campaign_app.command("simulate")
def simulate(
    file: Annotated[
        Path,
        typer.Argument(
            help="YAML or JSON: `campaigns: [...]`, or a provisioning file naming the merchant."
        ),
    ],
    merchant: Annotated[str, typer.Option("--merchant", help="The merchant's code.")],
    start: Annotated[str, typer.Option("--from", help="Start (included), ISO 8601 with offset.")],
    end: Annotated[str, typer.Option("--to", help="End (excluded), ISO 8601 with offset.")],
    as_json: Annotated[bool, typer.Option("--json", help="The report as one JSON object.")] = False,
) -> None:
    """Run the merchant's recorded purchases of the period with FILE's campaigns added (or
    replacing those of the same id) and without them; report per campaign the purchases
    matched, cards reached, points awarded, their cost and when a budget would have run out.

    Exits 2 naming the field when FILE is refused, or when the merchant does not exist.
    """
    import asyncpg
    from rich.progress import Progress

    from domain.campaign_trial import TrialError, campaigns_of_file, try_campaigns
    from domain.catalog import InvalidFields
    from domain.provisioning import ProvisioningError, read_text

    begin, finish = _instant(start), _instant(end)
    if begin >= finish:
        raise typer.BadParameter("--from must be before --to")
    try:
        data = read_text(
            file.read_text(encoding="utf-8"), json_format=file.suffix == ".json", source=str(file)
        )
        tried = campaigns_of_file(data, merchant)
    except (ProvisioningError, InvalidFields) as exc:
        for error in exc.errors:
            typer.echo(str(error), err=True)
        raise typer.Exit(2) from None
    except OSError as exc:
        typer.echo(f"{file}: cannot be read: {exc}", err=True)
        raise typer.Exit(2) from None

    async def run() -> dict[str, object]:
        conn = await asyncpg.connect(get_settings().db_url)
        try:
            with Progress(transient=True, disable=as_json) as bar:
                task = bar.add_task("purchases", total=None)
                report = await try_campaigns(
                    conn,
                    merchant,
                    tried,
                    begin,
                    finish,
                    lambda done, total: bar.update(task, completed=done, total=total),
                )
            return report.as_dict()
        finally:
            await conn.close()

    try:
        report = asyncio.run(run())
    except TrialError as exc:
        typer.echo(f"loyalty campaign simulate: {exc}", err=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(report))
        return
    typer.echo(_text(report))


def _text(report: dict[str, object]) -> str:
    without, with_ = report["without"], report["with"]
    assert isinstance(without, dict) and isinstance(with_, dict)
    lines = [
        f"{report['purchases']:,} purchases of {report['merchant']} "
        f"from {report['from']} to {report['to']}",
        f"  without: {without['points']:,} points ({_money(without['cost_cents'])})",
        f"  with:    {with_['points']:,} points ({_money(with_['cost_cents'])})",
    ]
    campaigns = report["campaigns"]
    assert isinstance(campaigns, list)
    for c in campaigns:
        ran_out = f", budget spent at {c['budget_ran_out_at']}" if c["budget_ran_out_at"] else ""
        lines.append(
            f"  {c['id']}: {c['purchases_matched']:,} purchases, {c['cards_reached']:,} cards, "
            f"{c['points_awarded']:,} points ({_money(c['cost_cents'])}){ran_out}"
        )
    return "\n".join(lines)


def _money(cents: object) -> str:
    return f"{float(str(cents)) / 100:,.2f} in money"
