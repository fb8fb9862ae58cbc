"""Poison pills end (issue 27, item 5; S8.2, S3.14; losses.py): a unit of user code that
kills its own worker every time it runs ends its action `failed` with `WorkerLost` after
`poison_app.LIMIT` losses in a row — a first step run inside the local prepare, a later
step, a job — while the workers, restarted as they die, go on serving other actions. A
unit lost fewer times than that, or with a failure of its code in between, runs on.

Real processes: the dev server (its workflow task timeout lowered to `TASK_TIMEOUT`, so a
local prepare lost with its worker is taken over sooner), two worker processes running
``tests.reliability.poison_app`` on PostgreSQL, restarted by the test whenever one dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session
from temporalio.client import Client

import stepped_temporal as stepped
from stepped_temporal import config
from stepped_temporal.results import ActionResult

# before the app (it keeps the session's settings, as below)
from tests.reliability.harness import DevServer, WorkerProcess, held_claims, is_closed, tail

# The app configures the workers' settings when imported; the session keeps its own.
_session_settings = config.settings()
from tests.reliability import poison_app  # noqa: E402

config._settings = _session_settings

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(300)]

APP = "tests.reliability.poison_app"
#: seconds before a workflow task lost with its worker is given to another (default 10)
TASK_TIMEOUT = 4
#: an action must end within this many seconds of its start
DEADLINE = 150.0
LIMIT = poison_app.LIMIT


@dataclass
class PoisonRig:
    """A dev server and two workers, restarted whenever one dies."""

    folder: Path
    server: DevServer
    workers: list[WorkerProcess]
    client: Client
    engine: sa.Engine
    restarts: int = 0
    #: the ticks started beside the pills (each must succeed)
    ticks: list[stepped.ActionHandle] = field(default_factory=list)

    def lab(self, lab_id: int) -> poison_app.Lab:
        with Session(self.engine) as session:
            return session.get_one(poison_app.Lab, lab_id)

    async def supervise(self) -> None:
        while True:
            for worker in self.workers:
                if not worker.alive():
                    worker.start()
                    self.restarts += 1
            await asyncio.sleep(0.2)

    async def outcome(self, handle: stepped.ActionHandle, healthy: int) -> ActionResult:
        """`handle`'s result; meanwhile a `tick` on lab `healthy` starts every second,
        and each must succeed (kept in `ticks`)."""
        deadline = time.monotonic() + DEADLINE
        started: list[stepped.ActionHandle] = []
        while not await harness_closed(self.client, handle.id):
            if time.monotonic() > deadline:
                raise AssertionError(f"{handle.id} did not end in {DEADLINE}s\n{self.logs()}")
            started.append(await stepped.start(self.lab(healthy), "tick", len(self.ticks)))
            self.ticks.append(started[-1])
            await asyncio.sleep(1.0)
        ticks = [await asyncio.wait_for(tick.result(), 60) for tick in started]
        assert [t.status for t in ticks] == ["succeeded"] * len(ticks), ticks
        return await handle.result()

    def doses(self, action_id: str) -> list[str]:
        return poison_app.doses(self.engine, action_id)

    def effects(self, action_id: str) -> list[str]:
        with self.engine.connect() as connection:
            query = sa.select(poison_app.Effect.unit).where(
                poison_app.Effect.action_id == action_id
            )
            return list(connection.scalars(query))

    def logs(self) -> str:
        return "\n".join([tail(self.server.log, 10), *(tail(w.log, 30) for w in self.workers)])


async def harness_closed(client: Client, workflow_id: str) -> bool:
    with contextlib.suppress(Exception):  # the server busy: ask again
        return await asyncio.wait_for(is_closed(client, workflow_id), 10)
    return False


@asynccontextmanager
async def poison_rig(
    folder: Path, database_url: str, scripts: dict[int, str]
) -> AsyncIterator[PoisonRig]:
    saved = config.settings()
    poison_app.configure()
    task_timeout = f'history.defaultWorkflowTaskTimeout="{TASK_TIMEOUT}s"'
    server = DevServer(folder, extra_args=["--dynamic-config-value", task_timeout])
    engine = config.create_engine(database_url)
    queue = f"poison-{os.getpid()}"
    workers = [
        WorkerProcess(folder, server.address, database_url, queue, app=APP, name=f"w{n}")
        for n in range(2)
    ]
    supervisor: asyncio.Future[None] | None = None
    try:
        await server.start()
        poison_app.create_labs(engine, scripts)
        for worker in workers:
            worker.start()
        for worker in workers:
            await worker.ready()
        client = await Client.connect(server.address)
        config.configure(client=client, engine=engine, task_queue=queue)
        rig = PoisonRig(folder, server, workers, client, engine)
        supervisor = asyncio.ensure_future(rig.supervise())
        yield rig
    finally:
        if supervisor is not None:
            supervisor.cancel()
        for worker in workers:
            worker.kill()
        server.terminate(grace=10)
        server.kill()
        engine.dispose()
        config._settings = saved


def assert_worker_lost(result: ActionResult, unit: str) -> None:
    """`result` failed with WorkerLost, whose message names the action, `unit`, the
    count and what it means."""
    assert result.status == "failed", result
    assert result.error is not None and result.error.type == "WorkerLost", result.error
    message = result.error.message
    assert result.id in message and f"{unit} never finished" in message, message
    assert f"lost {LIMIT} times in a row" in message and "poison pill" in message, message


async def test_a_first_step_killing_its_worker_fails_the_leaf_and_its_parent(
    tmp_path: Path, postgres_url: str, figures: Callable[[str], None]
) -> None:
    """A claimed leaf whose only step — run inside its local prepare, in the workflow
    task — SIGKILLs its worker at every run: each lost task is taken over by the other
    worker (or a restarted one) and charged to step 0; at the LIMIT-th loss in a row the
    leaf ends failed with WorkerLost, its parent fails (S3.14), its key is given up, and
    ticks started on the same workers all along succeed."""
    async with poison_rig(tmp_path, postgres_url, {1: "kill", 2: "ok"}) as rig:
        started = time.monotonic()
        ward = await stepped.start(rig.lab(1), "ward")
        ward_result = await rig.outcome(ward, healthy=2)
        (pill_id,) = ward_result.steps[0].actions
        pill = await stepped.action_handle(pill_id).result()

        assert_worker_lost(pill, "step 0")
        assert rig.doses(pill_id) == ["kill"] * LIMIT  # never run once more
        assert ward_result.status == "failed", ward_result
        assert held_claims(rig.engine) == []
        assert rig.restarts >= LIMIT and rig.ticks
        figures(
            f"leaf failed WorkerLost after {LIMIT} kills in {time.monotonic() - started:.1f}s "
            f"({rig.restarts} worker restarts), parent failed; {len(rig.ticks)} ticks "
            f"succeeded meanwhile"
        )


async def test_a_later_step_a_job_and_a_callback_killing_their_worker_end(
    tmp_path: Path, postgres_url: str, figures: Callable[[str], None]
) -> None:
    """A second step (a step activity) and a job (a job activity) that SIGKILL their
    worker at every run: each attempt after a lost one asks Temporal how the lost one
    ended (a heartbeat timeout), charges it, and the LIMIT-th loss in a row fails the
    action with WorkerLost; the first step's effect stays, applied once. An
    after-callback doing the same is counted failed (S3.9: the status stays)."""
    scripts = {1: "kill", 2: "kill", 3: "ok", 4: "kill"}
    async with poison_rig(tmp_path, postgres_url, scripts) as rig:
        started = time.monotonic()
        late = await stepped.start(rig.lab(1), "late_pill")
        late_result = await rig.outcome(late, healthy=3)
        late_seconds = time.monotonic() - started
        job = await stepped.start(rig.lab(2), "job_pill")
        job_result = await rig.outcome(job, healthy=3)
        after = await stepped.start(rig.lab(4), "after_pill")
        after_result = await rig.outcome(after, healthy=3)

        assert_worker_lost(late_result, "step 1")
        assert [s.status for s in late_result.steps] == ["succeeded", "failed"]
        assert rig.doses(late.id) == ["kill"] * LIMIT
        assert rig.effects(late.id) == ["step0"]
        assert_worker_lost(job_result, "its job")
        assert rig.doses(job.id) == ["kill"] * LIMIT
        assert after_result.status == "succeeded", after_result
        assert after_result.after_callbacks_failed_count == 1, after_result
        assert after_result.after_callbacks_succeeded_count is None, after_result
        assert rig.doses(after.id) == ["kill"] * LIMIT
        logged = sum(
            w.count_in_logs("after-callback 0 (succeeded) never finished") for w in rig.workers
        )
        assert logged >= 1
        assert held_claims(rig.engine) == []
        figures(
            f"later step failed WorkerLost in {late_seconds:.1f}s, then a job and an "
            f"after-callback in {time.monotonic() - started - late_seconds:.1f}s "
            f"({rig.restarts} worker restarts); {len(rig.ticks)} ticks succeeded meanwhile"
        )


async def test_losses_short_of_the_limit_in_a_row_change_nothing(
    tmp_path: Path, postgres_url: str, figures: Callable[[str], None]
) -> None:
    """Units lost LIMIT-1 times, failing in their code once, lost LIMIT-1 times again,
    then run to the end: more losses than the limit, never that many in a row. Each
    succeeds — losses short of the limit change nothing, and the failure of code ends
    the streak: across prepare and the step activity that retries its first step, in a
    step activity, and in a before hook (prepare's local activity retried in its task)."""
    script = ["kill"] * (LIMIT - 1) + ["raise"] + ["kill"] * (LIMIT - 1) + ["ok"]
    scripts = {1: ",".join(script), 2: "ok"}
    async with poison_rig(tmp_path, postgres_url, scripts) as rig:
        started = time.monotonic()
        results = []
        for name in ("pill", "late_pill", "hooked"):
            handle = await stepped.start(rig.lab(1), name)
            results.append(await rig.outcome(handle, healthy=2))

        for result in results:
            assert result.status == "succeeded", result
            assert rig.doses(result.id) == script, result.name
        assert rig.effects(results[1].id) == ["step0", "step1"]
        assert rig.effects(results[2].id) == ["before0", "step0"]
        figures(
            f"{2 * (LIMIT - 1)} losses around a code failure (first step in prepare then in "
            f"a step activity, a later step, a before hook): all succeeded in "
            f"{time.monotonic() - started:.1f}s ({rig.restarts} worker restarts)"
        )
