"""Production shape for the crash tests: one dev server, several worker processes on one
task queue, a completer process completing outbound actions, PostgreSQL (or SQLite),
and the end-of-run checks that compare a disturbed tree with an undisturbed one.

The undisturbed reference and the disturbed run build the same tree (the same car
shapes from the same seed) for two fleets whose car ids differ, so their lanes and
achievements never meet. `outcome()` maps each action to its place in the tree —
(car number, action name, arguments; outcomes.py) — so the two runs compare status
by status and effect by effect.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session
from temporalio.client import Client

import stepped_temporal as stepped
from stepped_temporal import config
from stepped_temporal.trees import collect_tree
from stepped_temporal.workflows import ACTION_WORKFLOW
from tests.reliability.harness import (
    ROOT,
    Child,
    DevServer,
    WorkerProcess,
    attempts,
    busy_lanes,
    held_claims,
    is_closed,
    open_workflows,
    tail,
)
from tests.reliability.outcomes import Outcome, flatten, places

# The app sets stepped_temporal's timeouts when imported, as the workers need; the
# test session keeps its own settings until a rig applies them.
_session_settings = config.settings()
from tests.reliability import fleet_app  # noqa: E402

config._settings = _session_settings

APP = "tests.reliability.fleet_app"


class Completer(Child):
    """``python -m tests.reliability.completer`` for one fleet."""

    def __init__(self, folder: Path, fleet: int) -> None:
        super().__init__(folder / f"completer-{fleet}.log")
        self.fleet = fleet

    def start(self, address: str, database_url: str, task_queue: str) -> None:
        self.spawn(
            [
                sys.executable, "-m", "tests.reliability.completer",
                "--address", address, "--database-url", database_url,
                "--task-queue", task_queue, "--fleet", str(self.fleet),
            ],
            cwd=ROOT,
        )  # fmt: skip

    def completions(self) -> int:
        if not self.log.exists():
            return 0
        return sum(
            line.startswith("completed hold")
            for line in self.log.read_text(errors="replace").splitlines()
        )


@dataclass
class Fleet:
    """A rig of one server and several workers."""

    folder: Path
    server: DevServer
    workers: list[WorkerProcess]
    client: Client
    engine: sa.Engine
    database_url: str
    task_queue: str
    completers: list[Completer] = field(default_factory=list)

    def logs(self) -> str:
        parts = [tail(self.server.log, 10)]
        parts += [tail(worker.log, 25) for worker in self.workers]
        parts += [tail(completer.log, 10) for completer in self.completers]
        return "\n".join(parts)

    def effects(self) -> int:
        with self.engine.connect() as connection:
            return int(
                connection.scalar(sa.select(sa.func.count()).select_from(fleet_app.Effect)) or 0
            )

    async def restart_workers(self, env: dict[str, str] | None) -> None:
        """Stop every worker (SIGKILL) and start them again with `env`."""
        for worker in self.workers:
            worker.kill()
            worker.env = env
            worker.start()
        for worker in self.workers:
            await worker.ready()

    def start_completer(self, fleet_id: int) -> Completer:
        """A completer for fleet `fleet_id` (0: every fleet)."""
        completer = Completer(self.folder, fleet_id)
        completer.start(self.server.address, self.database_url, self.task_queue)
        self.completers.append(completer)
        return completer

    async def run_service(
        self, fleet_id: int, shapes: list[fleet_app.Shape], *, completer: bool = True
    ) -> str:
        """Create fleet `fleet_id`, start its completer (unless one serves every
        fleet) and its service; the root's id."""
        fleet_app.create_fleet(self.engine, fleet_id, shapes)
        if completer:
            self.start_completer(fleet_id)
        with Session(self.engine) as session:
            fleet = session.get_one(fleet_app.ProdFleet, fleet_id)
        handle = await stepped.start(fleet, "service")
        return handle.id


@asynccontextmanager
async def fleet_rig(
    folder: Path, database_url: str, *, workers: int = 3, env: dict[str, str] | None = None
) -> AsyncIterator[Fleet]:
    """Start the dev server and `workers` worker processes; stop everything after."""
    saved = config.settings()
    fleet_app.configure_timeouts()
    server = DevServer(folder)
    engine = config.create_engine(database_url)
    queue = f"production-{os.getpid()}"
    processes = [
        WorkerProcess(folder, server.address, database_url, queue, app=APP, name=f"w{n}", env=env)
        for n in range(workers)
    ]
    rig: Fleet | None = None
    try:
        await server.start()
        fleet_app.Base.metadata.create_all(engine)
        for worker in processes:
            worker.start()
        for worker in processes:
            await worker.ready()
        client = await Client.connect(server.address)
        config.configure(client=client, engine=engine, task_queue=queue)
        rig = Fleet(folder, server, processes, client, engine, database_url, queue)
        yield rig
    finally:
        for worker in processes:
            worker.kill()
        for completer in rig.completers if rig else []:
            completer.kill()
        server.terminate(grace=10)
        server.kill()
        engine.dispose()
        config._settings = saved


# -- the outcome of a tree (outcomes.py) -----------------------------------


async def outcome(rig: Fleet, root_id: str, fleet_id: int) -> Outcome:
    tree = await collect_tree(rig.client, root_id, limit=100_000)
    states = flatten(tree)
    where = places(tree, fleet_id * fleet_app.CAR_IDS)
    with rig.engine.connect() as connection:
        rows = connection.execute(
            sa.select(fleet_app.Effect.action_id, fleet_app.Effect.unit)
        ).all()
    ours = Counter((a, unit) for a, unit in rows if a in where)
    return Outcome(
        tree.state,
        states,
        Counter((where[s.id], str(s.status)) for s in states),
        Counter({(where[a], unit): n for (a, unit), n in ours.items()}),
        {key: n for key, n in ours.items() if n > 1},
    )


async def leftovers(rig: Fleet, ids: set[str]) -> list[str]:
    """Lanes still busy, action workflows of `ids` still running, claims still held —
    allowing a few seconds for the last releases to land."""
    deadline = time.monotonic() + 30
    while True:
        lanes = await busy_lanes(rig.client)
        running = [w for w in await open_workflows(rig.client, ACTION_WORKFLOW) if w in ids]
        claims = [c for c in held_claims(rig.engine) if c[1] in ids]
        if (not lanes and not running and not claims) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    problems = []
    if lanes:
        problems.append(f"{len(lanes)} lane(s) busy: {lanes}")
    if running:
        problems.append(f"{len(running)} action workflow(s) still running: {running[:10]}")
    if claims:
        problems.append(f"{len(claims)} claim(s) still held: {claims[:10]}")
    return problems


async def retries(rig: Fleet, run: Outcome) -> tuple[int, int, int]:
    """(activities retried, most attempts, broken workflow tasks) over the tree."""
    return await attempts(rig.client, [s.id for s in run.states])


async def root_closed(rig: Fleet, root_id: str) -> bool:
    return await is_closed(rig.client, root_id)


async def supervise(rig: Fleet, root_id: str, seconds: float) -> int:
    """Restart every worker that died until the tree ended; how many restarts."""
    restarts = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for worker in rig.workers:
            if not worker.alive():
                worker.start()
                restarts += 1
        try:
            if await asyncio.wait_for(is_closed(rig.client, root_id), 10):
                break
        except Exception:  # the server busy with the restart: ask again
            pass
        await asyncio.sleep(0.2)
    return restarts


def job_attempts(rig: Fleet, run: Outcome) -> int:
    ids = {s.id for s in run.states}
    with rig.engine.connect() as connection:
        rows = connection.execute(sa.select(fleet_app.JobAttempt.action_id)).scalars().all()
    return sum(action_id in ids for action_id in rows)
