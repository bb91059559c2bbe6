"""``python -m bench`` (``make bench``): the pipeline benchmark, then the statistics one.

The pipeline benchmark brings the ``bench`` local stack up (``LOYALTY_STACK`` names another),
runs on a fresh ``loyalty_bench`` database, prints its figures against their targets and
writes them to ``bench/results/latest.json``. ``--skip-stats`` leaves out ``stats_bench``,
whose data load is long; ``--skip-pipeline`` runs only that one.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from bench import pyspy
from bench.environment import Stack, bench_settings, stack_down, stack_up
from bench.pipeline_bench import Options, PipelineBench, say
from bench.report import Report, render_statements, render_table
from core.logs import configure_logging
from core.settings import REPO_ROOT

STATS_BENCH = REPO_ROOT / "bench" / "stats_bench.py"

QUICK = {
    "events": 10_000,
    "cards": 5_000,
    "single_events": 1_000,
    "warmup_events": 2_000,
    "line_events": 5_000,
    "two_worker_events": 5_000,
    "broker_warmup": 0,
    "latency_rate": 2_000,
    "latency_seconds": 5.0,
    "timeout": 180.0,
    "single_seconds": 60.0,
}


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    defaults = Options()
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--events",
        type=int,
        help=f"purchases for throughput and replay "
        f"(default {defaults.events:,}; --quick {QUICK['events']:,})",
    )
    parser.add_argument("--cards", type=int, help=f"cards seeded (default {defaults.cards:,})")
    parser.add_argument(
        "--single-events",
        type=int,
        help=f"purchases for the one-transaction-per-event run "
        f"(default {defaults.single_events:,})",
    )
    parser.add_argument(
        "--warmup-events",
        type=int,
        help=f"purchases through the pipeline before the measured runs, not counted "
        f"(default {defaults.warmup_events:,}; 0: none)",
    )
    parser.add_argument(
        "--line-events",
        type=int,
        help=f"purchases of three line items with one campaign active, after the other "
        f"phases (default {defaults.line_events:,}; --quick {QUICK['line_events']:,}; 0: none)",
    )
    parser.add_argument(
        "--two-worker-events",
        type=int,
        help=f"purchases for two workers in one group, after the line items "
        f"(default {defaults.two_worker_events:,}; --quick {QUICK['two_worker_events']:,}; "
        f"0: none)",
    )
    parser.add_argument(
        "--broker-warmup",
        type=int,
        help=f"records produced to a scratch topic and read back first, to warm the broker's "
        f"JVM (default {defaults.broker_warmup:,}; --quick 0)",
    )
    parser.add_argument(
        "--latency-rate",
        type=int,
        help=f"events/s offered in the latency run (default {defaults.latency_rate:,})",
    )
    parser.add_argument(
        "--latency-seconds",
        type=float,
        help=f"length of the latency run (default {defaults.latency_seconds:.0f})",
    )
    parser.add_argument(
        "--keep-dirty-pages",
        action="store_true",
        help="do not write out the earlier phases' dirty pages before the latency run",
    )
    parser.add_argument(
        "--single-seconds",
        type=float,
        help="cap of the one-transaction-per-event run; its rate is then that of the results "
        f"so far (default {defaults.single_seconds:.0f})",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        help=f"seconds any one phase may take (default {defaults.timeout:.0f})",
    )
    parser.add_argument(
        "--quick", action="store_true", help="small sizes: a smoke run of a few minutes"
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=defaults.json_path,
        help="where to write the figures (default bench/results/latest.json)",
    )
    parser.add_argument(
        "--keep-stack", action="store_true", help="leave the stack running when this run started it"
    )
    parser.add_argument(
        "--py-spy",
        action="store_true",
        help="sample the worker and the relay during the throughput run (needs py-spy)",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument(
        "--skip-stats",
        action="store_true",
        help="do not run bench/stats_bench.py (its data load is long)",
    )
    parser.add_argument(
        "--skip-pipeline", action="store_true", help="run only bench/stats_bench.py"
    )
    return parser.parse_args(argv)


def _options(args: argparse.Namespace) -> Options:
    base = Options(
        quick=args.quick,
        json_path=args.json,
        py_spy=args.py_spy,
        flush_before_latency=not args.keep_dirty_pages,
    )
    if args.quick:
        for name, value in QUICK.items():
            setattr(base, name, value)
    sizes = ("events", "cards", "single_events", "single_seconds", "latency_rate",
             "latency_seconds", "timeout", "warmup_events", "broker_warmup",
             "line_events", "two_worker_events")  # fmt: skip
    for name in sizes:
        value = getattr(args, name)
        if value is not None:
            setattr(base, name, value)
    if base.events < 1 or base.cards < 1 or base.single_events < 1 or base.latency_rate < 1:
        raise SystemExit("python -m bench: sizes and rates must be at least 1")
    if base.py_spy and pyspy.executable() is None:
        raise SystemExit("python -m bench: --py-spy needs py-spy (uv pip install py-spy)")
    return base


async def _run_pipeline(options: Options, stack: Stack) -> Report:
    task = asyncio.current_task()
    assert task is not None
    # SIGTERM like Ctrl-C: cancel, so every phase's `finally` stops its processes.
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    # Kafka clients bind to the running loop: built inside it.
    return await PipelineBench(options, stack).run()


def _print(report: Report, options: Options) -> None:
    print()
    print(render_table(report.figures))
    print()
    start, end = report.params["load_average_at_start"], report.params["load_average_at_end"]
    print(
        f"{os.cpu_count()} CPUs; load average {start[0]:.1f} at the start, {end[0]:.1f} at the "
        "end: other work on this machine slows the wall-clock figures, not the CPU ones."
    )
    statements = report.details.get("postgres_statements")
    if statements:
        print(f"\n{render_statements(statements)}")
    if "py_spy_text" in report.details:
        print(f"\n{report.details['py_spy_text']}\n")
    print(f"written to {options.json_path}")


def run_stats(stack: Stack, quick: bool) -> int:
    """``python -m bench.stats_bench`` in a process of its own; its exit code."""
    if not STATS_BENCH.exists():
        say("no bench/stats_bench.py: statistics benchmark skipped")
        return 0
    say("statistics benchmark: python -m bench.stats_bench")
    env = dict(os.environ, LOYALTY_STACK=stack.settings.stack)
    command = [sys.executable, "-m", "bench.stats_bench", *(["--quick"] if quick else [])]
    return subprocess.run(command, env=env, cwd=REPO_ROOT, check=False).returncode


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks; 0 unless one failed to run (or, with ``--strict``, missed a target).

    The stack is brought up once for both, and stopped at the end if this run started it.
    """
    args = _arguments(argv)
    options = _options(args)
    configure_logging("WARNING")
    signal.signal(signal.SIGTERM, _interrupt)
    settings = bench_settings()
    say(f"stack {settings.stack}: Kafka {settings.bootstrap}, PostgreSQL {settings.db_url}")
    stack = stack_up(settings)
    status = 0
    try:
        if not args.skip_pipeline:
            report = asyncio.run(_run_pipeline(options, stack))
            signal.signal(signal.SIGTERM, _interrupt)  # asyncio.run reset it
            report.write_json(options.json_path)
            _print(report, options)
            if args.strict and not report.all_passed:
                status = 1
        if not args.skip_stats:
            status = run_stats(stack, args.quick) or status
    except (KeyboardInterrupt, asyncio.CancelledError):
        say("interrupted: processes stopped")
        status = 130
    finally:
        if not args.keep_stack and stack.started_here:
            say(f"stopping the {settings.stack} stack this run started (--keep-stack keeps it)")
            stack_down(stack)
    return status


if __name__ == "__main__":
    sys.exit(main())
