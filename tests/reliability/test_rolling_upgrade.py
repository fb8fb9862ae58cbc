"""Rolling upgrades are safe (issue 27, item 3): workers of the previous release and of
the new code on one task queue, under mixed traffic, never fail or wedge a workflow —
every tree ends exactly as it ends on one version.

The previous release is the wheel in tests/reliability/previous/ (its README names
the commit), installed offline into a virtualenv of its own; the new code is this
session's stepped_temporal (versions.py; the test asserts which code each side
imports). One dev server, one PostgreSQL schema, one task queue:

1. the reference: two workers of the new code run the workload, its trees started
   alternately by two application clients of the new code;
2. the upgrade: two workers of the previous release join two of the new code (the
   reference's first, and one in place of its second), and the same workload runs
   again (other fleets), half its trees started by a client of the
   previous release and half by one of the new code; while it runs, the previous
   release's workers are replaced one by one — SIGTERM (graceful), then SIGKILL —
   each by a new-code worker (the CLI's, as deployed).

Of each version's two workers one is the CLI's and one keeps no workflow cache
(upgrade_worker.py): with caches alone a workflow changes version only when its
worker goes away, and only from old to new; without, its next task may go to either
version, so histories written by each version are replayed by the other.

Each tree is a fleet's ``service`` (upgrade_app.py): fan-outs of children, a lane
that supersedes and one that queues (S4.2, S4.10), sharing by checksum (S4.3, S3.4),
an outbound action completed from outside by the client that started the tree
(S6.1), a job that fails and is retried (S6.4, S8.4), an outbound action that times
out (S7.1) and fails its tree (S3.14), timed waits (S3.12). Every tree of the
upgrade must match its reference tree action by action — Stepped status, Temporal
close status, effects, none applied twice — with no workflow left running, no lane
busy or ended otherwise than completed, no claim held (upgrade_checks.py). Workflow
tasks that fail or time out along the way are reported, not failed on: Temporal
retries them, and that is allowed during an upgrade; failed workflows and hangs are
not. The test also asserts that the upgrade really mixed: the previous release's
workers ran workflow tasks and activities, and workflows moved between the versions
in both directions.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stepped_temporal.workflows import ACTION_WORKFLOW
from tests.reliability import production, upgrade, upgrade_checks, versions
from tests.reliability.harness import WorkerProcess
from tests.reliability.upgrade import UpgradeRig, upgrade_app
from tests.reliability.versions import Version

pytestmark = [pytest.mark.reliability]

#: the workload: TREES trees of CARS cars each (shapes from SEED), one started every
#: EVERY/2 seconds, alternating between the two clients
TREES, CARS, SEED, EVERY = 10, 3, 27, 4.0
#: seconds of mixed traffic before each step of the rolling deploy
DEPLOY_EVERY = 10.0
#: the fleets of the reference run and of the upgrade (their car ids never meet)
REFERENCE_FLEET, UPGRADE_FLEET = 1, 101


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Version, Version]:
    """The previous release (its own virtualenv, built once per session) and the new
    code, each checked to import its own stepped_temporal."""
    folder = tmp_path_factory.mktemp("versions")
    app = versions.copy_app(folder / "app")
    return versions.install_previous(folder, app), versions.new_code(app)


async def _deploy(rig: UpgradeRig, old: list[WorkerProcess], new: Version) -> list[str]:
    """Replace each worker of the previous release by one of the new code: the first
    stopped with SIGTERM (it finishes its activities), the second SIGKILLed."""
    steps = []
    for worker, how in zip(old, ("SIGTERM", "SIGKILL"), strict=True):
        await asyncio.sleep(DEPLOY_EVERY)
        open_trees = await rig.open_trees()
        if how == "SIGTERM":
            seconds = await asyncio.to_thread(worker.terminate, 30.0)
            done = f"exited {worker.returncode} in {seconds:.1f}s"
        else:
            worker.kill()
            done = "killed"
        replacement = rig.start_worker(new)
        await replacement.ready()
        steps.append(f"{worker.name} {how} ({done}; {open_trees} trees open) -> {replacement.name}")
        assert open_trees, f"{worker.name} was stopped after every tree had ended\n{rig.logs()}"
    return steps


@pytest.mark.timeout(900)
async def test_old_and_new_workers_on_one_task_queue(
    tmp_path: Path,
    postgres_url: str,
    installed: tuple[Version, Version],
    figures: Callable[[str], None],
) -> None:
    """Issue 27, item 3: a rolling deploy under mixed traffic from both versions'
    clients; every tree ends as on the new code alone, no workflow hangs or fails."""
    previous, new = installed
    shapes = [upgrade_app.shapes(SEED + number, CARS) for number in range(TREES)]
    async with upgrade.upgrade_rig(tmp_path, postgres_url) as rig:
        for worker in [rig.start_worker(new) for _ in range(2)]:
            await worker.ready()
        started = time.monotonic()
        reference_since = datetime.now(UTC)
        workload = await rig.run(shapes, REFERENCE_FLEET, (new, new), EVERY)
        reference = await upgrade_checks.ended(rig, workload)
        reference_seconds = time.monotonic() - started

        # one worker of each version keeps no workflow cache (see above)
        await asyncio.to_thread(rig.workers[1].terminate, 30.0)
        old = [rig.start_worker(previous), rig.start_worker(previous, cached=False)]
        for worker in [*old, rig.start_worker(new, cached=False)]:
            await worker.ready()
        steps: list[str] = []

        async def rolling_deploy() -> None:
            steps.extend(await _deploy(rig, old, new))

        started = time.monotonic()
        since = datetime.now(UTC)
        workload = await rig.run(shapes, UPGRADE_FLEET, (previous, new), EVERY, rolling_deploy)
        mixed = await upgrade_checks.ended(rig, workload)
        mixed_seconds = time.monotonic() - started

        for client in rig.clients:
            says = f"upgrade_app: stepped_temporal {client.version.says}"
            assert client.says() == says, f"{client.name} ran {client.says()}, not {says}"
        started = time.monotonic()
        temporal = await upgrade_checks.closed_statuses(rig.client, ACTION_WORKFLOW)
        problems = await production.leftovers(rig, set(temporal))
        problems += await upgrade_checks.compare(rig, reference, mixed, shapes)
        tasks, baseline = await asyncio.gather(
            upgrade_checks.tasks(rig, since), upgrade_checks.tasks(rig, reference_since, since)
        )
        checks_seconds = time.monotonic() - started
        figures(
            f"previous release {previous.says}; new code {new.says}; {TREES} trees of "
            f"{sum(map(upgrade_app.expected_actions, shapes))} actions, half started by each "
            f"version's client; rolling deploy: {'; '.join(steps)}; upgrade "
            f"{mixed_seconds:.0f}s, reference (new code alone) {reference_seconds:.0f}s, "
            f"checks {checks_seconds:.0f}s"
        )
        figures(f"upgrade: {tasks.summary()}; worker logs: {upgrade_checks.logged_failures(rig)}")
        figures(f"reference: {baseline.summary()}")
        for sample in tasks.samples:
            figures(f"failed task: {sample}")
        problems += [
            f"lane ended {lane}" for lane in tasks.lanes_ended_badly + baseline.lanes_ended_badly
        ]
        problems += [
            f"{client.name} did not exit cleanly (exit status {client.returncode})"
            for client in rig.clients
            if client.returncode != 0
        ]
        assert not problems, "\n".join([*problems, tasks.summary(), *tasks.samples, rig.logs()])
        assert tasks.workflow_tasks["previous"] and tasks.activities["previous"], (
            f"the previous release's workers ran no work: {tasks.summary()}\n{rig.logs()}"
        )
        assert len(tasks.crossed) == 2, f"workflows did not move both ways: {tasks.summary()}"
