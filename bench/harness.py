"""What every benchmark shares: the dev server, the database, worker processes,
history counting, medians and tables.

One `Bench` is one Temporal dev server (the pip-installed binary, nothing is
downloaded) and one database; every variant of every run gets its own task
queue and a fresh worker process (`bench._worker`), so its memory and the
history of every workflow it ran can be attributed to it alone.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import NoReturn, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

import stepped_temporal as stepped
from stepped_temporal import config, search_attributes
from stepped_temporal.binaries import dev_server_path
from stepped_temporal.lanes import LANE_WORKFLOW

from .models import BenchBase, Car, Fleet

H = TypeVar("H")
R = TypeVar("R")

#: the folder holding the `bench` package: worker subprocesses import it from there
PROJECT = Path(__file__).resolve().parent.parent
_STARTED = time.monotonic()
#: cores busy elsewhere from which a report warns that the machine was shared
SHARED_MACHINE = 0.2


def progress(message: str) -> None:
    """A progress line on stderr (stdout carries only the tables)."""
    print(f"[{time.monotonic() - _STARTED:7.1f}s] {message}", file=sys.stderr, flush=True)


# -- options ---------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    """Settings shared by every workload of one invocation."""

    runs: int = 5
    database_url: str | None = None
    max_activities: int = 100
    max_workflow_tasks: int = 100
    max_cached_workflows: int = 10000
    concurrency: int = 200
    deadline: float | None = None
    keep: bool = False
    #: run only these variants (default: all of the workload's)
    only: tuple[str, ...] = ()

    def variants(self, all_variants: list[str]) -> list[str]:
        """The workload's variants this invocation runs, in their order."""
        unknown = set(self.only) - set(all_variants)
        if unknown:
            raise SystemExit(f"--only: no variant {sorted(unknown)} here; there are {all_variants}")
        return [v for v in all_variants if not self.only or v in self.only]


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every benchmark script takes."""
    parser.add_argument(
        "--runs", type=int, default=5, help="runs per variant (medians, with the spread)"
    )
    parser.add_argument(
        "--database-url",
        help="SQLAlchemy URL of the database (default: a SQLite file in a temporary folder); "
        "the bench_* tables are dropped and created",
    )
    parser.add_argument(
        "--max-activities",
        type=int,
        default=100,
        help="max_concurrent_activities (and activity threads) of both workers",
    )
    parser.add_argument(
        "--max-workflow-tasks",
        type=int,
        default=100,
        help="max_concurrent_workflow_tasks of both workers",
    )
    parser.add_argument(
        "--max-cached-workflows",
        type=int,
        default=10000,
        help="max_cached_workflows of both workers",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=200,
        help="client-side starts (and result waits) under way at once",
    )
    parser.add_argument(
        "--deadline",
        type=float,
        help="seconds one variant run may take before it counts as stuck "
        "(default: the workload's own, generous)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary folder (database, worker logs)"
    )
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated variants to run (e.g. stepped for a 10,000-leaf run); default all",
    )


def options_from(args: argparse.Namespace) -> Options:
    if args.runs < 1:
        raise SystemExit("--runs must be at least 1")
    return Options(
        runs=args.runs,
        database_url=args.database_url,
        max_activities=args.max_activities,
        max_workflow_tasks=args.max_workflow_tasks,
        max_cached_workflows=args.max_cached_workflows,
        concurrency=args.concurrency,
        deadline=args.deadline,
        keep=args.keep,
        only=tuple(v for v in args.only.split(",") if v),
    )


# -- the server and the database -------------------------------------------


class Bench:
    """One dev server, one database, a supply of task queues and car ids."""

    def __init__(
        self,
        environment: WorkflowEnvironment,
        options: Options,
        database_url: str,
        engine: Engine,
        folder: Path,
        token: str,
        schema: str | None,
    ) -> None:
        self.environment = environment
        self.options = options
        self.database_url = database_url
        self.engine = engine
        self.folder = folder
        self.token = token
        #: the PostgreSQL schema this invocation created (dropped on close)
        self.schema = schema
        self._queues = 0
        self._next_id = 1

    @classmethod
    async def start(cls, options: Options) -> Bench:
        folder = Path(tempfile.mkdtemp(prefix="stepped-bench-"))
        token = uuid.uuid4().hex[:8]
        database_url = options.database_url or f"sqlite:///{folder / 'bench.db'}"
        database_url, schema = _own_schema(database_url, token)
        progress(f"starting the Temporal dev server ({dev_server_path()})")
        # The server inherits our stdout and prints a banner there: point its
        # stdout at stderr, so stdout carries only the tables.
        sys.stdout.flush()
        saved_stdout = os.dup(1)
        os.dup2(2, 1)
        try:
            environment = await WorkflowEnvironment.start_local(
                dev_server_existing_path=dev_server_path(),
                dev_server_log_level="error",
                ui=False,
                # as in production: Stepped sets them (S9.3), and raw sets the same
                search_attributes=search_attributes.ALL,
            )
        finally:
            os.dup2(saved_stdout, 1)
            os.close(saved_stdout)
        engine = config.create_engine(database_url)
        BenchBase.metadata.drop_all(engine)
        BenchBase.metadata.create_all(engine)
        config.reset()
        stepped.configure(client=environment.client, engine=engine)
        bench = cls(environment, options, database_url, engine, folder, token, schema)
        progress(f"server at {bench.address}; database {_redact(database_url)}; folder {folder}")
        return bench

    async def close(self) -> None:
        await self.environment.shutdown()
        self.engine.dispose()
        if self.options.keep:
            progress(f"kept {self.folder}" + (f" and schema {self.schema}" if self.schema else ""))
            return
        shutil.rmtree(self.folder, ignore_errors=True)
        if self.schema is not None:
            _drop_schema(self.database_url, self.schema)

    @property
    def client(self) -> Client:
        return self.environment.client

    @property
    def address(self) -> str:
        return self.client.service_client.config.target_host

    def queue(self, label: str) -> str:
        """A task queue no other run uses: every workflow on it belongs to one run."""
        self._queues += 1
        return f"bench-{self.token}-{self._queues:03d}-{label}"

    def seed_cars(self, count: int) -> int:
        """Insert `count` fresh cars with consecutive ids; return the first id."""
        first = self._next_id
        self._next_id += count
        with Session(self.engine) as session, session.begin():
            session.execute(
                sa.insert(Car), [{"id": n, "visits": 0} for n in range(first, first + count)]
            )
        return first

    def seed_fleet(self) -> int:
        """Insert a fleet (the root of a fan-out) with a fresh id; return it."""
        fleet_id = self._next_id
        self._next_id += 1
        with Session(self.engine) as session, session.begin():
            session.add(Fleet(id=fleet_id))
        return fleet_id

    def visits(self, first: int, count: int) -> int:
        """How many visits the cars `first`..`first+count-1` received."""
        query = sa.select(sa.func.coalesce(sa.func.sum(Car.visits), 0)).where(
            Car.id.between(first, first + count - 1)
        )
        with Session(self.engine) as session:
            return int(session.scalar(query) or 0)


def _own_schema(url: str, token: str) -> tuple[str, str | None]:
    """On PostgreSQL, a fresh schema for this invocation: the URL that uses it, and its name.

    The bench's tables and Stepped's own land there, never beside an
    application's; other databases are used as they are.
    """
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return url, None
    schema = f"stepped_bench_{token}"
    admin = sa.create_engine(parsed)
    try:
        with admin.begin() as connection:
            connection.execute(sa.text(f"CREATE SCHEMA {schema}"))
    finally:
        admin.dispose()
    own = parsed.update_query_dict({"options": f"-csearch_path={schema}"})
    return own.render_as_string(hide_password=False), schema


def _drop_schema(url: str, schema: str) -> None:
    admin = sa.create_engine(sa.engine.make_url(url).difference_update_query(["options"]))
    try:
        with admin.begin() as connection:
            connection.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    finally:
        admin.dispose()


def _redact(url: str) -> str:
    return sa.engine.make_url(url).render_as_string(hide_password=True)


# -- worker processes -------------------------------------------------------


class WorkerProcess:
    """A fresh `python -m bench._worker` for one variant of one run."""

    def __init__(self, process: asyncio.subprocess.Process, log: Path) -> None:
        self.process = process
        self.log = log
        self.profiler: asyncio.subprocess.Process | None = None

    @classmethod
    async def spawn(cls, bench: Bench, variant: str, queue: str) -> WorkerProcess:
        options = bench.options
        command = [
            sys.executable,
            "-m",
            "bench._worker",
            f"--variant={variant}",
            f"--address={bench.address}",
            f"--namespace={bench.client.namespace}",
            f"--task-queue={queue}",
            f"--database-url={bench.database_url}",
            f"--max-cached-workflows={options.max_cached_workflows}",
            f"--max-workflow-tasks={options.max_workflow_tasks}",
            f"--max-activities={options.max_activities}",
        ]
        environment = dict(os.environ)
        environment["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(PROJECT), environment.get("PYTHONPATH")])
        )
        log = bench.folder / f"worker-{queue}.log"
        with log.open("wb") as sink:
            process = await asyncio.create_subprocess_exec(
                *command,
                stdout=asyncio.subprocess.PIPE,
                stderr=sink,
                env=environment,
                cwd=PROJECT,
            )
        worker = cls(process, log)
        assert process.stdout is not None
        try:
            line = await asyncio.wait_for(process.stdout.readline(), timeout=120)
        except TimeoutError:
            line = b""
        if line.strip() != b"ready":
            await worker.stop()
            raise RuntimeError(f"the {variant} worker did not start:\n{worker.log_tail()}")
        profiles = os.environ.get("BENCH_PROFILE")
        if profiles:  # py-spy samples the worker until it exits (see README)
            Path(profiles).mkdir(parents=True, exist_ok=True)
            target = Path(profiles) / f"{variant}-{queue}.txt"
            if shutil.which("py-spy") is None:  # or the worker would be left running
                await worker.stop()
                raise RuntimeError("BENCH_PROFILE needs py-spy on the PATH: pip install py-spy")
            worker.profiler = await asyncio.create_subprocess_exec(
                *["py-spy", "record", "--pid", str(process.pid), "--format", "raw"],
                *[
                    "--threads",
                    *(os.environ.get("BENCH_PROFILE_FLAGS", "").split()),
                    "--rate",
                    "200",
                    "--nonblocking",
                    "-o",
                    str(target),
                ],
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
        return worker

    def _status_kib(self, name: str) -> int:
        """A `VmRSS`/`VmHWM` line of /proc/<pid>/status, in KiB (0 once it exited)."""
        try:
            text = Path(f"/proc/{self.process.pid}/status").read_text()
        except OSError:
            return 0
        for line in text.splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1])
        return 0

    def rss_kib(self) -> int:
        """Resident memory now."""
        return self._status_kib("VmRSS")

    def peak_kib(self) -> int:
        """Peak resident memory so far (the high-water mark)."""
        return self._status_kib("VmHWM")

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), timeout=30)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        if self.profiler is not None:  # it writes its file once the worker is gone
            await self.profiler.wait()


# -- CPU used elsewhere ------------------------------------------------------


def _machine_busy_ticks() -> int:
    """Clock ticks every CPU spent busy since boot (/proc/stat, less idle and iowait)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(fields) - fields[3] - (fields[4] if len(fields) > 4 else 0)


def _process_ticks(pid: int) -> int:
    """Clock ticks process `pid` used, user and system (0 once gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


@dataclass(frozen=True)
class CpuUse:
    """CPU seconds the worker and the dev server used during a run, and how many
    cores other processes kept busy meanwhile (the machine may be shared)."""

    worker: float
    server: float
    elsewhere: float


class CpuMeter:
    """Measures a `CpuUse` from creation to `stop()`."""

    def __init__(self, worker_pid: int) -> None:
        me = os.getpid()
        self.worker = [worker_pid]
        self.server = [pid for pid in _children(me) if _comm(pid) == "temporal"]
        self.client = [me]
        self.began = time.monotonic()
        self.start = self._sample()

    def _sample(self) -> tuple[int, int, int, int]:
        return (
            _machine_busy_ticks(),
            sum(_process_ticks(pid) for pid in self.worker),
            sum(_process_ticks(pid) for pid in self.server),
            sum(_process_ticks(pid) for pid in self.client),
        )

    def stop(self) -> CpuUse | None:
        try:
            now = self._sample()
        except (OSError, ValueError, IndexError):
            return None
        busy, worker, server, client = (b - a for a, b in zip(self.start, now, strict=True))
        seconds = max(time.monotonic() - self.began, 1e-9)
        tick = os.sysconf("SC_CLK_TCK")
        elsewhere = max(0.0, (busy - worker - server - client) / tick / seconds)
        return CpuUse(worker=worker / tick, server=server / tick, elsewhere=elsewhere)


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


# -- history ---------------------------------------------------------------


@dataclass
class History:
    """Every workflow execution (each continue-as-new run apart) of one task queue."""

    events: int = 0
    #: history size in bytes (the server's `history_size_bytes`), all executions
    bytes: int = 0
    lane_events: int = 0
    #: history length of each lane run, longest first
    lane_runs: list[int] = field(default_factory=list)
    executions: int = 0
    workflow_ids: int = 0
    #: executions still running when counted (lanes that did not end)
    still_open: int = 0
    #: the longest history of an action's run (S11: under Temporal's warning at a
    #: fifth of the limit), and how many runs continued as new
    longest: int = 0
    continued: int = 0


async def count_history(
    client: Client, queue: str, expected_ids: int, *, settle_timeout: float = 150.0
) -> History:
    """Sum the history length of every execution on `queue`.

    The dev server's visibility lags, so list until at least the expected
    workflow ids (the actions; lane workflows start only for contended keys, so
    they come on top) show up, none is running (lanes end once idle), and the
    count is stable;
    then describe each execution by run id (list_workflows returns every run,
    continue-as-new ones included).
    """
    query = f"TaskQueue = '{queue}'"
    deadline = time.monotonic() + settle_timeout
    previous = -1
    while True:
        executions = [execution async for execution in client.list_workflows(query)]
        ids = {execution.id for execution in executions}
        running = [e for e in executions if e.status == WorkflowExecutionStatus.RUNNING]
        if len(ids) >= expected_ids and not running and len(executions) == previous:
            break
        if time.monotonic() > deadline:
            progress(
                f"  {queue}: visibility did not settle: {len(ids)}/{expected_ids} ids, "
                f"{len(running)} running (e.g. {[e.id for e in running[:3]]})"
            )
            break
        previous = len(executions)
        await asyncio.sleep(1.0)

    limit = asyncio.Semaphore(64)

    async def length(workflow_id: str, run_id: str | None) -> tuple[int, int]:
        async with limit:
            handle = client.get_workflow_handle(workflow_id, run_id=run_id)
            described = await handle.describe()
            info = described.raw_description.workflow_execution_info
            return int(info.history_length), int(info.history_size_bytes)

    lengths = await asyncio.gather(*(length(e.id, e.run_id) for e in executions))
    history = History(executions=len(executions), workflow_ids=len(ids), still_open=len(running))
    for execution, (events, size) in zip(executions, lengths, strict=True):
        history.events += events
        history.bytes += size
        if execution.workflow_type == LANE_WORKFLOW:
            history.lane_events += events
            history.lane_runs.append(events)
        else:
            history.longest = max(history.longest, events)
            if execution.status == WorkflowExecutionStatus.CONTINUED_AS_NEW:
                history.continued += 1
    history.lane_runs.sort(reverse=True)
    return history


async def running_ids(client: Client, queue: str, limit: int = 10) -> list[str]:
    """Some workflows still running on `queue` (to name stuck ones)."""
    found = []
    query = f"TaskQueue = '{queue}' AND ExecutionStatus = 'Running'"
    async for execution in client.list_workflows(query, limit=limit):
        found.append(f"{execution.workflow_type}:{execution.id}")
    return found


# -- runs ------------------------------------------------------------------


@dataclass
class Outcome:
    """What a workload body reports besides its wall time."""

    ok: bool
    note: str = ""
    #: worker RSS (KiB) sampled at 25/50/75/100 % of completed actions
    rss_samples: list[int] = field(default_factory=list)


@dataclass
class Run:
    """One variant, one run."""

    variant: str
    leaves: int
    #: None when the body did not finish before the deadline
    wall: float | None
    ok: bool
    note: str = ""
    history: History | None = None
    peak_kib: int | None = None
    rss_samples: list[int] = field(default_factory=list)
    cpu: CpuUse | None = None

    @property
    def rate(self) -> float | None:
        return self.leaves / self.wall if self.wall else None

    @property
    def events_per_leaf(self) -> float | None:
        return self.history.events / self.leaves if self.history else None

    @property
    def lane_events_per_leaf(self) -> float | None:
        return self.history.lane_events / self.leaves if self.history else None


Body = Callable[[str, WorkerProcess], Awaitable[Outcome]]


async def run_variant(
    bench: Bench,
    *,
    label: str,
    variant: str,
    worker: str,
    leaves: int,
    expected_ids: int,
    deadline: float,
    body: Body,
) -> Run:
    """Start a fresh `worker` ("stepped"/"raw") on a new task queue, time `body`,
    count the history of everything the run created, read the worker's peak memory."""
    queue = bench.queue(f"{label}-{variant}")
    stepped.configure(task_queue=queue)
    process = await WorkerProcess.spawn(bench, worker, queue)
    try:
        meter = CpuMeter(process.process.pid)
        began = time.perf_counter()
        try:
            outcome = await asyncio.wait_for(body(queue, process), timeout=deadline)
        except TimeoutError:
            stuck = await running_ids(bench.client, queue)
            progress(f"  {variant}: no result within {deadline:.0f}s; still running: {stuck}")
            return Run(
                variant,
                leaves,
                wall=None,
                ok=False,
                note=f"timed out after {deadline:.0f}s; running e.g. {', '.join(stuck[:5])}",
                peak_kib=process.peak_kib(),
                cpu=meter.stop(),
            )
        except Exception as error:
            progress(f"  {variant}: failed: {error!r}\n{traceback.format_exc()}")
            return Run(variant, leaves, wall=None, ok=False, note=f"error: {error!r}")
        wall = time.perf_counter() - began
        cpu = meter.stop()
        progress(f"  {variant}: {wall:.2f}s{'' if outcome.ok else ' NOT OK'} {outcome.note}")
        history = await count_history(bench.client, queue, expected_ids)
        note = outcome.note
        if history.workflow_ids < expected_ids or history.still_open:
            note += (
                f" [{history.workflow_ids} workflow ids, expected at least {expected_ids}; "
                f"{history.still_open} still open when counted]"
            )
        progress(
            f"  {variant}: {history.events} events in {history.executions} executions "
            f"({history.lane_events} in {len(history.lane_runs)} lane runs); longest action "
            f"run {history.longest} events, {history.continued} runs continued as new"
        )
        return Run(
            variant,
            leaves,
            wall=wall,
            ok=outcome.ok,
            note=note.strip(),
            history=history,
            peak_kib=process.peak_kib(),
            rss_samples=outcome.rss_samples,
            cpu=cpu,
        )
    finally:
        await process.stop()
        if process.process.returncode not in (0, None):
            progress(f"  worker exited with {process.process.returncode}:\n{process.log_tail()}")


async def rounds(
    bench: Bench,
    report: Report,
    *,
    label: str,
    runs: int,
    deadline: float,
    expected_ids: int,
    body_for: Callable[[str], Body],
) -> Report:
    """`runs` rounds of each of `report`'s variants (in a rotated order), each run
    with the body `body_for(variant)` makes (seeding what it needs); `report`."""
    for number in range(runs):
        for variant in rotated(report.variants, number):
            progress(f"[{report.title}] run {number + 1}/{runs}: {variant}")
            report.add(
                await run_variant(
                    bench,
                    label=label,
                    variant=variant,
                    worker=variant,
                    leaves=report.leaves,
                    expected_ids=expected_ids,
                    deadline=deadline,
                    body=body_for(variant),
                )
            )
    return report


async def stepped_against_raw(
    bench: Bench,
    *,
    title: str,
    leaves: int,
    unit: str,
    deadline: float,
    expected_ids: int,
    body_for: Callable[[str], Body],
    runs: int | None = None,
) -> Report:
    """The usual workload: "stepped" against "raw", `runs` rounds (default: --runs),
    the label `title` without spaces."""
    report = Report(
        title=title,
        leaves=leaves,
        unit=unit,
        variants=["stepped", "raw"],
        ratios=[("stepped", "raw")],
    )
    return await rounds(
        bench,
        report,
        label=title.replace(" ", ""),
        runs=runs or bench.options.runs,
        deadline=deadline,
        expected_ids=expected_ids,
        body_for=body_for,
    )


def rotated(variants: Sequence[str], run: int) -> list[str]:
    """The variants in a different order each run, so none always goes first."""
    shift = run % len(variants)
    return [*variants[shift:], *variants[:shift]]


async def start_and_wait(
    count: int,
    start: Callable[[int], Awaitable[H]],
    wait: Callable[[H], Awaitable[R]],
    *,
    concurrency: int,
    on_done: Callable[[int], None] | None = None,
) -> list[R]:
    """Start `count` workflows, at most `concurrency` starts under way at once,
    and wait for each result as soon as it started (at most `concurrency` waits
    at once: the server caps concurrent long polls per namespace)."""
    starting = asyncio.Semaphore(concurrency)
    waiting = asyncio.Semaphore(concurrency)
    done = 0

    async def one(index: int) -> R:
        nonlocal done
        async with starting:
            handle = await start(index)
        async with waiting:
            result = await wait(handle)
        done += 1
        if on_done is not None:
            on_done(done)
        return result

    return await asyncio.gather(*(one(index) for index in range(count)))


class RssSampler:
    """Samples a worker's RSS when 25/50/75/100 % of the actions completed."""

    def __init__(self, worker: WorkerProcess, total: int) -> None:
        self.worker = worker
        self.thresholds = [max(1, (total * quarter + 3) // 4) for quarter in (1, 2, 3, 4)]
        self.samples: list[int] = []

    def __call__(self, done: int) -> None:
        while (
            len(self.samples) < len(self.thresholds) and done >= self.thresholds[len(self.samples)]
        ):
            self.samples.append(self.worker.rss_kib())


# -- reports ---------------------------------------------------------------


def median(values: Sequence[float | int | None]) -> float | None:
    present = [float(v) for v in values if v is not None]
    return statistics.median(present) if present else None


@dataclass
class Summary:
    """Medians of one variant over its runs."""

    variant: str
    runs: int
    completed: int
    ok: int
    wall: float | None
    rate: float | None
    events_per_leaf: float | None
    lane_events_per_leaf: float | None
    workflows_per_leaf: float | None
    peak_mib: float | None
    worker_cpu: float | None
    server_cpu: float | None

    @classmethod
    def of(cls, variant: str, runs: list[Run]) -> Summary:
        counted = [r for r in runs if r.history is not None]
        return cls(
            variant=variant,
            runs=len(runs),
            completed=sum(r.wall is not None for r in runs),
            ok=sum(r.ok for r in runs),
            wall=median([r.wall for r in runs]),
            rate=median([r.rate for r in runs]),
            events_per_leaf=median([r.events_per_leaf for r in counted]),
            lane_events_per_leaf=median([r.lane_events_per_leaf for r in counted]),
            workflows_per_leaf=median(
                [r.history.executions / r.leaves for r in counted if r.history]
            ),
            peak_mib=median([r.peak_kib / 1024 if r.peak_kib else None for r in runs]),
            worker_cpu=median([r.cpu.worker for r in runs if r.cpu and r.wall is not None]),
            server_cpu=median([r.cpu.server for r in runs if r.cpu and r.wall is not None]),
        )


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _fmt(value: float | None, digits: int = 2, suffix: str = "") -> str:
    return "-" if value is None else f"{value:.{digits}f}{suffix}"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], align: str = "") -> str:
    """A plain-text table; `align` has one "l" or "r" per column (default: the
    first column left-aligned, the others right-aligned)."""
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]
    align = align or "l" + "r" * (len(headers) - 1)

    def line(cells: Sequence[str]) -> str:
        parts = [
            str(cell).ljust(widths[i]) if align[i] == "l" else str(cell).rjust(widths[i])
            for i, cell in enumerate(cells)
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(row) for row in rows)])


@dataclass
class Report:
    """The runs of one workload and how to show them."""

    title: str
    leaves: int
    unit: str
    variants: list[str]
    #: (numerator, denominator) variant pairs to print ratios for
    ratios: list[tuple[str, str]]
    runs: dict[str, list[Run]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, run: Run) -> None:
        self.runs.setdefault(run.variant, []).append(run)

    def summary(self, variant: str) -> Summary:
        return Summary.of(variant, self.runs.get(variant, []))

    def _spread(self, variant: str) -> str:
        """Lowest and highest wall time, worker CPU and server CPU over the runs."""
        runs = [r for r in self.runs.get(variant, []) if r.wall is not None]
        columns: list[tuple[str, list[float]]] = [
            ("wall", [r.wall for r in runs if r.wall is not None]),
            ("worker CPU", [r.cpu.worker for r in runs if r.cpu]),
            ("server CPU", [r.cpu.server for r in runs if r.cpu]),
        ]
        shown = [
            f"{name} {min(values):.2f}-{max(values):.2f}s" for name, values in columns if values
        ]
        return ", ".join(shown)

    def render(self) -> str:
        headers = [
            "variant",
            "ok/runs",
            "wall s",
            f"{self.unit}/s",
            "events/leaf",
            "lane ev/leaf",
            "wf/leaf",
            "peak MiB",
            "worker CPU s",
            "server CPU s",
        ]
        rows = []
        for variant in self.variants:
            s = self.summary(variant)
            rows.append(
                [
                    variant,
                    f"{s.ok}/{s.runs}",
                    _fmt(s.wall, 2),
                    _fmt(s.rate, 1),
                    _fmt(s.events_per_leaf, 1),
                    _fmt(s.lane_events_per_leaf, 1),
                    _fmt(s.workflows_per_leaf, 2),
                    _fmt(s.peak_mib, 1),
                    _fmt(s.worker_cpu, 1),
                    _fmt(s.server_cpu, 1),
                ]
            )
        for a, b in self.ratios:
            x, y = self.summary(a), self.summary(b)
            rows.append(
                [
                    f"{a}/{b}",
                    "",
                    _fmt(ratio(x.wall, y.wall), 2, "x"),
                    "",
                    _fmt(ratio(x.events_per_leaf, y.events_per_leaf), 2, "x"),
                    "",
                    "",
                    _fmt(ratio(x.peak_mib, y.peak_mib), 2, "x"),
                    _fmt(ratio(x.worker_cpu, y.worker_cpu), 2, "x"),
                    _fmt(ratio(x.server_cpu, y.server_cpu), 2, "x"),
                ]
            )
        runs = max((len(v) for v in self.runs.values()), default=0)
        lines = [
            f"== {self.title}: {self.leaves} {self.unit}, medians of {runs} run(s) ==",
            table(headers, rows),
        ]
        for variant in self.variants:
            spread = self._spread(variant)
            if spread:
                lines.append(f"  {variant} spread (min-max): {spread}")
        for variant in self.variants:
            for number, run in enumerate(self.runs.get(variant, []), 1):
                lines.append(f"  {variant} run {number}: {describe_run(run)}")
        lines += [f"  note: {note}" for note in self.notes]
        busy = [r.cpu.elsewhere for v in self.runs.values() for r in v if r.cpu is not None]
        if busy and max(busy) >= SHARED_MACHINE:
            lines.append(
                f"  WARNING: other processes kept up to {max(busy):.2f} cores busy during "
                f"these runs: the machine was shared, figures are noisy"
            )
        return "\n".join(lines)


def describe_run(run: Run) -> str:
    wall = "no result" if run.wall is None else f"wall {run.wall:.2f}s"
    parts = [wall, "ok" if run.ok else "NOT OK"]
    if run.history is not None:
        h = run.history
        parts.append(
            f"{h.events} events in {h.executions} executions, "
            f"{h.bytes / max(run.leaves, 1) / 1024:.2f} KiB of history per leaf"
        )
        if 0 < len(h.lane_runs) <= 10:
            parts.append(f"lane run lengths {h.lane_runs}")
        elif h.lane_runs:
            parts.append(f"{len(h.lane_runs)} lane runs (longest {h.lane_runs[0]})")
    if run.peak_kib:
        parts.append(f"peak {run.peak_kib / 1024:.1f} MiB")
    if run.rss_samples:
        mib = "/".join(f"{kib / 1024:.1f}" for kib in run.rss_samples)
        parts.append(f"RSS at 25/50/75/100%: {mib} MiB")
    if run.cpu is not None:
        parts.append(
            f"CPU worker {run.cpu.worker:.1f}s, server {run.cpu.server:.1f}s, "
            f"other processes {run.cpu.elsewhere:.2f} cores"
        )
    if run.note:
        parts.append(run.note)
    return "; ".join(parts)


# -- the environment and main ----------------------------------------------


def environment_lines() -> list[str]:
    """The machine and versions a table was measured on."""
    cpu = "?"
    memory = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    try:
        server = subprocess.run(
            [dev_server_path(), "--version"], capture_output=True, text=True, timeout=30
        ).stdout.strip()
    except Exception as error:  # a version line is not worth failing for
        server = f"unknown ({error})"
    try:
        revision = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=PROJECT,
        ).stdout.strip()
    except Exception:
        revision = ""
    return [
        f"date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"machine: {os.cpu_count()} CPUs ({cpu}), {memory} RAM, {platform.platform()}",
        f"python {platform.python_version()}, temporalio {metadata.version('temporalio')}, "
        f"SQLAlchemy {metadata.version('SQLAlchemy')}, stepped_temporal at {revision or '?'}",
        f"server: {server}",
    ]


def run_main(main: Callable[[], Awaitable[int]]) -> NoReturn:
    """Run `main` and end the process with its exit status.

    Ends with os._exit: a process that started Temporal's runtime can crash at
    interpreter exit (sdk-python #300).
    """
    try:
        code = asyncio.run(main())
    except KeyboardInterrupt:
        code = 130
    except Exception:
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


async def with_bench(options: Options, work: Callable[[Bench], Awaitable[int]]) -> int:
    """Print the environment, start a `Bench`, run `work` on it, close it."""
    print("\n".join(environment_lines()), flush=True)
    print(
        f"workers: max_concurrent_activities={options.max_activities}, "
        f"max_concurrent_workflow_tasks={options.max_workflow_tasks}, "
        f"max_cached_workflows={options.max_cached_workflows}; "
        f"client concurrency {options.concurrency}\n",
        flush=True,
    )
    bench = await Bench.start(options)
    try:
        return await work(bench)
    finally:
        await bench.close()
