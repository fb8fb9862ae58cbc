"""Crash tests at production shape (issue 19): three worker processes on one task queue,
a tree of 500+ actions on PostgreSQL with contended lanes that supersede and share,
outbound actions completed from another process, jobs retried, timeouts — and
workers SIGKILLed at random, or exactly inside each critical window (faults.py).

Every test compares the disturbed tree with an undisturbed run of the same shapes,
place by place: every action final with the same status, no step still waiting,
every effect applied exactly once and the same effects, no lane busy, no claim
held. ``STEPPED_RELIABILITY_SEED`` replays a seed's tree and kill intervals (which
worker dies also depends on which ones are up at that moment).
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from stepped_temporal import faults
from tests.reliability import fleet_app, outcomes, production
from tests.reliability.conftest import backend
from tests.reliability.harness import wait_closed
from tests.reliability.outcomes import Outcome
from tests.reliability.production import Fleet

pytestmark = [pytest.mark.reliability]

#: the many-kills tree: at least ACTIONS actions (from CARS cars up, about 8 actions
#: each), and the kills while it runs
CARS, ACTIONS, KILLS = 56, 500, 50
#: cars and firings per critical window
WINDOW_CARS, FIRINGS, WINDOW_SEED = 12, 3, 19
#: seconds a tree may take
UNDISTURBED, DISTURBED = 240.0, 420.0


async def _finish(rig: Fleet, root: str, fleet_id: int, seconds: float) -> Outcome:
    started = time.monotonic()
    try:
        await wait_closed(rig.client, root, started + seconds)
    except TimeoutError:
        raise AssertionError(
            f"fleet {fleet_id}'s tree did not end within {seconds}s "
            f"({rig.effects()} effects)\n{rig.logs()}"
        ) from None
    return await production.outcome(rig, root, fleet_id)


async def _reference(rig: Fleet, shapes: list[fleet_app.Shape]) -> tuple[Outcome, float]:
    started = time.monotonic()
    root = await rig.run_service(1, shapes)
    reference = await _finish(rig, root, 1, UNDISTURBED)
    return reference, time.monotonic() - started


async def _check(rig: Fleet, reference: Outcome, disturbed: Outcome, expected: int) -> None:
    problems = outcomes.compare(reference, disturbed, expected)
    problems += await production.leftovers(rig, {s.id for s in disturbed.states})
    assert not problems, "\n".join(problems)


@pytest.mark.timeout(900)
async def test_three_workers_killed_fifty_times(
    tmp_path: Path,
    reliability_db: str,
    figures: Callable[[str], None],
) -> None:
    """1: any of three workers SIGKILLed 50 times (restarted each time) while a tree
    of 500+ actions runs; it ends as an undisturbed run of the same seed did."""
    seed = int(os.environ.get("STEPPED_RELIABILITY_SEED") or random.randrange(1 << 32))
    print(f"seed {seed} (STEPPED_RELIABILITY_SEED={seed} replays it)", flush=True)
    rng = random.Random(seed)
    cars = CARS
    while fleet_app.expected_actions(fleet_app.shapes(seed, cars)) < ACTIONS:
        cars += 1
    shapes = fleet_app.shapes(seed, cars)
    expected = fleet_app.expected_actions(shapes)
    async with production.fleet_rig(tmp_path, reliability_db) as rig:
        reference, reference_seconds = await _reference(rig, shapes)

        started = time.monotonic()
        root = await rig.run_service(2, shapes)
        kills = mid_tree = 0
        while kills < KILLS:
            await asyncio.sleep(rng.uniform(0.2, 0.8))
            up = [worker for worker in rig.workers if worker.is_ready()]
            if not up:
                continue
            victim = rng.choice(up)
            mid_tree += not await production.root_closed(rig, root)
            victim.kill()
            victim.start()
            kills += 1
        disturbed = await _finish(rig, root, 2, DISTURBED)
        seconds = time.monotonic() - started
        await _check(rig, reference, disturbed, expected)
        retried, most, broken = await production.retries(rig, disturbed)
        figures(
            f"{backend(reliability_db)}, seed {seed}: {KILLS} kills of 3 workers "
            f"({mid_tree} mid-tree); {len(disturbed.states)} actions "
            f"({outcomes.status_counts(disturbed)}), the same as undisturbed; "
            f"effects {sum(disturbed.effects.values())}, none twice; "
            f"{production.job_attempts(rig, disturbed)} job attempts; "
            f"{retried} activities retried (max attempt {most}), {broken} workflow tasks "
            f"timed out/failed; {rig.completers[-1].completions()} holds completed from "
            f"another process; longest streak of losses of one unit "
            f"{max(w.longest_loss_streak() for w in rig.workers)} (limit "
            f"{fleet_app.LOSS_LIMIT}); tree {seconds:.1f}s (undisturbed "
            f"{reference_seconds:.1f}s)"
        )
        assert mid_tree == KILLS, f"the tree ended after {mid_tree} of {KILLS} kills"


#: the undisturbed outcome of the window tests' tree, computed once
_WINDOW_REFERENCE: dict[str, tuple[Outcome, float]] = {}


@pytest.mark.timeout(600)
@pytest.mark.parametrize("window", faults.WINDOWS)
async def test_a_kill_inside_the_window(
    window: str,
    tmp_path: Path,
    reliability_db: str,
    figures: Callable[[str], None],
) -> None:
    """2: a worker kills itself inside `window` (FIRINGS times, faults.py) and is
    restarted; the tree ends as the undisturbed one did."""
    shapes = fleet_app.shapes(WINDOW_SEED, WINDOW_CARS)
    # the shapes must open every window at least FIRINGS times
    assert sum(s.works >= 2 for s in shapes) >= FIRINGS
    assert sum(s.job_failures >= 1 for s in shapes) >= FIRINGS
    expected = fleet_app.expected_actions(shapes)
    folder = tmp_path / "faults"
    folder.mkdir()
    async with production.fleet_rig(tmp_path, reliability_db) as rig:
        if backend(reliability_db) not in _WINDOW_REFERENCE:
            _WINDOW_REFERENCE[backend(reliability_db)] = await _reference(rig, shapes)
        reference, _ = _WINDOW_REFERENCE[backend(reliability_db)]
        await rig.restart_workers({faults.ENV: f"{window}={FIRINGS}", faults.ENV_DIR: str(folder)})
        started = time.monotonic()
        root = await rig.run_service(2, shapes)
        restarts = await production.supervise(rig, root, DISTURBED)
        disturbed = await _finish(rig, root, 2, DISTURBED)
        seconds = time.monotonic() - started
        fired = faults.fired(folder, window)
        assert fired == FIRINGS, f"{window} fired {fired} of {FIRINGS} times\n{rig.logs()}"
        await _check(rig, reference, disturbed, expected)
        retried, most, _ = await production.retries(rig, disturbed)
        figures(
            f"{backend(reliability_db)}: {window} fired {fired}x, {restarts} worker restarts; "
            f"{len(disturbed.states)} actions ({outcomes.status_counts(disturbed)}), the "
            f"same as undisturbed; effects {sum(disturbed.effects.values())}, none twice; "
            f"{retried} activities retried (max attempt {most}); tree {seconds:.1f}s"
        )
