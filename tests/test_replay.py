"""Workflow code is deterministic: recorded histories replay without error.

The workflows only interpret what activities report, so replaying a finished
tree's histories (root, children, lanes) must reproduce the same commands.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

import stepped_temporal as stepped
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


@RUNNERS
@pytest.mark.parametrize(
    "recorded", sorted(HISTORIES.glob("*/*.json")), ids=lambda p: f"{p.parent.name}/{p.stem}"
)
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
