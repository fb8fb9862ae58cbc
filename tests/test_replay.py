"""Workflow code is deterministic: recorded histories replay without error.

The workflows only interpret what activities report, so replaying a finished
tree's histories (root, children, lanes) must reproduce the same commands.
Three sources: a tree run here; the trees recorded by tests/histories/record.py
(`<commit>[-dev]/NN.json`); and the corpus recorded by
tests/histories/record_corpus.py on the dev server (`<commit>-corpus/
<scenario>-NN.json.gz` with a MANIFEST.json), which covers every path that
shapes commands: lanes continuing as new, each lane policy, a fan-out past the
child window, superseding with forwards, deadlock probes, an outbound
completion, a timeout, a job's retries. A change that shapes commands adds a
corpus recorded by the new version; earlier ones are kept.
"""

from __future__ import annotations

import functools
import gzip
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

import stepped_temporal as stepped
from stepped_temporal import versioning
from stepped_temporal.lanes import LaneWorkflow
from stepped_temporal.worker import workflow_runner
from stepped_temporal.workflows import ActionWorkflow
from tests.support import car_class

#: both runners: Stepped's default (no sandbox) and Temporal's sandbox
RUNNERS = pytest.mark.parametrize("sandboxed", [False, True], ids=["unsandboxed", "sandboxed"])


@RUNNERS
@pytest.mark.time_skipping
async def test_histories_of_a_tree_replay(stepped_env, sandboxed):
    Car = car_class()
    tour = Car.stepped_action("tour")

    @tour.before
    def _(car, action, others):
        action.arguments = [others, "extra"]

    @tour.step
    def _(car, step, others, extra):
        step.wait(timedelta(minutes=3))
        step.on(others, "drive", 3)

    @tour.step
    def _(car, step, others, extra):
        step.do("honk")

    @tour.succeeded
    def _(car, action, others, extra):
        car.change_location("home")

    cars = [stepped_env.create(Car, id=n) for n in (1, 2, 3)]
    # two tours of one car: the second queues in the lane, which adopts the first
    first = await stepped.start(cars[0], "tour", cars[1:])
    second = await stepped.start(cars[0], "tour", cars[1:])
    results = [await first.result(), await second.result()]
    assert [r.status for r in results] == ["succeeded", "succeeded"]

    ids = [r.id for r in results]
    for result in results:
        ids += [*result.steps[0].actions, *result.steps[1].actions]
    ids += ["stepped-lane/Car/1/tour"]
    histories = [await stepped_env.client.get_workflow_handle(i).fetch_history() for i in ids]
    replayer = Replayer(
        workflows=[ActionWorkflow, LaneWorkflow],
        workflow_runner=workflow_runner(sandboxed),
    )
    for history in histories:
        assert len(history.events) > 3
        replayed = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        assert replayed.replay_failure is None, f"{history.workflow_id}: {replayed.replay_failure}"


HISTORIES = Path(__file__).parent / "histories"
#: the trees record.py wrote (a corpus directory's MANIFEST.json is no history)
TREES = sorted(p for p in HISTORIES.glob("*/*.json") if p.name != "MANIFEST.json")
#: the corpus record_corpus.py wrote
CORPUS = sorted(HISTORIES.glob("*/*.json.gz"))


#: replays of recorded files use no server: CI runs them once, not again on the dev server
OFFLINE = pytest.mark.offline


@OFFLINE
@RUNNERS
@pytest.mark.parametrize("recorded", TREES, ids=lambda p: f"{p.parent.name}/{p.stem}")
async def test_histories_recorded_by_an_older_version_replay(recorded, sandboxed):
    """Histories recorded by an earlier version (tests/histories/<commit>/, made by
    tests/histories/record.py: a tree with a before hook, waits, a fan-out, three
    calls on a busy lane, an outbound action with a timeout completed from outside,
    a job with a prepended step, a cancelled action mid-step, a parent whose
    children fail (from 12-06), and two lanes) replay
    on today's workflow code: running workflows survive an upgrade."""
    history = WorkflowHistory.from_json(recorded.stem, recorded.read_text())
    replayer = Replayer(
        workflows=[ActionWorkflow, LaneWorkflow],
        workflow_runner=workflow_runner(sandboxed),
    )
    replayed = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert replayed.replay_failure is None, f"{recorded}: {replayed.replay_failure}"


def _name(path: Path) -> str:
    return f"{path.parent.name}/{path.name.removesuffix('.json.gz')}"


def _scenario(path: Path) -> str:
    """The corpus scenario a file belongs to (`<scenario>-NN.json.gz`)."""
    return path.name.removesuffix(".json.gz").rsplit("-", 1)[0]


def _manifest(directory: Path) -> dict[str, dict]:
    """A corpus directory's MANIFEST.json entries, by file name."""
    manifest = json.loads((directory / "MANIFEST.json").read_text())
    return {entry["file"]: entry for entry in manifest["files"]}


def _about(path: Path) -> str:
    entry = _manifest(path.parent)[path.name]
    continued = ", continued as new" if entry["continued_as_new"] else ""
    return f"{entry['workflow_id']} run {entry['run_id']} ({entry['events']} events{continued})"


async def replay_each(paths: list[Path], sandboxed: bool) -> dict[Path, str | None]:
    """Replay corpus histories as a worker would meet them; each one's failure, or None.

    A lane run recorded before lane shapes may fail its first replay with a
    non-determinism error — it was written with a continue-as-new threshold of
    3,000 events or of 2,000, and nothing in it says which — and replays on the
    second, as a worker's next task would (versioning.py). Nothing else gets a
    second replay."""
    failures = await _replay_once(paths, sandboxed)
    again = [
        p
        for p, failure in failures.items()
        if failure and "ondeterminism" in failure and _workflow_id(p).startswith("stepped-lane/")
    ]
    if again:
        failures.update(await _replay_once(again, sandboxed))
    return failures


def _workflow_id(path: Path) -> str:
    return str(_manifest(path.parent)[path.name]["workflow_id"])


async def _replay_once(paths: list[Path], sandboxed: bool) -> dict[Path, str | None]:
    """Replay corpus histories with one Replayer (one replay worker for them all,
    not one per history); each one's failure, or None."""
    manifests = {directory: _manifest(directory) for directory in {p.parent for p in paths}}
    histories = [
        WorkflowHistory.from_json(
            manifests[path.parent][path.name]["workflow_id"],
            gzip.decompress(path.read_bytes()).decode(),
        )
        for path in paths
    ]

    async def feed() -> AsyncIterator[WorkflowHistory]:
        for history in histories:
            yield history

    replayer = Replayer(
        workflows=[ActionWorkflow, LaneWorkflow],
        workflow_runner=workflow_runner(sandboxed),
    )
    failures: dict[Path, str | None] = {}
    async with replayer.workflow_replay_iterator(feed()) as results:
        async for result in results:
            path = paths[len(failures)]
            failures[path] = None if result.replay_failure is None else str(result.replay_failure)
    assert len(failures) == len(paths), f"replayed {len(failures)} of {len(paths)}"
    return failures


_replayed: dict[tuple[Path, bool], dict[Path, str | None]] = {}


async def corpus_results(directory: Path, sandboxed: bool) -> dict[Path, str | None]:
    """Every corpus history of `directory` replayed on today's code, once per runner
    per session (the tests below report each history on its own)."""
    key = (directory, sandboxed)
    if key not in _replayed:
        _replayed[key] = await replay_each(sorted(directory.glob("*.json.gz")), sandboxed)
    return _replayed[key]


@OFFLINE
@RUNNERS
@pytest.mark.parametrize("recorded", CORPUS, ids=_name)
async def test_the_corpus_replays(recorded, sandboxed):
    """Every corpus history (tests/histories/<commit>-corpus/, made by
    tests/histories/record_corpus.py on the dev server at that commit) replays on
    today's workflow code: actions and lanes in flight survive an upgrade on
    every path that shapes commands — including lane runs that continued as new
    under an earlier continue-as-new threshold (versioning.py)."""
    failure = (await corpus_results(recorded.parent, sandboxed))[recorded]
    assert failure is None, f"{_name(recorded)}: {_about(recorded)} does not replay: {failure}"


#: per number that shapes commands (a field of shapes.ActionShape or LaneShape),
#: the corpus scenarios whose histories it shapes
SHAPED_BY = {
    "start_batch": ("fan_out_wide",),
    "child_window": ("fan_out_wide",),
    "window": ("lane_continues_as_new", "supersede_with_forwards"),
    "history_limit": ("lane_continues_as_new", "supersede_with_forwards"),
    "stop_events": ("history_stop",),
    "continue_events": (
        "action_continues_as_new",
        "action_continues_inside_a_step",
        "wide_step_in_pages",
    ),
    "step_events": ("action_continues_inside_a_step", "wide_step_in_pages"),
}


@contextmanager
def changed_on_replay(number: str, value: int) -> Iterator[None]:
    """Make the workflow code use `value` for `number` when it replays, whatever the
    run recorded — as a release that read it from a changed constant instead of
    the run's shape would (shapes.py)."""
    action_init, lane_init = ActionWorkflow.__init__, LaneWorkflow.__init__

    @functools.wraps(action_init)  # (keeps @workflow.init's mark)
    def action(self: ActionWorkflow, input: Any) -> None:
        action_init(self, input)
        run = self._action
        if hasattr(run.input.shape, number):
            run.input = replace(run.input, shape=replace(run.input.shape, **{number: value}))

    @functools.wraps(lane_init)
    def lane(self: LaneWorkflow, state: Any) -> None:
        lane_init(self, state)
        if number == "history_limit":
            self._history_limit = value
        elif hasattr(self._state.shape, number):
            self._state.shape = replace(self._state.shape, **{number: value})

    ActionWorkflow.__init__ = action  # type: ignore[method-assign]
    LaneWorkflow.__init__ = lane  # type: ignore[method-assign]
    learned = versioning._legacy_runs.copy()  # what the failures teach is wrong here
    try:
        yield
    finally:
        ActionWorkflow.__init__ = action_init  # type: ignore[method-assign]
        LaneWorkflow.__init__ = lane_init  # type: ignore[method-assign]
        versioning._legacy_runs.clear()
        versioning._legacy_runs.update(learned)


@OFFLINE
@pytest.mark.parametrize(
    ("constant", "value"),
    [
        ("start_batch", 40),
        ("child_window", 900),
        ("window", 150),
        ("history_limit", 1000),
        # the change 0013fc8 shipped, the other way round: fda2b05's lanes under 3,000
        ("history_limit", 3000),
        # an action that would stop later than its run recorded (S11.4): or never
        ("stop_events", 300),
        ("stop_events", 1_000_000),
        # an action continuing as new later than its run recorded (S11.1)
        ("continue_events", 80),
        # an action continuing as new at another point inside a step (S11.1)
        ("step_events", 150),
    ],
)
async def test_the_corpus_catches_a_change_without_a_marker(constant, value):
    """With one command-shaping number changed on replay (not the one the run
    recorded), replaying the corpus fails for at least one history that replays
    clean unchanged, with
    Temporal's nondeterminism error. (A larger CHILD_WINDOW is not among them: it
    only issues the same child starts a task earlier, in the same order, and
    Temporal's replay matches commands by their order, not by task.)"""
    paths = [p for p in CORPUS if _scenario(p) in SHAPED_BY[constant]]
    assert paths, f"the corpus has no history shaped by {constant}"
    clean = [p for p in paths if (await corpus_results(p.parent, False))[p] is None]
    assert clean, f"no history shaped by {constant} replays clean unchanged"
    with changed_on_replay(constant, value):
        failures = await replay_each(clean, sandboxed=False)
    caught = {_name(p): failure for p, failure in failures.items() if failure is not None}
    assert caught, f"{constant} = {value}: every one of {[_name(p) for p in clean]} replays"
    assert any("Nondeterminism" in failure for failure in caught.values()), caught
