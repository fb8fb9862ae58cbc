"""Real processes for the crash tests: a Temporal dev server with a state file, worker
subprocesses running ``tests.reliability.app``, a TCP proxy in front of PostgreSQL,
and the checks every test ends with (the tree, the effects, lanes and claims).

Every process starts in its own session, so it is stopped or killed as a process
group; `Rig` stops everything it started, whatever happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError

import stepped_temporal as stepped
from stepped_temporal import config
from stepped_temporal.binaries import dev_server_path
from stepped_temporal.lane_messages import LaneState
from stepped_temporal.lanes import LANE_WORKFLOW
from stepped_temporal.results import ActionState
from stepped_temporal.search_attributes import SEARCH_ATTRIBUTES
from stepped_temporal.trees import TreeNode, collect_tree
from stepped_temporal.workflows import ACTION_WORKFLOW

# The app sets stepped_temporal's timeouts when imported, as the worker needs; this
# process (the whole test session) keeps its own settings until a rig applies them.
_session_settings = config.settings()
from tests.reliability import app  # noqa: E402

config._settings = _session_settings

ROOT = Path(__file__).resolve().parents[2]
APP = "tests.reliability.app"
#: how losses.py logs a unit whose worker was lost: its streak
LOSS_STREAK = re.compile(r"\((\d+) time\(s\) in a row\)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tail(path: Path, lines: int = 30) -> str:
    if not path.exists():
        return f"({path.name}: no output)"
    text = path.read_text(errors="replace").splitlines()
    return f"--- {path.name} (last {min(lines, len(text))} of {len(text)} lines)\n" + "\n".join(
        text[-lines:]
    )


def _clean_env() -> dict[str, str]:
    """The environment without Temporal client settings a developer may have exported."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")}
    env.pop("STEPPED_DATABASE_URL", None)
    env.pop("STEPPED_TASK_QUEUE", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Child:
    """A subprocess in its own process group, its output in a log file."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def spawn(
        self, command: list[str], cwd: Path | None = None, env: dict[str, str] | None = None
    ) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                command,
                cwd=cwd,
                env={**_clean_env(), **(env or {})},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def kill(self) -> None:
        """SIGKILL the whole process group and reap it."""
        self.signal_group(signal.SIGKILL)
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(10)

    def terminate(self, grace: float) -> float:
        """SIGTERM the group, wait up to `grace` seconds (then SIGKILL); seconds it took."""
        started = time.monotonic()
        if self.process is None:
            return 0.0
        self.signal_group(signal.SIGTERM)
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            self.kill()
        return time.monotonic() - started

    def signal_group(self, number: int) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, number)


class DevServer(Child):
    """`temporal server start-dev` with a state file and fixed ports, so it can be
    stopped and started again as the same server."""

    def __init__(self, folder: Path, extra_args: list[str] | None = None) -> None:
        super().__init__(folder / "dev-server.log")
        self.extra_args = list(extra_args or ())
        self.db = folder / "temporal.db"
        self.port = free_port()
        self.http_port = free_port()
        self.metrics_port = free_port()
        self.starts = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self, timeout: float = 60.0) -> float:
        """Start it and wait until it answers; returns the seconds that took."""
        started = time.monotonic()
        self.starts += 1
        attributes = [
            arg
            for name, kind in SEARCH_ATTRIBUTES.items()
            for arg in ("--search-attribute", f"{name}={kind}")
        ]
        self.spawn(
            [
                dev_server_path(),
                "server",
                "start-dev",
                "--db-filename", str(self.db),
                "--ip", "127.0.0.1",
                "--port", str(self.port),
                "--http-port", str(self.http_port),
                "--metrics-port", str(self.metrics_port),
                "--headless",
                # a state file with fsync on every write makes the tree 5x slower;
                # WAL survives the process being stopped or killed all the same
                "--sqlite-pragma", "journal_mode=wal",
                "--sqlite-pragma", "synchronous=off",
                "--log-level", "error",
                *attributes,
                *self.extra_args,
            ]
        )  # fmt: skip
        deadline = started + timeout
        while True:
            if not self.alive():
                raise AssertionError(
                    f"the dev server exited with {self.returncode}\n{tail(self.log)}"
                )
            with contextlib.suppress(Exception):
                client = await asyncio.wait_for(Client.connect(self.address), 5)
                await asyncio.wait_for(client.count_workflows(), 5)
                # Ours, not another process's that took the port first (ours then exits).
                await asyncio.sleep(0.3)
                if self.alive() and self._banners() >= self.starts:
                    return time.monotonic() - started
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"the dev server did not answer in {timeout}s\n{tail(self.log)}"
                )
            await asyncio.sleep(0.2)

    def _banners(self) -> int:
        """How many times the server printed its start-up banner into the log."""
        if not self.log.exists():
            return 0
        text = self.log.read_text(errors="replace")
        return sum(line.startswith("Temporal Server:") for line in text.splitlines())


class WorkerProcess(Child):
    """`python -m stepped_temporal.cli worker --app tests.reliability.app`; each
    start (incarnation) logs to its own file. `python` and `cwd` pick another
    installation (test_rolling_upgrade.py runs the previous release's beside ours)."""

    def __init__(
        self,
        folder: Path,
        address: str,
        database_url: str,
        task_queue: str,
        *,
        app: str = APP,
        name: str = "worker",
        env: dict[str, str] | None = None,
        python: str = sys.executable,
        cwd: Path = ROOT,
    ) -> None:
        super().__init__(folder / f"{name}-0.log")
        self.folder = folder
        self.address = address
        self.database_url = database_url
        self.task_queue = task_queue
        self.app = app
        self.name = name
        self.env = env
        self.python = python
        self.cwd = cwd
        self.incarnations = 0

    def start(self) -> None:
        self.incarnations += 1
        self.log = self.folder / f"{self.name}-{self.incarnations}.log"
        self.spawn(
            [
                self.python, "-m", "stepped_temporal.cli", "worker",
                "--app", self.app,
                "--address", self.address,
                "--database-url", self.database_url,
                "--task-queue", self.task_queue,
                "--shutdown-grace", "5",
            ],
            cwd=self.cwd,
            env=self.env,
        )  # fmt: skip

    def is_ready(self) -> bool:
        """Whether this incarnation printed its banner (it polls from then on)."""
        return self.log.exists() and any(
            line.startswith("worker:") for line in self.log.read_text(errors="replace").splitlines()
        )

    async def ready(self, timeout: float = 60.0) -> float:
        """Wait for the worker's banner (it polls from then on); seconds it took."""
        started = time.monotonic()
        while True:
            if self.is_ready():
                return time.monotonic() - started
            if not self.alive():
                raise AssertionError(f"the worker exited with {self.returncode}\n{tail(self.log)}")
            if time.monotonic() - started > timeout:
                raise AssertionError(
                    f"the worker printed no banner in {timeout}s\n{tail(self.log)}"
                )
            await asyncio.sleep(0.05)

    def longest_loss_streak(self) -> int:
        """The longest streak of lost workers charged to one unit (losses.py), over
        every incarnation's log."""
        longest = 0
        for number in range(1, self.incarnations + 1):
            path = self.folder / f"{self.name}-{number}.log"
            if path.exists():
                found = LOSS_STREAK.findall(path.read_text(errors="replace"))
                longest = max([longest, *map(int, found)])
        return longest

    def count_in_logs(self, text: str) -> int:
        """Lines containing `text`, over every incarnation's log."""
        total = 0
        for number in range(1, self.incarnations + 1):
            path = self.folder / f"{self.name}-{number}.log"
            if path.exists():
                total += sum(text in line for line in path.read_text(errors="replace").splitlines())
        return total


class TcpProxy:
    """A TCP proxy to PostgreSQL that can go away (connections refused, open ones
    dropped) and come back on the same port."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.accepted = 0
        self.dropped = 0

    async def up(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def down(self) -> None:
        """Close the listening socket and reset every open connection."""
        if self.server is not None:
            self.server.close()
        for writer in list(self.writers):
            self.dropped += 1
            writer.transport.abort()
        self.writers.clear()
        if self.server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.server.wait_closed(), 5)
            self.server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self.writers.update((writer, upstream_writer))
        await asyncio.gather(
            self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer)
        )
        self.writers.difference_update((writer, upstream_writer))

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()


# -- the rig -----------------------------------------------------------------


@dataclass
class Rig:
    """A dev server, a worker subprocess, a client and the database, for one test."""

    folder: Path
    server: DevServer
    worker: WorkerProcess
    client: Client
    engine: sa.Engine
    started: float = field(default_factory=time.monotonic)

    def fleet(self) -> app.RelFleet:
        with Session(self.engine) as session:
            return session.get_one(app.RelFleet, 1)

    def effects(self) -> int:
        with self.engine.connect() as connection:
            return int(connection.scalar(sa.select(sa.func.count()).select_from(app.Effect)) or 0)

    def logs(self) -> str:
        return "\n".join([tail(self.server.log, 15), tail(self.worker.log, 40)])


@asynccontextmanager
async def rig(
    folder: Path,
    database_url: str,
    *,
    worker_database_url: str | None = None,
    before_worker: Callable[[], Any] | None = None,
) -> AsyncIterator[Rig]:
    """Start the dev server, create the fleet, start a worker, connect and configure
    stepped_temporal; stop everything (process groups) on the way out."""
    saved = config.settings()
    app.configure_timeouts()
    server = DevServer(folder)
    engine = config.create_engine(database_url)
    worker = WorkerProcess(
        folder, server.address, worker_database_url or database_url, f"reliability-{os.getpid()}"
    )
    try:
        await server.start()
        app.create_fleet(engine)
        if before_worker is not None:
            await before_worker()
        worker.start()
        await worker.ready()
        client = await Client.connect(server.address)
        config.configure(client=client, engine=engine, task_queue=worker.task_queue)
        yield Rig(folder, server, worker, client, engine)
    finally:
        worker.kill()
        server.terminate(grace=10)
        server.kill()
        engine.dispose()
        config._settings = saved  # every setting as it was, the client included


# -- waiting and checking ----------------------------------------------------


async def is_closed(client: Client, workflow_id: str) -> bool:
    """Whether the workflow has closed (asked of the server: no worker needed)."""
    description = await client.get_workflow_handle(workflow_id).describe()
    return description.status not in (None, WorkflowExecutionStatus.RUNNING)


async def wait_closed(client: Client, workflow_id: str, deadline: float) -> float:
    """Poll until the workflow closed, riding out RPC errors; monotonic time it was seen."""
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            if await asyncio.wait_for(is_closed(client, workflow_id), 10):
                return time.monotonic()
        except (RPCError, TimeoutError, RuntimeError) as error:
            last_error = error
        await asyncio.sleep(0.25)
    raise TimeoutError(f"{workflow_id} still open at the deadline (last error: {last_error!r})")


async def wait_answering(client: Client, workflow_id: str, deadline: float) -> float:
    """Poll until the server answers about the workflow; monotonic time it first did."""
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            await asyncio.wait_for(is_closed(client, workflow_id), 10)
            return time.monotonic()
        except (RPCError, TimeoutError, RuntimeError) as error:
            last_error = error
        await asyncio.sleep(0.1)
    raise TimeoutError(f"no answer about {workflow_id} by the deadline (last: {last_error!r})")


def flatten(node: TreeNode) -> list[ActionState]:
    out = [node.state]
    for child in node.children:
        out.extend(flatten(child))
    return out


async def tree_states(client: Client, root_id: str) -> list[ActionState]:
    return flatten(await collect_tree(client, root_id))


def effect_counts(engine: sa.Engine) -> Counter[tuple[str, str]]:
    with engine.connect() as connection:
        rows = connection.execute(sa.select(app.Effect.action_id, app.Effect.unit)).all()
    return Counter((action_id, unit) for action_id, unit in rows)


async def open_workflows(client: Client, workflow_type: str) -> list[str]:
    query = f'WorkflowType="{workflow_type}" AND ExecutionStatus="Running"'
    return [w.id async for w in client.list_workflows(query)]


async def busy_lanes(client: Client) -> dict[str, str]:
    """Open lane workflows with an action performing, pending or a message unsent."""
    busy: dict[str, str] = {}
    for lane in await open_workflows(client, LANE_WORKFLOW):
        try:
            state = await client.get_workflow_handle(lane).query("state", result_type=LaneState)
        except RPCError:
            continue  # closed between the listing and the query
        if state.performing is not None or state.pending or state.outbox:
            busy[lane] = (
                f"performing={state.performing.action_id if state.performing else None} "
                f"pending={[e.action_id for e in state.pending]} outbox={len(state.outbox)}"
            )
    return busy


def held_claims(engine: sa.Engine) -> list[tuple[str, str]]:
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text(
                "select concurrency_key, holder from stepped_lane_claims where holder is not null"
            )
        ).all()
    return [(key, holder) for key, holder in rows]


async def attempts(client: Client, ids: list[str]) -> tuple[int, int, int]:
    """(activities that needed more than one attempt, most attempts of one, workflow
    tasks that timed out or failed) over the histories of `ids`."""
    retried = most = broken_tasks = 0
    gate = asyncio.Semaphore(8)

    async def scan(workflow_id: str) -> None:
        nonlocal retried, most, broken_tasks
        async with gate:
            history = await client.get_workflow_handle(workflow_id).fetch_history()
        for event in history.events:
            if event.HasField("activity_task_started_event_attributes"):
                attempt = event.activity_task_started_event_attributes.attempt
                most = max(most, attempt)
                retried += attempt > 1
            if event.HasField("workflow_task_timed_out_event_attributes") or event.HasField(
                "workflow_task_failed_event_attributes"
            ):
                broken_tasks += 1

    await asyncio.gather(*(scan(i) for i in ids))
    return retried, most, broken_tasks


@dataclass
class Verdict:
    """What the end-of-test checks found."""

    actions: int
    effects: int
    expected_effects: int
    retried_activities: int
    most_attempts: int
    broken_workflow_tasks: int
    lanes: int


async def verify(rig_: Rig, root_id: str) -> Verdict:
    """Every check the brief asks for, after the root closed; raises on the first
    kind of problem with everything found of that kind."""
    client, engine = rig_.client, rig_.engine
    states = await tree_states(client, root_id)
    problems: list[str] = []
    not_final = [f"{s.id} {s.status} step={s.current_step_index}" for s in states if not s.final]
    if not_final:
        problems.append(f"{len(not_final)} action(s) not final: {not_final[:10]}")
    unexpected = [
        f"{s.id} {s.status} {s.error}" for s in states if s.final and s.status != "succeeded"
    ]
    if unexpected:
        problems.append(f"{len(unexpected)} action(s) not succeeded: {unexpected[:10]}")
    if len(states) != app.EXPECTED_ACTIONS:
        problems.append(f"the tree has {len(states)} actions, expected {app.EXPECTED_ACTIONS}")

    counts = effect_counts(engine)
    expected = {(s.id, unit) for s in states for unit in app.UNITS[s.name]}
    duplicates = {k: n for k, n in counts.items() if n > 1}
    missing = expected - set(counts)
    strays = set(counts) - expected
    total = sum(counts.values())
    if duplicates:
        problems.append(
            f"{len(duplicates)} effect(s) applied more than once (exactly-once broken): "
            f"{sorted(duplicates.items())[:10]}"
        )
    if missing:
        problems.append(f"{len(missing)} effect(s) never applied: {sorted(missing)[:10]}")
    if strays:
        problems.append(f"{len(strays)} effect(s) of no action in the tree: {sorted(strays)[:10]}")
    if total != app.EXPECTED_EFFECTS:
        problems.append(f"{total} effect rows, expected {app.EXPECTED_EFFECTS}")

    # Lanes and action workflows close a moment after the root learns the last
    # conclusion (releases in flight, visibility lag): allow them a few seconds.
    deadline = time.monotonic() + 20
    while True:
        lanes = await busy_lanes(client)
        running = await open_workflows(client, ACTION_WORKFLOW)
        if (not lanes and not running) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    if lanes:
        problems.append(f"{len(lanes)} lane(s) stuck: {lanes}")
    if running:
        problems.append(f"{len(running)} action workflow(s) still running: {running[:10]}")
    claims = held_claims(engine)
    if claims:
        problems.append(f"{len(claims)} claim(s) still held: {claims[:10]}")

    retried, most, broken = await attempts(client, [s.id for s in states])
    lanes_used = await client.count_workflows(f'WorkflowType="{LANE_WORKFLOW}"')
    assert not problems, "\n".join(problems)
    return Verdict(
        len(states), total, app.EXPECTED_EFFECTS, retried, most, broken, lanes_used.count
    )


async def describe_progress(rig_: Rig, root_id: str) -> str:
    """For a failure message: what is not final yet, lanes, claims, recent logs."""
    lines = [f"effects so far: {rig_.effects()} of {app.EXPECTED_EFFECTS}"]
    try:
        states = await asyncio.wait_for(tree_states(rig_.client, root_id), 30)
        waiting = [s for s in states if not s.final]
        lines.append(f"{len(waiting)} of {len(states)} actions not final:")
        lines += [f"  {s.status} {s.id} step={s.current_step_index}" for s in waiting[:15]]
        lines.append(f"busy lanes: {await busy_lanes(rig_.client)}")
    except Exception as error:
        lines.append(f"(tree not readable: {error!r})")
    lines.append(f"claims held: {held_claims(rig_.engine)}")
    lines.append(rig_.logs())
    return "\n".join(lines)


async def start_tour(rig_: Rig) -> str:
    handle = await stepped.start(rig_.fleet(), "tour")
    return handle.id


async def wait_for_effects(rig_: Rig, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while rig_.effects() < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"fewer than {count} effects after {timeout}s\n{rig_.logs()}")
        await asyncio.sleep(0.1)
