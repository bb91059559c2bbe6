"""``python -m bench.profile_engine``: where a batch's time goes, without Kafka.

Runs ``consumers.pipeline.apply_records`` (the worker's own path: parse, rules, SQL, one
transaction per batch) in this process on purchases built in memory, over a fresh database
``loyalty_bench_profile`` of the bench stack. Every SQL statement is timed as the client sees
it (send, server work, reply); the Python side is profiled with cProfile in a second pass.
Prints wall time per batch, the statements by total time, and the Python functions by own
time, grouped by module.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import io
import os
import pstats
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import asyncpg

from bench.environment import Stack, bench_settings, seed, stack_down, stack_up
from bench.processes import rss_mb
from bench.workload import Event, Workload
from consumers.pipeline import apply_records
from consumers.worker import GC_YOUNG_OBJECTS
from core.logs import configure_logging
from core.memory import keep_freed_memory
from core.settings import with_database
from loyalty import migrate

DATABASE = "loyalty_bench_profile"


@dataclass(slots=True)
class Record:
    """What the pipeline reads of a Kafka record (``RecordLike``)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def on_cpu_ns(pid: int) -> int:
    """Nanoseconds a process has run on a CPU (``/proc/<pid>/schedstat``, ns resolution)."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])


class SqlTimes:
    """Per statement (its first words): calls, wall time seen by the client, and the CPU
    the PostgreSQL backend spent on it (its process is ours alone while a statement runs)."""

    def __init__(self, backend: int) -> None:
        self.backend = backend
        self.seconds: dict[str, float] = defaultdict(float)
        self.server_cpu: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    def add(self, sql: str, seconds: float, cpu_ns: int) -> None:
        """Count one call."""
        label = " ".join(sql.split())[:80]
        self.seconds[label] += seconds
        self.server_cpu[label] += cpu_ns / 1e9
        self.calls[label] += 1

    @property
    def total(self) -> float:
        """Wall seconds over every statement."""
        return sum(self.seconds.values())

    @property
    def total_cpu(self) -> float:
        """Backend CPU seconds over every statement."""
        return sum(self.server_cpu.values())


class TimedConnection:
    """An asyncpg connection whose statements are timed; everything else passes through."""

    def __init__(self, conn: asyncpg.Connection, times: SqlTimes) -> None:
        self._conn = conn
        self._times = times

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    async def _timed(self, label: str, method: str, *args: Any, **kwargs: Any) -> Any:
        backend = self._times.backend
        cpu, start = on_cpu_ns(backend), time.perf_counter()
        try:
            return await getattr(self._conn, method)(*args, **kwargs)
        finally:
            wall = time.perf_counter() - start
            self._times.add(label, wall, on_cpu_ns(backend) - cpu)

    async def fetch(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        return await self._timed(sql, "fetch", sql, *args, **kwargs)

    async def fetchrow(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        return await self._timed(sql, "fetchrow", sql, *args, **kwargs)

    async def fetchval(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        return await self._timed(sql, "fetchval", sql, *args, **kwargs)

    async def execute(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        return await self._timed(sql, "execute", sql, *args, **kwargs)

    async def copy_records_to_table(self, table: str, **kwargs: Any) -> Any:
        return await self._timed(f"COPY {table}", "copy_records_to_table", table, **kwargs)

    def transaction(self, **kwargs: Any) -> Any:
        return _TimedTransaction(self._conn.transaction(**kwargs), self._times)


class _TimedTransaction:
    def __init__(self, tx: Any, times: SqlTimes) -> None:
        self._tx = tx
        self._times = times

    async def __aenter__(self) -> None:
        backend = self._times.backend
        cpu, start = on_cpu_ns(backend), time.perf_counter()
        await self._tx.__aenter__()
        self._times.add("BEGIN", time.perf_counter() - start, on_cpu_ns(backend) - cpu)

    async def __aexit__(self, *exc: Any) -> None:
        backend = self._times.backend
        cpu, start = on_cpu_ns(backend), time.perf_counter()
        await self._tx.__aexit__(*exc)
        self._times.add("COMMIT", time.perf_counter() - start, on_cpu_ns(backend) - cpu)


class TimedPool:
    """A one-connection stand-in for the pool ``apply_records`` takes."""

    def __init__(self, conn: asyncpg.Connection, times: SqlTimes) -> None:
        self._conn = TimedConnection(conn, times)

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[TimedConnection]:
        yield self._conn


async def _fresh(stack: Stack) -> str:
    admin = await asyncpg.connect(with_database(stack.settings.db_url, "postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await admin.close()
    url = with_database(stack.settings.db_url, DATABASE)
    await asyncio.to_thread(migrate.upgrade, url)
    return url


def _records(events: Sequence[Event], first_offset: int) -> list[Record]:
    return [Record(e.topic, 0, first_offset + i, e.key, e.value) for i, e in enumerate(events)]


def _batches(workload: Workload, batches: int, size: int, prefix: str) -> list[list[Record]]:
    # Built before the clock starts: building them is the producer's work, not the engine's.
    return [_records(workload.batch(size, f"{prefix}{b}"), b * size) for b in range(batches)]


async def _run_batches(pool: TimedPool, batches: list[list[Record]]) -> list[float]:
    walls: list[float] = []
    for n, records in enumerate(batches):
        start = time.perf_counter()
        counts = await apply_records(cast(asyncpg.Pool, pool), records)
        walls.append(time.perf_counter() - start)
        if counts.applied != len(records):
            raise RuntimeError(f"batch {n}: {counts.as_dict()}")
    return walls


def _stat(pid: int) -> list[str]:
    """The fields of ``/proc/<pid>/stat`` after the command's name (the process's state first)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def minor_faults(pid: int) -> int:
    """Page faults served without I/O so far: memory touched afresh, which costs microseconds
    each in a virtual machine."""
    return int(_stat(pid)[7])


def cpu_seconds(pid: int) -> float:
    """User plus system CPU of a process so far."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _print_sql(times: SqlTimes, events: int) -> None:
    print(
        f"\nSQL by PostgreSQL CPU: {times.total_cpu / events * 1e6:.0f} us/event of backend CPU, "
        f"{times.total / events * 1e6:.0f} us/event of wall time the engine waits:"
    )
    print("  CPU us/ev  wall us/ev   calls  statement")
    for label, cpu in sorted(times.server_cpu.items(), key=lambda kv: -kv[1]):
        wall = times.seconds[label]
        print(
            f"  {cpu / events * 1e6:9.1f}  {wall / events * 1e6:10.1f}  {times.calls[label]:6d}"
            f"  {label}"
        )


def _print_python(profile: cProfile.Profile, events: int, limit: int) -> None:
    by_module: dict[str, float] = defaultdict(float)
    raw = profile_stats(profile)
    for (filename, _, _), (_, _, tottime, _, _) in raw.items():
        by_module[_module(filename)] += tottime
    total = sum(by_module.values())
    print(
        f"\nPython own time by module under cProfile ({total:.2f} s, inflated by the "
        "profiler; compare shares, not totals):"
    )
    for module, seconds in sorted(by_module.items(), key=lambda kv: -kv[1])[:limit]:
        print(f"  {seconds:7.3f} s  {100 * seconds / total:5.1f} %  {module}")
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(30)
    print("\nTop functions by own time:")
    print("\n".join(out.getvalue().splitlines()[6:40]))


def _module(filename: str) -> str:
    for marker in ("site-packages/", "/work/main/", "python3.11/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


# The engine's stages, as cProfile names them: (file suffix, function).
_STAGES = (
    ("consumers/pipeline.py", "parse"),
    ("domain/engine/batch.py", "process_batch"),
    ("domain/engine/batch.py", "load"),
    ("domain/engine/batch.py", "apply"),
    ("domain/engine/batch.py", "change"),
    ("domain/engine/batch.py", "finish"),
    ("domain/engine/outputs.py", "result_message"),
    ("domain/engine/outputs.py", "wallet_message"),
    ("domain/engine/state.py", "stamp_history"),
    ("domain/rules/earn.py", "decide_purchase"),
    ("domain/engine/writes.py", "flush"),
    ("domain/engine/writes.py", "_columns"),
    ("streams/inputs.py", "_exactly_one"),
    ("streams/inputs.py", "kind"),
    ("streams/inputs.py", "value"),
    ("uuid.py", "uuid4"),
)


def _print_stages(profile: cProfile.Profile) -> None:
    raw = cast(dict[tuple[str, int, str], tuple[Any, ...]], profile_stats(profile))
    top = next(
        (v[3] for k, v in raw.items() if k[0].endswith("pipeline.py") and k[2] == "apply_records"),
        0.0,
    )
    print("\nStages, cumulative time under cProfile, share of apply_records:")
    for suffix, name in _STAGES:
        for (filename, _, func), (_, calls, _, cumtime, _) in raw.items():
            if func == name and filename.endswith(suffix):
                share = 100 * cumtime / top if top else 0.0
                print(f"  {cumtime:7.3f} s  {share:5.1f} %  {calls:7d} calls  {suffix}:{name}")


def profile_stats(profile: cProfile.Profile) -> dict[Any, Any]:
    """The raw table of a profile: {(file, line, function): (cc, nc, tottime, cumtime, callers)}."""
    stats: dict[Any, Any] = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    return stats


_TABLE_STATS = """
SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_dead_tup FROM pg_stat_user_tables
WHERE relname IN ('loyalty_cards', 'processed_events', 'purchases', 'ledger_entries', 'outbox',
                  'ledger_daily_totals', 'card_daily_counts')
ORDER BY relname
"""


async def _variant(conn: asyncpg.Connection, args: argparse.Namespace) -> list[str]:
    """Experiments on the profile database only: what a schema change would save."""
    applied = []
    if args.without_stats_triggers:
        for table in ("ledger_entries", "loyalty_cards"):
            for trigger in await conn.fetch(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = $1::regclass "
                "AND tgname LIKE 'stats_%'",
                table,
            ):
                await conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER {trigger[0]}")
        applied.append("statistics triggers disabled")
    if args.outbox_storage:
        for column in ("keys", "payloads"):
            await conn.execute(
                f"ALTER TABLE outbox ALTER COLUMN {column} SET STORAGE {args.outbox_storage}"
            )
        applied.append(f"outbox storage {args.outbox_storage}")
    if args.outbox_compression:
        method = args.outbox_compression
        for column in ("keys", "payloads"):
            await conn.execute(f"ALTER TABLE outbox ALTER COLUMN {column} SET COMPRESSION {method}")
        applied.append(f"outbox compression {args.outbox_compression}")
    if args.cards_fillfactor:
        await conn.execute(f"ALTER TABLE loyalty_cards SET (fillfactor = {args.cards_fillfactor})")
        await conn.execute("VACUUM FULL loyalty_cards")
        applied.append(f"loyalty_cards fillfactor {args.cards_fillfactor}")
    return applied


WARMUP_EVENTS = 20_000


async def _profile(stack: Stack, args: argparse.Namespace) -> None:
    cards, batches, size = args.cards, args.batches, args.size
    url = await _fresh(stack)
    await seed(url, stack.settings, cards)
    conn = await asyncpg.connect(url)
    try:
        variants = await _variant(conn, args)
        workload = Workload(cards)
        backend = conn.get_server_pid()
        # Warm-up (statement caches, planning) as the benchmark's: 20,000 events first, then
        # the statistics a live database's autovacuum keeps. Planned on the fresh database's
        # empty tables (the inbox, the purchases, the months of activity), the cached plans
        # scanned them whole, and in a short profile the tables grow faster than autovacuum
        # comes round (~7 ms per batch of 30 cards, measured); ANALYZE invalidates them.
        warmup = max(2, WARMUP_EVENTS // size)
        await _run_batches(
            TimedPool(conn, SqlTimes(backend)), _batches(workload, warmup, size, "w")
        )
        await conn.execute("ANALYZE")
        await conn.execute("SELECT pg_stat_reset()")
        work = _batches(workload, batches, size, "a")
        # The worker's garbage collection (``consumers.worker``): what exists now frozen, young
        # collections every GC_YOUNG_OBJECTS. At Python's default the collector walked the
        # batches built above over and over: 12.7 % of this process's samples (py-spy
        # --native, 2026-12-07), timed as the engine's.
        gc.collect()
        gc.freeze()
        gc.set_threshold(GC_YOUNG_OBJECTS, 10, 10)
        times = SqlTimes(backend)
        rss_before = rss_mb(os.getpid())
        cpu, pg_cpu = time.process_time(), cpu_seconds(backend)
        faults, pg_faults = minor_faults(os.getpid()), minor_faults(backend)
        walls = await _run_batches(TimedPool(conn, times), work)
        cpu, pg_cpu = time.process_time() - cpu, cpu_seconds(backend) - pg_cpu
        faults, pg_faults = minor_faults(os.getpid()) - faults, minor_faults(backend) - pg_faults
        events = batches * size
        wall = sum(walls)
        print(
            f"\n{batches} batches of {size} purchases over {cards:,} cards, no Kafka"
            + (f" ({', '.join(variants)})" if variants else "")
            + ":"
        )
        print(
            f"  wall {wall:.2f} s = {events / wall:,.0f} events/s; "
            f"{wall / batches * 1000:.0f} ms/batch (min {min(walls) * 1000:.0f}, "
            f"max {max(walls) * 1000:.0f})"
        )
        print(
            f"  CPU: engine (this process) {cpu:.2f} s = {cpu / events * 1e6:.0f} us/event; "
            f"PostgreSQL backend {pg_cpu:.2f} s = {pg_cpu / events * 1e6:.0f} us/event"
        )
        print(
            f"  one core each, CPU alone would allow {events / cpu:,.0f} events/s (engine) "
            f"and {events / pg_cpu if pg_cpu else float('nan'):,.0f} events/s (PostgreSQL)"
        )
        print(
            f"  page faults per event: engine {faults / events:.2f}, "
            f"PostgreSQL backend {pg_faults / events:.2f}"
        )
        print(
            f"  this process's RSS: {rss_before:.0f} MB before these batches, "
            f"{rss_mb(os.getpid()):.0f} MB after (its input was built before both readings)"
        )
        _print_sql(times, events)
        await asyncio.sleep(0.6)  # the statistics collector reports every half second
        print("\nTable activity (pg_stat_user_tables) for these batches:")
        print(f"  {'table':<22}{'inserted':>10}{'updated':>10}{'HOT':>10}{'dead':>10}")
        for r in await conn.fetch(_TABLE_STATS):
            print(f"  {r[0]:<22}{r[1]:>10}{r[2]:>10}{r[3]:>10}{r[4]:>10}")
        if args.no_cprofile:
            return
        profile = cProfile.Profile()
        work = _batches(workload, batches, size, "p")
        profile.enable()
        await _run_batches(TimedPool(conn, SqlTimes(backend)), work)
        profile.disable()
        _print_stages(profile)
        _print_python(profile, events, 25)
    finally:
        await conn.close()


def main() -> None:
    """Profile ``--batches`` batches of ``--size`` purchases."""
    parser = argparse.ArgumentParser(prog="python -m bench.profile_engine", description=__doc__)
    parser.add_argument("--cards", type=int, default=100_000)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--keep-stack", action="store_true")
    parser.add_argument("--no-cprofile", action="store_true", help="skip the Python profile")
    parser.add_argument(
        "--without-stats-triggers",
        action="store_true",
        help="experiment: disable the statistics triggers in the profile database",
    )
    parser.add_argument(
        "--cards-fillfactor",
        type=int,
        help="experiment: loyalty_cards fillfactor (HOT updates) in the profile database",
    )
    parser.add_argument(
        "--outbox-storage",
        choices=["plain", "external", "extended", "main"],
        help="experiment: STORAGE of the outbox's packed columns in the profile database",
    )
    parser.add_argument(
        "--outbox-compression",
        choices=["pglz", "lz4"],
        help="experiment: COMPRESSION of the outbox's packed columns in the profile database",
    )
    args = parser.parse_args()
    configure_logging("WARNING")
    keep_freed_memory()  # as the worker does (``loyalty worker``)
    stack = stack_up(bench_settings())
    try:
        asyncio.run(_profile(stack, args))
    finally:
        if stack.started_here and not args.keep_stack:
            stack_down(stack)


if __name__ == "__main__":
    main()
