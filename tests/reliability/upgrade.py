"""Processes of a rolling upgrade (issue 27, item 3; test_rolling_upgrade.py): one dev
server, one task queue, workers of either version (versions.py) started and stopped
one by one, and one application client per version (upgrade_client.py) starting
trees and completing their outbound holds.

A workload is a list of trees, each one fleet (upgrade_app.py) with a number that is
its place in the workload: the reference run and the mixed run build the same trees
for different fleets (their car ids differ, so their lanes and achievements never
meet), and compare tree by tree (upgrade_checks.py).
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from temporalio.client import Client

from stepped_temporal import config
from tests.reliability.harness import Child, DevServer, WorkerProcess, is_closed, tail
from tests.reliability.production import Fleet
from tests.reliability.versions import Version

# The app sets stepped_temporal's timeouts when imported, as its workers need; the
# test session keeps its own settings.
_session_settings = config.settings()
from tests.reliability import upgrade_app  # noqa: E402

config._settings = _session_settings

__all__ = [
    "AppClient",
    "Tree",
    "UpgradeRig",
    "Workload",
    "task_failures",
    "upgrade_app",
    "upgrade_rig",
]


@dataclass(frozen=True)
class Tree:
    """One tree of a workload: its place, its fleet, who started it, its root."""

    number: int
    fleet: int
    client: str
    root: str


class AppClient(Child):
    """``python upgrade_client.py`` on one version, for some fleets."""

    def __init__(self, folder: Path, name: str, version: Version) -> None:
        super().__init__(folder / f"{name}.log")
        self.name = name
        self.version = version

    def start(self, rig: Fleet, fleets: list[int], every: float, delay: float) -> None:
        self.spawn(
            [
                self.version.python, "upgrade_client.py",
                "--address", rig.server.address, "--database-url", rig.database_url,
                "--task-queue", rig.task_queue, "--fleets", ",".join(map(str, fleets)),
                "--every", str(every), "--delay", str(delay),
            ],
            cwd=self.version.app,
            env=self.version.env,
        )  # fmt: skip

    def roots(self) -> dict[int, str]:
        """Fleet -> root action id, for the trees it started so far."""
        if not self.log.exists():
            return {}
        lines = self.log.read_text(errors="replace").splitlines()
        started = [line.split() for line in lines if line.startswith("started ")]
        return {int(fleet): root for _, fleet, root in started}

    def says(self) -> str:
        """Which stepped_temporal it runs, as upgrade_app said when it imported."""
        lines = self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
        return next((ln for ln in lines if ln.startswith("upgrade_app: ")), "(not yet)")


class CachelessWorker(WorkerProcess):
    """``python upgrade_worker.py``: a worker of either version without a workflow
    cache, so the next task of each workflow it runs may go to the other version."""

    def start(self) -> None:
        self.incarnations += 1
        self.log = self.folder / f"{self.name}-{self.incarnations}.log"
        self.spawn(
            [
                self.python, "upgrade_worker.py", "--address", self.address,
                "--database-url", self.database_url, "--task-queue", self.task_queue,
            ],
            cwd=self.cwd,
            env=self.env,
        )  # fmt: skip


@dataclass
class UpgradeRig(Fleet):
    """A dev server, workers of both versions on one task queue, their clients."""

    clients: list[AppClient] = field(default_factory=list)
    #: worker process id -> the version it runs (for the histories' identities)
    versions_by_pid: dict[int, str] = field(default_factory=dict)

    def start_worker(self, version: Version, *, cached: bool = True) -> WorkerProcess:
        """A worker of `version`: the CLI's, or without a cache (upgrade_worker.py)."""
        number = sum(w.name.startswith(version.label) for w in self.workers) + 1
        worker = (WorkerProcess if cached else CachelessWorker)(
            self.folder,
            self.server.address,
            self.database_url,
            self.task_queue,
            app="upgrade_app",
            name=f"{version.label}-{number}{'' if cached else '-uncached'}",
            env=version.env,
            python=version.python,
            cwd=version.app,
        )
        worker.start()
        assert worker.process is not None
        self.versions_by_pid[worker.process.pid] = version.label
        self.workers.append(worker)
        return worker

    def version_of(self, identity: str) -> str:
        """The version of the worker with this Temporal identity ("pid@host")."""
        pid = identity.partition("@")[0]
        return self.versions_by_pid.get(int(pid), "?") if pid.isdigit() else "server"

    def logs(self) -> str:
        """The tail of every log, and of each worker's the workflow task failures."""
        parts = [tail(self.server.log, 10)]
        for worker in self.workers:
            parts.append(tail(worker.log, 12))
            failures = task_failures(worker.log)
            if failures:
                parts.append(
                    f"({len(failures)} workflow task failures logged; the last: "
                    f"{failures[-1][:400]})"
                )
        parts += [tail(client.log, 10) for client in self.clients]
        return "\n".join(parts)

    async def run(
        self,
        trees: list[list[upgrade_app.Shape]],
        first_fleet: int,
        clients: tuple[Version, Version],
        every: float,
        during: Callable[[], Awaitable[None]] | None = None,
    ) -> Workload:
        """Create one fleet per tree and start the trees alternately through the two
        clients, one every `every`/2 seconds, while `during` runs (awaited)."""
        fleets = [first_fleet + number for number in range(len(trees))]
        for fleet, shapes in zip(fleets, trees, strict=True):
            upgrade_app.create_fleet(self.engine, fleet, shapes)
        workload = Workload(first_fleet, fleets)
        for half, version in enumerate(clients):
            name = f"client-{first_fleet}-{half}-{version.label}"
            client = AppClient(self.folder, name, version)
            client.start(self, fleets[half::2], every, delay=half * every / 2)
            workload.clients.append(client)
        self.clients += workload.clients
        if during is not None:
            await during()
        return workload

    async def open_trees(self) -> int:
        """How many trees started so far have not ended."""
        roots = [root for client in self.clients for root in client.roots().values()]
        return sum([not await self.closed(root) for root in roots])

    async def closed(self, workflow_id: str) -> bool:
        try:
            return await asyncio.wait_for(is_closed(self.client, workflow_id), 10)
        except Exception:  # a worker or the server busy: ask again
            return False


@dataclass
class Workload:
    """The trees of one run: their fleets, and the clients starting them."""

    first_fleet: int
    fleets: list[int]
    clients: list[AppClient] = field(default_factory=list)

    def trees(self) -> dict[int, Tree]:
        """Fleet -> its tree, for the trees started so far."""
        return {
            fleet: Tree(fleet - self.first_fleet, fleet, client.version.label, root)
            for client in self.clients
            for fleet, root in client.roots().items()
        }


#: what a worker's log says when a workflow task fails (Temporal's core, the Python SDK)
TASK_FAILURE_MARKS = ("Failing workflow task", "Failed activation", "Failed handling activation")


def task_failures(log: Path) -> list[str]:
    """The lines of a log that report a workflow task failing, without colours."""
    if not log.exists():
        return []
    lines = re.sub(r"\x1b\[[0-9;]*m", "", log.read_text(errors="replace")).splitlines()
    return [line for line in lines if any(mark in line for mark in TASK_FAILURE_MARKS)]


@asynccontextmanager
async def upgrade_rig(folder: Path, database_url: str) -> AsyncIterator[UpgradeRig]:
    """A dev server and the tables; no worker yet. Stops every process after."""
    saved = config.settings()
    server = DevServer(folder)
    engine = config.create_engine(database_url)
    queue = f"upgrade-{os.getpid()}"
    rig: UpgradeRig | None = None
    try:
        await server.start()
        upgrade_app.Base.metadata.create_all(engine)
        client = await Client.connect(server.address)
        config.configure(client=client, engine=engine, task_queue=queue)
        rig = UpgradeRig(folder, server, [], client, engine, database_url, queue)
        yield rig
    finally:
        for process in [*(rig.workers if rig else []), *(rig.clients if rig else [])]:
            process.kill()
        server.terminate(grace=10)
        server.kill()
        engine.dispose()
        config._settings = saved
