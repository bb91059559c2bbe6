"""``loyalty publish``, ``loyalty replay`` and ``loyalty simulate``: the operator's tools."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from core.settings import get_settings
from loyalty.cli import app
from streams.topics import INPUT_TOPICS, Topic

T = TypeVar("T")

_SHOWN_ERRORS = 20

JsonFlag = Annotated[bool, typer.Option("--json", help="The summary as one JSON object.")]

# Exit codes: 2 is a usage or input error (nothing was done), 1 a failure of Kafka or the
# database part-way, 130 an interruption (Ctrl-C), as shells report it.
EXIT_FAILED, EXIT_INPUT, EXIT_INTERRUPTED = 1, 2, 130


def input_topic(name: str) -> Topic:
    """An input topic by its name (``loyalty.purchases.v1``) or short name (``purchases``)."""
    for topic in INPUT_TOPICS:
        if name in (topic.value, topic.value.split(".")[1]):
            return topic
    choices = ", ".join(t.value for t in INPUT_TOPICS)
    raise typer.BadParameter(f"{name!r} is not an input topic; one of {choices}")


def _fail(command: str, message: str, code: int) -> typer.Exit:
    typer.echo(f"loyalty {command}: {message}", err=True)
    return typer.Exit(code)


def _run_until_signal(work: Callable[[asyncio.Event], Awaitable[T]]) -> T:
    """Run ``work``, handing it an event that SIGINT and SIGTERM set (a clean stop)."""
    # aiokafka narrates every assignment at INFO: noise in an operator's terminal.
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("aiokafka").setLevel(logging.WARNING)

    async def main() -> T:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        return await work(stop)

    return asyncio.run(main())


# ---------------------------------------------------------------------------------------------
# publish


@app.command(
    epilog="Exit status: 0 published; 2 invalid input, nothing published; 1 Kafka failed "
    "part-way (publishing the same file again is safe)."
)
def publish(
    topic: Annotated[
        str,
        typer.Argument(
            help="Input topic: loyalty.purchases.v1, loyalty.returns.v1, "
            "loyalty.enrollments.v1, loyalty.redemptions.v1, loyalty.expiry.v1, or its short "
            "name (purchases).",
            show_default=False,
        ),
    ],
    file: Annotated[str, typer.Argument(help="JSON lines, one message each; - for stdin.")],
    skip_invalid: Annotated[
        bool,
        typer.Option(
            "--skip-invalid",
            help="Publish the valid lines and list the invalid ones, instead of publishing "
            "nothing.",
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Publish JSON lines onto an input topic, keyed as CONTRACT.md section 1 says.

    Every line is checked against the topic's message first. A file with an invalid line
    publishes nothing: each bad line is listed with its number and the field at fault
    (`line 3: amount_cents: must be an integer >= 0 (got -5)`), so it can be fixed and
    published again. Blank lines are skipped; each line is sent as written. Publishing a
    file twice is harmless: the engine ignores an event_id it has already processed.
    """
    from consumers.publish import prepare
    from consumers.publish import publish as send

    chosen = input_topic(topic)
    try:
        prepared = prepare(chosen, _lines(file))
    except OSError as exc:
        raise _fail("publish", f"cannot read {file}: {exc.strerror or exc}", EXIT_INPUT) from None
    for line, first in prepared.repeated:
        typer.echo(
            f"warning: line {line}: event_id already on line {first}; the engine will ignore it",
            err=True,
        )
    for error in prepared.invalid[:_SHOWN_ERRORS]:
        typer.echo(str(error), err=True)
    if len(prepared.invalid) > _SHOWN_ERRORS:
        typer.echo(f"... and {len(prepared.invalid) - _SHOWN_ERRORS} more", err=True)
    if prepared.invalid and not skip_invalid:
        raise _fail(
            "publish",
            f"{len(prepared.invalid)} invalid line(s) in {file}: nothing published "
            "(fix them, or --skip-invalid to publish the rest)",
            EXIT_INPUT,
        )
    settings = get_settings()
    try:
        result = asyncio.run(send(settings, chosen, prepared.records))
    except Exception as exc:  # start-up: the broker is unreachable
        raise _fail(
            "publish", f"cannot publish to Kafka at {settings.bootstrap}: {exc}", EXIT_FAILED
        ) from None
    summary = {
        "topic": chosen.value,
        "published": result.published,
        "failed": result.failed,
        "skipped_invalid": len(prepared.invalid),
        "error": result.error,
    }
    if as_json:
        typer.echo(json.dumps(summary))
    else:
        skipped = f" ({len(prepared.invalid)} invalid line(s) skipped)" if prepared.invalid else ""
        typer.echo(f"published {result.published} message(s) to {chosen.value}{skipped}")
    if result.error is not None:
        raise _fail(
            "publish",
            f"{result.failed} message(s) not acknowledged ({result.error}); publishing the same "
            "file again is safe",
            EXIT_FAILED,
        )


def _lines(file: str) -> Iterator[bytes]:
    if file == "-":
        yield from sys.stdin.buffer
        return
    with Path(file).open("rb") as handle:
        yield from handle


# ---------------------------------------------------------------------------------------------
# replay


def _instant(option: str, text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not an ISO 8601 time, like 2026-11-02T09:00:00+01:00",
            param_hint=option,
        ) from None
    if at.tzinfo is None:
        raise typer.BadParameter(
            f"{text!r} has no offset; add one (Z or +01:00) so the instant is unambiguous",
            param_hint=option,
        )
    return at


@app.command(
    epilog="Exit status: 0 done; 2 bad options; 1 Kafka or the database failed part-way (what "
    "was applied stays applied; running it again is safe); 130 interrupted."
)
def replay(
    topic: Annotated[
        list[str],
        typer.Option(
            "--topic",
            "-t",
            help="Input topic (or short name) to replay; repeat for several, or 'all'.",
        ),
    ],
    from_beginning: Annotated[
        bool, typer.Option("--from-beginning", help="From the oldest record kept.")
    ] = False,
    from_datetime: Annotated[
        str | None,
        typer.Option(
            "--from-datetime",
            metavar="ISO",
            help="From the first record whose Kafka timestamp is at or after this time.",
        ),
    ] = None,
    from_offset: Annotated[
        int | None,
        typer.Option("--from-offset", min=0, help="From this offset on every partition."),
    ] = None,
    to_offset: Annotated[
        int | None,
        typer.Option(
            "--to-offset", min=0, help="Stop before this offset on every partition (exclusive)."
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            "--until",
            metavar="ISO",
            help="Stop before the first record whose Kafka timestamp is at or after this time.",
        ),
    ] = None,
    partition: Annotated[
        list[int] | None,
        typer.Option("--partition", "-p", min=0, help="Only this partition; repeat for several."),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Report what would change and write nothing: the range is applied in one "
            "transaction that is rolled back, so the counts are the real replay's. It holds a "
            "lock per order until it ends and takes at most a quarter of PostgreSQL's lock "
            "table: on a longer range it stops early and says where.",
        ),
    ] = False,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, max=10000, help="Records per transaction.")
    ] = 1000,
    as_json: JsonFlag = False,
    progress: Annotated[
        bool, typer.Option("--progress/--no-progress", help="A progress bar on a terminal.")
    ] = True,
) -> None:
    """Reprocess a range of input topics through the workers' own path; applies nothing twice.

    The range ends at the topics' end offsets taken when it starts, so it terminates on a
    busy topic. Records are applied in batches like the worker does: events already
    processed count as duplicates, and a dead letter already written for a record is not
    written again. No consumer group is used: the workers' offsets do not move.

    Records of all partitions and topics are applied in the order of their Kafka timestamps
    (the time they were published, not their occurred_at). Replay together the topics whose
    events depend on each other (`--topic all` to rebuild): a purchase replayed before the
    enrolment of its card is rejected, and stays so.

    Prints the counts of applied, duplicate, rejected, held and dead-lettered events.
    """
    from consumers.replay import From, ReplayError, Until
    from consumers.replay import replay as run

    starts = [from_beginning, from_datetime is not None, from_offset is not None]
    if sum(starts) != 1:
        raise typer.BadParameter(
            "give exactly one of --from-beginning, --from-datetime ISO, --from-offset N",
            param_hint="--from-*",
        )
    chosen = list(INPUT_TOPICS) if "all" in topic else [input_topic(t) for t in topic]
    topics = list(dict.fromkeys(chosen))
    start = From(
        beginning=from_beginning,
        offset=from_offset,
        at=_instant("--from-datetime", from_datetime),
    )
    stop = Until(offset=to_offset, at=_instant("--until", until))
    settings = get_settings()
    with _progress_bar(progress and not as_json) as bar:
        try:
            report = _run_until_signal(
                lambda cancelled: run(
                    settings,
                    topics,
                    start,
                    stop,
                    partitions=partition or None,
                    dry_run=dry_run,
                    batch_size=batch_size,
                    on_plan=lambda planned: bar.start(planned.planned),
                    on_progress=bar.update,
                    cancelled=cancelled,
                )
            )
        except ReplayError as exc:
            bar.close()
            if exc.report is not None:
                _print_replay(exc.report.as_dict(), as_json)
            raise _fail("replay", str(exc), EXIT_FAILED if exc.report else EXIT_INPUT) from None
        except OSError as exc:  # connection refused: Kafka or PostgreSQL away
            raise _fail("replay", f"cannot connect: {exc}", EXIT_FAILED) from None
        except Exception as exc:
            if type(exc).__module__.startswith("aiokafka"):
                raise _fail(
                    "replay", f"Kafka at {settings.bootstrap}: {exc!r}", EXIT_FAILED
                ) from None
            raise
    _print_replay(report.as_dict(), as_json)
    if report.interrupted:
        raise _fail("replay", "interrupted; the counts above are what was done", EXIT_INTERRUPTED)


def _print_replay(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(summary))
        return
    parts = sum(len(p) for p in summary["ranges"].values())
    what = "dry run over" if summary["dry_run"] else "replayed"
    # Offsets planned: records, unless the log has gaps (compaction, transaction markers).
    of = f" of {summary['planned']}" if summary["records"] < summary["planned"] else ""
    typer.echo(
        f"{what} {summary['records']}{of} record(s) of {', '.join(summary['topics'])} "
        f"({parts} partition(s)) in {summary['seconds']:.1f} s"
    )
    for label, key in (
        ("applied", "applied"),
        ("duplicate", "duplicate"),
        ("rejected", "rejected"),
        ("held", "held"),
        ("dead-lettered", "dead_lettered"),
    ):
        typer.echo(f"  {label:<14}{summary[key]:>10}")
    if summary["retried_one_by_one"]:
        typer.echo(f"  ({summary['retried_one_by_one']} record(s) retried one by one)")
    if summary["dry_run"] and summary["dry_run_stopped_at"]:
        typer.echo(
            f"dry run: nothing was written; it stopped at {summary['dry_run_stopped_at']}, "
            "before holding more than its share of PostgreSQL's locks: the counts cover the "
            "records before that (shorten the range with --until, or raise "
            "max_locks_per_transaction)"
        )
    elif summary["dry_run"]:
        typer.echo("dry run: nothing was written")


class _Bar:
    """A rich progress bar on stderr, or nothing when stderr is no terminal."""

    def __init__(self, enabled: bool) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("replaying"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=not (enabled and console.is_terminal),
            transient=True,
        )
        self.task: Any = None

    def start(self, total: int) -> None:
        self.progress.start()
        self.task = self.progress.add_task("replay", total=total)

    def update(self, done: int) -> None:
        if self.task is not None:
            self.progress.update(self.task, completed=done)

    def close(self) -> None:
        self.progress.stop()


@contextmanager
def _progress_bar(enabled: bool) -> Iterator[_Bar]:
    bar = _Bar(enabled)
    try:
        yield bar
    finally:
        bar.close()


# ---------------------------------------------------------------------------------------------
# simulate


@app.command(
    epilog="Exit status: 0 stopped; 2 unknown merchant or unreadable demo file; "
    "1 Kafka or the database away."
)
def simulate(
    rate: Annotated[
        float, typer.Option("--rate", min=0.01, max=5000.0, help="Events per second.")
    ] = 5.0,
    duration: Annotated[
        float | None,
        typer.Option("--duration", min=0.1, help="Seconds to run (default: until Ctrl-C)."),
    ] = None,
    merchant: Annotated[
        list[str] | None,
        typer.Option(
            "--merchant",
            "-m",
            help="Only this merchant's code; repeat for several (default: the demo file's).",
        ),
    ] = None,
    demo_file: Annotated[
        Path | None,
        typer.Option(
            "--demo-file",
            dir_okay=False,
            help="The provisioning file whose merchants get traffic without --merchant "
            "(default: demo/demo.yaml).",
        ),
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Seed of the random choices (reproducible).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Publish realistic traffic for the demo merchants, with occurred_at = now.

    Only the merchants of demo/demo.yaml (what make run provisions) get traffic, or those
    named with --merchant: never the other merchants of the database. New customers enrol,
    customers buy (mostly with their cards), now and then return part of an order, and
    redeem when their card likely holds enough; a few purchases name an unknown card, as
    tills do. Stores, programs, rewards and cards are read from the database, again every
    15 s. Stops on Ctrl-C, SIGTERM or after --duration, then prints what it published.
    While none of the demo merchants is provisioned yet, it waits for them.
    """
    from consumers.simulate import (
        DEMO_FILE,
        DemoFileError,
        SimulationError,
        UnknownMerchants,
        choose_merchants,
    )
    from consumers.simulate import simulate as run

    settings = get_settings()
    try:
        choice = choose_merchants(merchant or [], demo_file or DEMO_FILE)
    except DemoFileError as exc:
        raise _fail("simulate", str(exc), EXIT_INPUT) from None
    origin = "named with --merchant" if choice.named else f"of {choice.source}"

    def waiting() -> None:
        typer.echo(
            f"loyalty simulate: none of the merchants {origin} ({', '.join(choice.codes)}) "
            "has a store and an active program yet (loyalty provision FILE); waiting",
            err=True,
        )

    def starting(codes: list[str]) -> None:
        # Said on every start, so nobody wonders whose tills the traffic goes to.
        typer.echo(f"loyalty simulate: sending to {', '.join(codes)} ({origin})", err=True)

    try:
        report = _run_until_signal(
            lambda stop: run(
                settings,
                rate,
                merchants=choice,
                duration=duration,
                seed=seed,
                stop=stop,
                on_waiting=waiting,
                on_start=starting,
            )
        )
    except SimulationError as exc:
        code = EXIT_INPUT if isinstance(exc, UnknownMerchants) else EXIT_FAILED
        raise _fail("simulate", str(exc), code) from None
    except OSError as exc:
        raise _fail("simulate", f"cannot connect: {exc}", EXIT_FAILED) from None
    summary = report.as_dict()
    if as_json:
        typer.echo(json.dumps(summary))
        return
    by_type = summary["by_type"]
    typer.echo(
        f"published {summary['published']} event(s) in {summary['seconds']:.1f} s "
        f"({summary['rate']}/s): {by_type['purchase.completed']} purchase(s), "
        f"{by_type['enrollment.requested']} enrolment(s), {by_type['purchase.returned']} "
        f"return(s), {by_type['reward.redeem_requested']} redemption(s)"
        + (f"; {summary['failed']} failed" if summary["failed"] else "")
    )
