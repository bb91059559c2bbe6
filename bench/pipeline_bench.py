"""The pipeline benchmark: the real worker and relay processes against the ``bench`` stack.

Phases, in this order, on one fresh database (``loyalty_bench``) seeded with one merchant,
one store, a hybrid program and ``cards`` cards:

0. warm-up, not measured: ``broker_warmup`` records produced to a scratch topic and read back
   (the broker's JVM compiles its hot paths over the first million), then ``warmup_events``
   purchases through a worker of its own group and the relay, so PostgreSQL's cache and the
   relay run warm too, as in production.
1. throughput: ``events`` purchases are published before the worker starts (a fresh consumer
   group positioned at the end of the input topics first); one worker and one relay then
   process them. Measured from the worker's start (process spawn, so imports, group join and
   first fetch count) to the moment the last distinct ``source_event_id`` is read from
   ``loyalty.results.v1``.
2. replay: ``consumers.replay`` (what ``loyalty replay --from-datetime`` runs), in a process
   of its own, reads phase 1's events again; every one is a duplicate. Measured from the
   process's start to its exit. Nothing may be applied twice or published: the bench checks.
3. latency: the worker of phase 1, caught up, gets purchases at ``latency_rate`` events/s for
   ``latency_seconds``; each event carries its producer timestamp as ``occurred_at``, and
   its latency is the time its result is read minus that timestamp. The earlier phases'
   writes still in the page cache are written out first (``os.sync``), so their write-back
   does not land inside this run; ``--keep-dirty-pages`` leaves them.
4. line items: ``line_events`` purchases of three lines (coffee, pastry, food) with one
   campaign active (double points on pastries, a bonus from 15 EUR), on a worker of a group
   of their own, measured as in phase 1.
5. two workers: ``two_worker_events`` purchases over the same cards, published first, then two
   workers of one new group (the input partitions shared between them) and the relay,
   measured as in phase 1 from the first worker's start; their CPU adds up under "worker".
6. one transaction per event: the same worker with ``LOYALTY_BATCH_MAX_RECORDS=1`` on
   ``single_events`` new purchases, measured as in phase 1 but stopped after
   ``single_seconds`` (its rate is then that of the results so far).

The worker's peak memory is ``VmHWM`` of every worker process, read before it stops; its RSS
is also sampled every second. Wall-clock rates depend on what else the machine runs, so the
CPU time of every process (worker, relay, PostgreSQL, Kafka, from ``/proc``) is measured
too: CPU microseconds per event, and the rate they would allow on idle cores.
``--py-spy`` samples the worker and the relay during phase 1 (``bench/pyspy.py``);
``python -m bench.profile_engine`` takes the engine apart statement by statement.

Long (about 760 lines) because the phases share one run's processes, clocks and report; each
phase is a method of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import resource
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer

from bench.cpu import CpuMeter, Snapshot, children, used
from bench.environment import Stack, fresh_database, seed
from bench.kafka_io import (
    INPUT_TOPIC_NAMES,
    ResultReader,
    Watch,
    bulk_producer,
    commit_group,
    end_offsets,
    live_producer,
    publish_all,
    warm_broker,
)
from bench.processes import Processes, rss_mb
from bench.pyspy import Sampler, render, summarize
from bench.report import Figure, Report, percentile
from bench.workload import Workload
from core.settings import REPO_ROOT, Settings
from loyalty.stack import LocalStack

RESULTS_DIR = REPO_ROOT / "bench" / "results"
LOG_DIR = RESULTS_DIR / "logs"

# What FastStream logs once the worker's consumer has joined its group.
_WORKER_STARTED = "FastStream app started successfully"

# The hot-path issue's targets (two cores, everything on them): events/s with batches, CPU
# per event across every process, latency p99 at 2,000 events/s, replay of duplicates.
THROUGHPUT_TARGET = 15_000.0
CPU_TARGET_US = 120.0
P99_TARGET_MS = 100.0
REPLAY_TARGET = 40_000.0
RATIO_TARGET = 10.0  # batches vs one transaction per event
RSS_TARGET_MB = 300.0

FIGURE_ORDER = (
    "throughput, batches",
    "throughput, 3 line items + campaign",
    "throughput, 2 workers",
    "throughput, one transaction per event",
    "batches vs one per event",
    "CPU per event, batches",
    "CPU-bound ceiling, batches",
    "CPU per event, one per event",
    "CPU-bound ceiling, one per event",
    "latency p50, publish to result",
    "latency p95, publish to result",
    "latency p99, publish to result",
    "replay, all duplicates",
    "worker peak RSS (VmHWM)",
)


@dataclass
class Options:
    """What to run, and how big."""

    events: int = 200_000
    cards: int = 100_000
    single_events: int = 20_000
    # Run through the whole pipeline first, not measured: a broker just started compiles its
    # hot paths meanwhile (measured: Kafka 60-180 us of CPU per event on a fresh broker,
    # 12-15 on a warm one), and a production broker is long warm.
    warmup_events: int = 20_000
    # Purchases with three line items and one active campaign (CONTRACT.md 7.1), on a worker
    # of their own after the other phases. 0: none.
    line_events: int = 100_000
    # Purchases for two workers in one group (the partitions shared), after the line items.
    # 0: none.
    two_worker_events: int = 100_000
    # Records through the broker alone before that (``kafka_io.warm_broker``): the pipeline's
    # warm-up is far too short to warm the JVM (11-20 us of CPU per record on its first
    # million, 3-4 us warm). 0: none.
    broker_warmup: int = 1_000_000
    latency_rate: int = 2_000
    # Longer than the kernel's 30 s before it writes out dirty pages (vm.dirty_expire_
    # centisecs), so the run's own writes reach the disk inside it, as in a steady state.
    latency_seconds: float = 60.0
    # Write out the earlier phases' dirty pages before the latency run (``os.sync``).
    flush_before_latency: bool = True
    timeout: float = 600.0
    quick: bool = False
    py_spy: bool = False
    # The one-per-event path is slow; past this many seconds its rate is taken from the
    # results so far, so the whole run stays bounded.
    single_seconds: float = 180.0
    json_path: Path = field(default_factory=lambda: RESULTS_DIR / "latest.json")


@dataclass
class Published:
    """Events published ahead of a phase: their results awaited, when publishing began."""

    watch: Watch
    started_at: datetime


def _last_json(path: Path) -> dict[str, Any]:
    """The last line of a log that is a JSON object (a process's summary), else empty."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return {}
    for line in reversed(lines):
        if line.startswith("{"):
            try:
                data = json.loads(line)
            except ValueError:
                continue
            if isinstance(data, dict):
                return data
    return {}


def _per_event(seconds: dict[str, float], events: int) -> dict[str, float]:
    """CPU microseconds per event by process group."""
    return {k: round(v / events * 1e6, 1) for k, v in seconds.items()} if events else {}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _rss_trend(series: list[tuple[float, float]]) -> str:
    """The worker's RSS at a few points of its life: a steady climb would be a leak."""
    if not series:
        return ""
    points = [series[int(i * (len(series) - 1) / 4)] for i in range(5)]
    return "worker RSS over its life: " + ", ".join(f"{mb:.0f} MB at {t:.0f} s" for t, mb in points)


def cpu_summary(cpu: dict[str, float]) -> tuple[float, str]:
    """The pipeline's CPU per event (the bench's own reader left out) and its parts."""
    parts = {k: v for k, v in cpu.items() if k != "bench"}
    text = ", ".join(f"{k} {v:.0f}" for k, v in sorted(parts.items(), key=lambda kv: -kv[1]))
    return sum(parts.values()), text


def say(message: str) -> None:
    """Progress for the person watching."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("nan")


class PipelineBench:
    """One run of the phases; ``run`` returns the report."""

    def __init__(self, options: Options, stack: Stack) -> None:
        self.opts = options
        self.stack = stack
        self.settings: Settings = stack.settings
        self.bootstrap = stack.settings.bootstrap
        self.report = Report()
        self.procs = Processes(LOG_DIR)
        self.reader = ResultReader(self.bootstrap)
        self.bulk: AIOKafkaProducer = bulk_producer(self.bootstrap)
        self.live: AIOKafkaProducer = live_producer(self.bootstrap)
        self.workload = Workload(options.cards)
        self.database_url = ""
        self.program_id = 0
        status = LocalStack(self.settings).status()
        self.postmaster = status.postgres.pid
        self.kafka_pid = status.kafka.pid
        self.meter = CpuMeter(self._cpu_groups)
        self.worker_peaks: dict[str, float] = {}
        self.warm_statuses: dict[str, int] = {}
        # Phase 1's events, read again by the replay.
        self.first: Published | None = None

    # --- plumbing -----------------------------------------------------------------------

    def _env(self, group: str | None = None, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            LOYALTY_STACK=self.settings.stack,
            LOYALTY_DATABASE_URL=self.database_url,
            LOYALTY_KAFKA_BOOTSTRAP=self.bootstrap,
            # BENCH_LOG_LEVEL=DEBUG: the worker logs each batch's time and the gap before it.
            LOYALTY_LOG_LEVEL=os.environ.get("BENCH_LOG_LEVEL", "INFO"),
        )
        if group is not None:
            env["LOYALTY_CONSUMER_GROUP"] = group
        env.update(extra)
        return env

    def _start_worker(self, name: str, group: str, **extra: str) -> None:
        self.procs.start(name, ["worker", "--no-scheduler"], self._env(group, **extra))

    def _stop_worker(self, name: str) -> None:
        peak = self.procs.peak_rss_mb(name)
        if peak is not None:
            self.worker_peaks[name] = peak
        self.procs.stop(name)

    def _alive(self, *names: str) -> Callable[[], None]:
        def check() -> None:
            for name in names:
                self.procs.check_alive(name)

        return check

    async def _group_at_end(self, group: str) -> None:
        # A worker of this group starts at what is published from now on.
        await commit_group(
            self.bootstrap, group, await end_offsets(self.bootstrap, INPUT_TOPIC_NAMES)
        )

    @staticmethod
    def _group(phase: str) -> str:
        return f"bench-{phase}-{uuid.uuid4().hex[:8]}"

    async def _db(self, sql: str) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.database_url)
        try:
            return list(await conn.fetch(sql))
        finally:
            await conn.close()

    async def _statements_reset(self) -> bool:
        """Start PostgreSQL's statement times afresh; False where the server does not keep
        them (``pg_stat_statements`` is loaded on the bench stack only)."""
        loaded = await self._db("SELECT current_setting('shared_preload_libraries')")
        if "pg_stat_statements" not in loaded[0][0]:
            return False
        await self._db("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        await self._db("SELECT pg_stat_statements_reset()")
        return True

    async def _statements(self, events: int) -> list[dict[str, Any]]:
        """PostgreSQL's busiest statements since the reset, per event of the phase: time
        (wall, inside the server: CPU, I/O and lock waits), rows and WAL."""
        rows = await self._db(
            "SELECT query, calls, rows, total_exec_time, wal_bytes, wal_fpi"
            " FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 15"
        )
        return [
            {
                "statement": " ".join(r["query"].split())[:90],
                "us_per_event": round(r["total_exec_time"] * 1000 / events, 1),
                "calls": r["calls"],
                "rows_per_event": round(r["rows"] / events, 2),
                "wal_bytes_per_event": round(float(r["wal_bytes"]) / events),
                "wal_full_pages": r["wal_fpi"],
            }
            for r in rows
        ]

    async def _statuses(self) -> dict[str, int]:
        rows = await self._db("SELECT status, count(*) FROM processed_events GROUP BY status")
        return {r[0]: int(r[1]) for r in rows}

    async def _ledger_rows(self) -> int:
        return int((await self._db("SELECT count(*) FROM ledger_entries"))[0][0])

    async def _wait_outbox_drained(self) -> float:
        """Wait until the relay has published everything (the next phase starts clean)."""
        start = time.monotonic()
        deadline = start + self.opts.timeout
        check = self._alive("relay")
        while time.monotonic() < deadline:
            check()
            rows = await self._db(
                "SELECT coalesce(sum(count), 0) FROM outbox WHERE sent_at IS NULL"
            )
            if rows[0][0] == 0:
                return time.monotonic() - start
            await asyncio.sleep(0.2)
        raise TimeoutError("the relay did not drain the outbox")

    async def _publish_ahead(self, count: int, prefix: str, with_lines: bool = False) -> Published:
        events = self.workload.batch(count, prefix, with_lines)
        started_at = datetime.now(UTC)
        start = time.monotonic()
        await publish_all(self.bulk, events)
        seconds = time.monotonic() - start
        say(f"published {count:,} purchases in {seconds:.1f} s ({_rate(count, seconds):,.0f}/s)")
        return Published(self.reader.expect(e.event_id for e in events), started_at)

    def _cpu_groups(self) -> dict[str, list[int]]:
        groups: dict[str, list[int]] = {"bench": [os.getpid()]}
        for name, proc in self.procs.procs.items():
            groups.setdefault(name.split("-")[0], []).append(proc.pid)
        if self.postmaster is not None:
            groups["postgres"] = [self.postmaster, *children(self.postmaster)]
        if self.kafka_pid is not None:
            groups["kafka"] = [self.kafka_pid]
        return groups

    async def _when_started(self, name: str) -> tuple[float, Snapshot] | None:
        """The time and CPU snapshot at which a worker's app reported it started."""
        with contextlib.suppress(TimeoutError, RuntimeError):
            await self.procs.wait_for_log(name, _WORKER_STARTED, self.opts.timeout)
            return time.time(), self.meter.snapshot()
        return None

    async def _sample_when_ready(
        self,
        ready: asyncio.Task[tuple[float, Snapshot] | None],
        samplers: list[tuple[str, Sampler]],
    ) -> None:
        await asyncio.shield(ready)
        for name in ("worker", "relay"):
            pid = self.procs.procs[name].pid
            samplers.append((name, Sampler(pid, LOG_DIR / f"{name}.py-spy.txt")))

    def _py_spy_report(self, samplers: list[tuple[str, Sampler]]) -> None:
        texts = []
        for name, sampler in samplers:
            sampler.stop()
            summary = summarize(sampler.output)
            self.report.details.setdefault("py_spy", {})[name] = summary
            texts.append(render(f"py-spy, {name} during the throughput run", summary))
        self.report.details["py_spy_text"] = "\n\n".join(texts)

    async def _sample_memory(self) -> None:
        """RSS of every worker each second: growth with the events processed shows a leak."""
        series: dict[str, list[tuple[float, float]]] = {}
        self.report.details["worker_rss_mb_series"] = series
        start = time.monotonic()
        while True:
            for name, proc in list(self.procs.procs.items()):
                if name.startswith("worker"):
                    mb = rss_mb(proc.pid)
                    if mb is not None:
                        series.setdefault(name, []).append(
                            (round(time.monotonic() - start, 1), round(mb, 1))
                        )
            await asyncio.sleep(1.0)

    async def _timed_run(
        self,
        name: str,
        group: str,
        watch: Watch,
        count: int,
        cap: float | None = None,
        others: tuple[str, ...] = (),
        **extra: str,
    ) -> dict[str, Any]:
        """Start a worker on ``group`` (and the ``others``, right after it), wait for the
        results of ``watch`` and the relay."""
        at_spawn = self.meter.snapshot()
        started = time.time()
        self._start_worker(name, group, **extra)
        for other in others:
            self._start_worker(other, group, **extra)
        ready = asyncio.create_task(self._when_started(name))
        samplers: list[tuple[str, Sampler]] = []
        sampling: asyncio.Task[None] | None = None
        if self.opts.py_spy and name == "worker":
            sampling = asyncio.create_task(self._sample_when_ready(ready, samplers))
        limit = min(cap, self.opts.timeout) if cap else self.opts.timeout
        done = await self.reader.wait(watch, limit, self._alive(name, *others, "relay"))
        seen = sorted(watch.seen_at.values())
        arrived = len(seen)
        if done:
            elapsed = seen[-1] - started
            rate = _rate(count, elapsed)
        else:
            elapsed = time.time() - started
            rate = _rate(arrived, elapsed)
        drained = round(await self._wait_outbox_drained(), 2)
        at_end = self.meter.snapshot()
        if sampling is not None:
            sampling.cancel()
            self._py_spy_report(samplers)
        started_at = await ready if ready.done() else None
        ready.cancel()
        first = seen[0] - started if seen else float("nan")
        steady = _rate(arrived - 1, seen[-1] - seen[0]) if arrived > 1 else float("nan")
        run: dict[str, Any] = {
            "completed": done,
            "events": count,
            "results": arrived,
            "seconds_from_worker_start": round(elapsed, 3),
            "first_result_after_s": round(first, 3),
            "events_per_s": rate,
            "steady_events_per_s_first_to_last_result": steady,
            "other_results_read": watch.others,
            "relay_drain_after_last_result_s": drained,
        }
        if started_at is not None:
            ready_time, at_ready = started_at
            run["worker_startup_s"] = round(ready_time - started, 2)
            run["worker_startup_cpu_s"] = round(
                used(at_spawn, at_ready).get(name.split("-")[0], 0.0), 2
            )
            run["cpu_us_per_event"] = _per_event(used(at_ready, at_end), arrived)
        else:
            run["cpu_us_per_event"] = _per_event(used(at_spawn, at_end), arrived)
        return run

    # --- the run ------------------------------------------------------------------------

    async def run(self) -> Report:
        """Every phase; processes are stopped whatever happens."""
        o = self.opts
        self.report.params = {
            "events": o.events,
            "cards": o.cards,
            "single_events": o.single_events,
            "warmup_events": o.warmup_events,
            "broker_warmup": o.broker_warmup,
            "latency_rate": o.latency_rate,
            "latency_seconds": o.latency_seconds,
            "flush_before_latency": o.flush_before_latency,
            "quick": o.quick,
            "stack": self.settings.stack,
            "kafka": self.bootstrap,
            "batch_max_records": os.environ.get("LOYALTY_BATCH_MAX_RECORDS", "engine default"),
            "batch_timeout_ms": os.environ.get("LOYALTY_BATCH_TIMEOUT_MS", "engine default"),
            "cpus": os.cpu_count(),
            "load_average_at_start": os.getloadavg(),
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        start = time.monotonic()
        memory = asyncio.create_task(self._sample_memory())
        try:
            say(f"fresh database loyalty_bench on stack {self.settings.stack}")
            self.database_url = await fresh_database(self.stack)
            seed_start = time.monotonic()
            seeded = await seed(self.database_url, self.settings, o.cards)
            self.program_id = seeded.program_id
            say(f"seeded {seeded.cards:,} cards in {time.monotonic() - seed_start:.1f} s")
            self.report.details["seed"] = {"cards": seeded.cards}
            await self.reader.start()
            await self.bulk.start()
            await self.live.start()
            self.procs.start("relay", ["relay"], self._env())
            await self.procs.wait_for_log("relay", "relay_started", 60)
            await self._warm_broker()
            await self._warm_up()
            await self._throughput()
            await self._replay()
            await self._latency()
            self._memory()
            await self._line_items()
            await self._two_workers()
            await self._one_per_event()
            self.report.details["relay_peak_rss_mb"] = self.procs.peak_rss_mb("relay")
        finally:
            memory.cancel()
            self.procs.stop_all()
            for client in (self.bulk, self.live, self.reader):
                with contextlib.suppress(Exception):
                    await client.stop()
        order = {name: i for i, name in enumerate(FIGURE_ORDER)}
        self.report.figures.sort(key=lambda f: order.get(f.name, len(order)))
        self.report.params["load_average_at_end"] = os.getloadavg()
        self.report.params["duration_s"] = round(time.monotonic() - start, 1)
        return self.report

    async def _warm_broker(self) -> None:
        n = self.opts.broker_warmup
        if n <= 0:
            return
        say(f"broker warm-up: {n:,} records produced and read back (not measured)")
        before, start = self.meter.snapshot(), time.monotonic()
        await warm_broker(self.bootstrap, n)
        kafka = used(before, self.meter.snapshot()).get("kafka", 0.0)
        self.report.details["broker_warmup"] = {
            "records": n,
            "seconds": round(time.monotonic() - start, 1),
            "kafka_cpu_us_per_record": round(kafka / n * 1e6, 2),
        }

    async def _warm_up(self) -> None:
        n = self.opts.warmup_events
        if n <= 0:
            return
        group = self._group("warmup")
        await self._group_at_end(group)
        published = await self._publish_ahead(n, "w")
        say(f"warm-up: {n:,} events through a worker and the relay (not measured)")
        self._start_worker("worker-warmup", group)
        done = await self.reader.wait(
            published.watch, self.opts.timeout, self._alive("worker-warmup", "relay")
        )
        self._stop_worker("worker-warmup")
        if not done:
            raise TimeoutError("the warm-up's results did not all come")
        await self._wait_outbox_drained()
        self.warm_statuses = await self._statuses()
        self.report.details["warmup_events"] = n

    async def _throughput(self) -> None:
        n = self.opts.events
        group = self._group("batch")
        await self._group_at_end(group)
        self.first = await self._publish_ahead(n, "t")
        say(f"throughput: one worker (batches) and one relay on {n:,} events")
        timing = await self._statements_reset()
        run = await self._timed_run("worker", group, self.first.watch, n)
        if timing:
            self.report.details["postgres_statements"] = await self._statements(n)
        # Counted from the inbox: less what the warm-up put there.
        statuses = await self._statuses()
        for status, count in self.warm_statuses.items():
            statuses[status] = statuses.get(status, 0) - count
        run["inbox_statuses"] = statuses
        run["ledger_rows"] = await self._ledger_rows()
        self.report.details["throughput"] = run
        warm = self.opts.warmup_events
        note = (
            f"{n:,} events over {self.opts.cards:,} cards, from worker start to last result"
            + (f" (after a warm-up of {warm:,} events, not counted); " if warm else "; ")
            + f"first result after {run['first_result_after_s']:.1f} s, "
            f"{run['steady_events_per_s_first_to_last_result']:,.0f} events/s from first to "
            f"last result; applied {statuses.get('applied', 0):,}"
        )
        if "worker_startup_s" in run:
            note += (
                f"; worker start-up {run['worker_startup_s']:.1f} s "
                f"({run['worker_startup_cpu_s']:.1f} s CPU)"
            )
        broker = self.report.details.get("broker_warmup")
        if broker:
            note += (
                f"; broker warmed with {broker['records']:,} records first "
                f"(Kafka {broker['kafka_cpu_us_per_record']} us CPU per record meanwhile)"
            )
        if not run["completed"]:
            note = f"TIMED OUT with {run['results']:,} of {n:,} results; " + note
        self.report.add(
            Figure(
                "throughput, batches", run["events_per_s"], "events/s", THROUGHPUT_TARGET, note=note
            )
        )
        self._cpu_figures("batches", run["cpu_us_per_event"])

    def _cpu_figures(self, path: str, cpu: dict[str, float]) -> None:
        total, parts = cpu_summary(cpu)
        target = CPU_TARGET_US if path == "batches" else None
        self.report.add(
            Figure(f"CPU per event, {path}", total, "us", target, "max", note=f"us/event: {parts}")
        )
        cores = os.cpu_count() or 1
        self.report.add(
            Figure(
                f"CPU-bound ceiling, {path}",
                cores * 1e6 / total if total else float("nan"),
                "events/s",
                note=f"{cores} idle cores fully used by the pipeline, no other load (an estimate)",
            )
        )

    async def _line_items(self) -> None:
        n = self.opts.line_events
        if n <= 0:
            return
        # Double points on pastries with a 10-point bonus from 15 EUR, under a budget that
        # never runs out here: every purchase runs the campaign's whole path.
        conn = await asyncpg.connect(self.database_url)
        try:
            await conn.execute(
                "INSERT INTO campaigns (program_id, code, name, status, categories, multiplier, "
                "bonus_points, min_basket_cents, budget_points, points_awarded) VALUES "
                "($1, 'bench-pastry', 'Bench pastry', 'active', '{pastry}', 2, 10, 1500, "
                "1000000000, 0)",
                self.program_id,
            )
        finally:
            await conn.close()
        group = self._group("lines")
        await self._group_at_end(group)
        published = await self._publish_ahead(n, "l", with_lines=True)
        say(f"line items: {n:,} purchases of 3 lines with one campaign active")
        run = await self._timed_run("worker-lines", group, published.watch, n)
        self._stop_worker("worker-lines")
        # Ended, so the phases after this one measure the plain workload again (until
        # 2026-12-07 the two workers' phase ran with it active, a different workload).
        conn = await asyncpg.connect(self.database_url)
        try:
            await conn.execute(
                "UPDATE campaigns SET status = 'ended' WHERE program_id = $1 AND code = "
                "'bench-pastry'",
                self.program_id,
            )
        finally:
            await conn.close()
        self.report.details["line_items"] = run
        total, parts = cpu_summary(run["cpu_us_per_event"])
        self.report.add(
            Figure(
                "throughput, 3 line items + campaign",
                run["events_per_s"],
                "events/s",
                note=f"{n:,} purchases, one worker, from its start to the last result; "
                f"CPU {total:.0f} us/event ({parts})",
            )
        )

    async def _two_workers(self) -> None:
        n = self.opts.two_worker_events
        if n <= 0:
            return
        group = self._group("two")
        await self._group_at_end(group)
        published = await self._publish_ahead(n, "w")
        say(f"two workers: {n:,} purchases, two workers in one group")
        run = await self._timed_run(
            "worker-two", group, published.watch, n, others=("worker-second",)
        )
        self._stop_worker("worker-second")
        self._stop_worker("worker-two")
        self.report.details["two_workers"] = run
        total, parts = cpu_summary(run["cpu_us_per_event"])
        self.report.add(
            Figure(
                "throughput, 2 workers",
                run["events_per_s"],
                "events/s",
                note=f"{n:,} purchases, two workers of one group (input partitions shared) and "
                f"one relay, from the first worker's start to the last result; "
                f"{run['steady_events_per_s_first_to_last_result']:,.0f} events/s from first to "
                f"last result; CPU {total:.0f} us/event ({parts}; worker: both)",
            )
        )

    async def _replay(self) -> None:
        assert self.first is not None
        n = self.opts.events
        statuses, ledger = await self._statuses(), await self._ledger_rows()
        watch = self.reader.expect()  # any result now would be a duplicate's output
        say(f"replay: consumers.replay over the same {n:,} events")
        before_cpu, children_cpu = self.meter.snapshot(), _children_cpu()
        started = time.time()
        self.procs.start(
            "replay", [self.first.started_at.isoformat()], self._env(), "bench.replay_run"
        )
        code = await self.procs.wait_exit("replay", self.opts.timeout)
        elapsed = time.time() - started
        if code is None:
            self.procs.stop("replay")
        cpu = used(before_cpu, self.meter.snapshot())
        # The replay process has exited: its CPU is in this process's children's usage.
        cpu["replay"] = _children_cpu() - children_cpu
        summary = _last_json(self.procs.log_path("replay"))
        await asyncio.sleep(1.0)  # a duplicate's output, if any, would be on its way
        applied_again = sum((await self._statuses()).values()) - sum(statuses.values())
        ledger_again = await self._ledger_rows() - ledger
        self.report.details["replay"] = {
            "exit_code": code,
            "seconds_from_process_start": round(elapsed, 3),
            "report": summary,
            "new_inbox_rows": applied_again,
            "new_ledger_rows": ledger_again,
            "results_published": watch.others,
            "peak_rss_mb": self.procs.peaks.get("replay"),
            "cpu_us_per_event": _per_event(cpu, n),
        }
        duplicates = int(summary.get("duplicate", -1))
        clean = applied_again == 0 and ledger_again == 0 and watch.others == 0
        note = (
            "consumers.replay (loyalty replay --from-datetime) in its own process, from its "
            f"start to its exit; {duplicates:,} duplicates; "
            + (
                "nothing applied twice, no output"
                if clean
                else f"NOT IDEMPOTENT: {applied_again} inbox rows, {ledger_again} ledger rows, "
                f"{watch.others} results"
            )
        )
        if summary.get("seconds"):
            note += f"; {_rate(n, float(summary['seconds'])):,.0f} events/s in its read loop"
        ok = code == 0 and clean and duplicates == n
        if not ok:
            note = f"FAILED (exit {code}, see {self.procs.log_path('replay')}); " + note
        value = _rate(n, elapsed) if ok else float("nan")
        total, parts = cpu_summary(_per_event(cpu, n))
        note += f"; CPU {total:.0f} us/event ({parts})"
        self.report.add(
            Figure("replay, all duplicates", value, "events/s", REPLAY_TARGET, note=note)
        )

    async def _latency(self) -> None:
        rate, seconds = self.opts.latency_rate, self.opts.latency_seconds
        total = int(rate * seconds)
        check = self._alive("worker", "relay")
        watch = self.reader.expect(sealed=False)
        watch.legs = True
        sent_at: dict[bytes, float] = {}
        events = self.workload.live("l")
        # Only the acknowledgements still awaited are kept: gathering the whole run's 40,000
        # futures after the last send held this process, and its reader with it, for the
        # last results (the last two seconds' p99 came out 1.5-3 times the others').
        unacked: set[asyncio.Future[object]] = set()
        failed: list[BaseException] = []

        def acked(fut: asyncio.Future[object]) -> None:
            unacked.discard(fut)
            error = None if fut.cancelled() else fut.exception()
            if error is not None:
                failed.append(error)

        dirty = _dirty_mb()
        # The earlier phases leave hundreds of MB written but not on disk; the kernel writes
        # out what is 30 s old every 5 s, and each such burst held PostgreSQL's commits (its
        # WAL flushes) inside this run: seconds with a p99 of 140-200 ms against 40-60 for the
        # others (measured). Written out first, the run sees only its own traffic's writes,
        # which it is long enough to include.
        if self.opts.flush_before_latency:
            await asyncio.to_thread(os.sync)
            left = _dirty_mb()
            pages = f"{dirty:,.0f} MB not on disk written out first, {left:,.0f} MB left"
        else:
            left = dirty
            pages = f"{dirty:,.0f} MB not on disk left in the cache (--keep-dirty-pages)"
        self.report.details["dirty_mb_before_latency"] = {"found": dirty, "left": left}
        say(f"latency: {rate:,} events/s for {seconds:.0f} s to the running worker ({pages})")
        # This process holds the earlier phases' events (hundreds of thousands of objects): a
        # full collection of them paused its reader for ~150 ms (measured), which would be
        # counted as the pipeline's latency. Frozen, the collector leaves them alone.
        gc.collect()
        gc.freeze()
        start = time.monotonic()
        sent = 0
        while sent < total:
            due = min(total, int((time.monotonic() - start) * rate) + 1)
            while sent < due:
                event, produced_at = next(events)
                watch.add(event.event_id)
                sent_at[event.event_id] = produced_at
                ack = await self.live.send(event.topic, event.value, key=event.key)
                unacked.add(ack)
                ack.add_done_callback(acked)
                sent += 1
            check()
            await asyncio.sleep(0.002)
        send_seconds = time.monotonic() - start
        await asyncio.gather(*unacked)
        if failed:
            raise failed[0]
        watch.seal()
        done = await self.reader.wait(watch, self.opts.timeout, check)
        latencies = sorted((seen - sent_at[eid]) * 1000 for eid, seen in watch.seen_at.items())
        # Whether the tail comes from a few bad seconds (a pause somewhere) or from all of them.
        by_second: dict[int, list[float]] = {}
        first_sent = min(sent_at.values(), default=0.0)
        for eid, seen in watch.seen_at.items():
            second = int(sent_at[eid] - first_sent)
            by_second.setdefault(second, []).append((seen - sent_at[eid]) * 1000)
        p99_by_second = [
            round(percentile(sorted(v), 99)) for _, v in sorted(by_second.items()) if v
        ]
        missing = total - len(latencies)
        p50, p95, p99 = (percentile(latencies, q) for q in (50, 95, 99))
        if missing:
            p99 = float("nan")  # results that never came are beyond any percentile
        self.report.details["latency"] = {
            "offered_events_per_s": rate,
            "achieved_send_rate": _rate(total, send_seconds),
            "events": total,
            "missing_results": missing,
            "completed": done,
            "p50_ms": p50,
            "p95_ms": p95,
            "p99_ms": p99,
            "max_ms": latencies[-1] if latencies else None,
            "min_ms": latencies[0] if latencies else None,
            "p99_ms_by_second_sent": p99_by_second,
            "legs_ms": _legs(watch, sent_at),
        }
        where = f"at {_rate(total, send_seconds):,.0f} events/s for {send_seconds:.0f} s"
        capacity = self.report.details["throughput"]["steady_events_per_s_first_to_last_result"]
        if capacity < rate:
            where += (
                f"; the throughput run managed {capacity:,.0f} events/s, less than offered, "
                "so these latencies are mostly queueing"
            )
        self.report.add(Figure("latency p50, publish to result", p50, "ms", note=where))
        self.report.add(Figure("latency p95, publish to result", p95, "ms"))
        note = f"max {latencies[-1]:,.0f} ms" if latencies else ""
        legs = self.report.details["latency"]["legs_ms"]
        if legs:
            note += "; " + ", ".join(
                f"{name} p50/p99 {v['p50']:.0f}/{v['p99']:.0f}" for name, v in legs.items()
            )
        if p99_by_second:
            note += f"; p99 of each second sent: {', '.join(map(str, p99_by_second))} ms"
        if missing:
            note = f"{missing:,} of {total:,} results missing; " + note
        self.report.add(
            Figure("latency p99, publish to result", p99, "ms", P99_TARGET_MS, "max", note)
        )

    def _memory(self) -> None:
        self._stop_worker("worker")
        peak = max(self.worker_peaks.values(), default=float("nan"))
        self.report.details["worker_peak_rss_mb"] = dict(self.worker_peaks)
        series = self.report.details.get("worker_rss_mb_series", {}).get("worker", [])
        peaks = ", ".join(f"{k} {v:.0f} MB" for k, v in self.worker_peaks.items())
        self.report.add(
            Figure(
                "worker peak RSS (VmHWM)",
                peak,
                "MB",
                RSS_TARGET_MB,
                "max",
                note=f"{peaks}; {_rss_trend(series)}",
            )
        )

    async def _one_per_event(self) -> None:
        n = self.opts.single_events
        group = self._group("single")
        await self._group_at_end(group)
        published = await self._publish_ahead(n, "s")
        say(f"one transaction per event: LOYALTY_BATCH_MAX_RECORDS=1 on {n:,} events")
        cap = self.opts.single_seconds
        run = await self._timed_run(
            "worker-single", group, published.watch, n, cap, LOYALTY_BATCH_MAX_RECORDS="1"
        )
        self._stop_worker("worker-single")
        self.report.details["one_per_event"] = run
        note = f"{n:,} events, same worker with LOYALTY_BATCH_MAX_RECORDS=1, from worker start"
        if not run["completed"]:
            note = (
                f"stopped at the {min(cap, self.opts.timeout):.0f} s cap with {run['results']:,}"
                f" of {n:,} results, rate of those; " + note
            )
        self.report.add(
            Figure(
                "throughput, one transaction per event", run["events_per_s"], "events/s", note=note
            )
        )
        batch = self.report.details["throughput"]["events_per_s"]
        ratio = batch / run["events_per_s"] if run["events_per_s"] else float("nan")
        steady = (
            self.report.details["throughput"]["steady_events_per_s_first_to_last_result"]
            / run["steady_events_per_s_first_to_last_result"]
        )
        batch_cpu, _ = cpu_summary(self.report.details["throughput"]["cpu_us_per_event"])
        single_cpu, _ = cpu_summary(run["cpu_us_per_event"])
        self.report.add(
            Figure(
                "batches vs one per event",
                ratio,
                "x",
                RATIO_TARGET,
                note=f"{steady:.1f}x from first to last result; "
                f"{single_cpu / batch_cpu if batch_cpu else float('nan'):.1f}x less CPU per event",
            )
        )
        self._cpu_figures("one per event", run["cpu_us_per_event"])


def _dirty_mb() -> float:
    """The page cache's data written but not yet on disk (``/proc/meminfo``), in MB."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("Dirty:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _legs(watch: Watch, sent_at: dict[bytes, float]) -> dict[str, dict[str, float]]:
    """Each event's latency split in three (ms, p50 and p99 of each): published to applied
    (the producer, the broker and the worker's fetch and queue), applied to relayed (the
    batch's own time, its commit and the relay's round) and relayed to read (the broker and
    the reader). "Applied" is the batch's start, the result's ``occurred_at``; every clock is
    this machine's."""
    split: dict[str, list[float]] = {"to worker": [], "worker+relay": [], "to reader": []}
    for eid, seen in watch.seen_at.items():
        applied, relayed = watch.applied_at.get(eid), watch.relayed_at.get(eid)
        if applied is None or relayed is None:
            continue
        split["to worker"].append((applied - sent_at[eid]) * 1000)
        split["worker+relay"].append((relayed - applied) * 1000)
        split["to reader"].append((seen - relayed) * 1000)
    return {
        name: {"p50": percentile(sorted(v), 50), "p99": percentile(sorted(v), 99)}
        for name, v in split.items()
        if v
    }
