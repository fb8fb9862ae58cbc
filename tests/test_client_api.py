"""S9.1, S9.2, S4.6, S3.13: starting, waiting for, describing and cancelling actions.

`start` returns a handle once the action is durably started and `run` waits
for its result; `<name>_later` and `<name>_now` are the same for declared
actions. `describe()` reports every S9.2 field at any time; `result()` equals
it once final. Cancelling a performing action completes it as cancelled.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

import pytest

import stepped_temporal as stepped
from tests.support import car_class, until

ACTION_FIELDS = {
    "id",
    "actor_type",
    "actor_id",
    "name",
    "arguments",
    "status",
    "root",
    "outbound",
    "checksum",
    "checksum_key",
    "concurrency_key",
    "timeout",
    "started_at",
    "completed_at",
    "current_step_index",
    "after_callbacks_succeeded_count",
    "after_callbacks_failed_count",
    "error",
    "resolved_by",
    "steps",
}
STEP_FIELDS = {
    "index",
    "status",
    "pending_actions_count",
    "unsuccessful_actions_count",
    "started_at",
    "completed_at",
    "actions",
}


def _stopover(Car):
    """`stopover(city)`: a child honk and a one-hour wait, then drive 3 miles."""
    stopover = Car.stepped_action("stopover", timeout=timedelta(hours=2))
    stopover.checksum(lambda car, city: city)

    @stopover.step
    def _(car, step, city):
        step.do("honk")
        step.wait(timedelta(hours=1))

    stopover.step(lambda car, step, city: car.drive(3))

    @stopover.after("cancelled")
    def _(car, action, city):
        car.change_location(f"cancelled in {city}")

    return stopover


async def test_start_returns_a_handle_and_run_returns_the_result(stepped_env):
    """S9.1, S3.13: start → handle (id == workflow_id, tenancy prefix); run → final result."""
    Car = car_class()
    car = stepped_env.create(Car, id=1)

    handle = await stepped.start(car, "drive", 4)
    assert isinstance(handle, stepped.ActionHandle)
    assert handle.id == handle.workflow_id
    assert handle.id.startswith("Car/1/drive/")
    started = await handle.result()
    assert isinstance(started, stepped.ActionResult)
    assert started.id == handle.id and started.status == "succeeded" and started.root

    ran = await stepped.run(car, "drive", 6)
    assert isinstance(ran, stepped.ActionResult)
    assert ran.status == "succeeded" and ran.root
    assert ran.id != handle.id and ran.id.startswith("Car/1/drive/")
    assert stepped_env.reload(car).mileage == 10


async def test_later_and_now_are_generated_for_declared_actions(stepped_env):
    """S9.1: car.visit_later(...) starts, car.visit_now(...) runs a declared action."""
    Car = car_class()
    visit = Car.stepped_action("visit")
    visit.step(lambda car, step, city: step.do("change_location", city))
    car = stepped_env.create(Car, id=1)

    handle = await car.visit_later("Berlin")
    assert isinstance(handle, stepped.ActionHandle)
    assert handle.id.startswith("Car/1/visit/")
    later = await handle.result()
    assert (later.status, later.arguments, later.root) == ("succeeded", ["Berlin"], True)
    assert stepped_env.reload(car).location == "Berlin"

    now = await car.visit_now("Rome")
    assert isinstance(now, stepped.ActionResult)
    assert (now.name, now.status, now.arguments, now.root) == ("visit", "succeeded", ["Rome"], True)
    assert stepped_env.reload(car).location == "Rome"


@pytest.mark.time_skipping
async def test_describe_while_performing_and_after_completion(stepped_env):
    """S9.2: every field while performing and once final; result() equals describe()."""
    Car = car_class()
    _stopover(Car)
    car = stepped_env.create(Car, id=1)
    handle = await stepped.start(car, "stopover", "Lyon")

    state = await until(
        handle,
        lambda s: s.status == "performing" and s.steps and s.steps[0].pending_actions_count == 1,
    )

    assert {f.name for f in dataclasses.fields(state)} >= ACTION_FIELDS
    assert (state.id, state.actor_type, state.actor_id, state.name) == (
        handle.id,
        "Car",
        1,
        "stopover",
    )
    assert state.arguments == ["Lyon"]
    assert state.root and not state.outbound
    assert state.checksum == stepped.checksum("Lyon")
    assert state.checksum_key == state.concurrency_key == "Car/1/stopover"
    assert state.timeout == 7200.0
    assert isinstance(state.started_at, datetime) and state.completed_at is None
    assert state.current_step_index == 0
    assert state.after_callbacks_succeeded_count is None
    assert state.after_callbacks_failed_count is None
    assert state.error is None and state.resolved_by is None
    (step,) = state.steps
    assert {f.name for f in dataclasses.fields(step)} >= STEP_FIELDS
    assert (step.index, step.status) == (0, "performing")
    assert (step.pending_actions_count, step.unsuccessful_actions_count) == (1, 0)
    assert isinstance(step.started_at, datetime) and step.completed_at is None
    (child_id,) = step.actions
    assert child_id.startswith("Car/1/honk/")
    child = await stepped.action_handle(child_id).describe()
    assert (child.id, child.name, child.status) == (child_id, "honk", "succeeded")
    assert not child.root and child.parent_id == handle.id
    assert stepped_env.reload(car).honks == 1
    assert stepped_env.reload(car).mileage == 0

    result = await handle.result()
    final = await handle.describe()

    assert result.status == "succeeded"
    assert dataclasses.asdict(result) == dataclasses.asdict(final)
    assert result.completed_at is not None and result.completed_at >= result.started_at
    assert result.current_step_index == 1
    assert [s.status for s in result.steps] == ["succeeded", "succeeded"]
    assert result.steps[0].actions == (child_id,)
    assert result.steps[0].pending_actions_count == 0
    assert result.steps[0].completed_at <= result.steps[1].started_at
    assert result.error is None and result.resolved_by is None
    assert stepped_env.reload(car).mileage == 3


@pytest.mark.time_skipping
async def test_cancelling_a_performing_action(stepped_env):
    """S4.6, S3.9: cancel() during a long wait → cancelled, cancelled callbacks run, lane moves."""
    Car = car_class()
    _stopover(Car)
    car = stepped_env.create(Car, id=1)
    first = await stepped.start(car, "stopover", "Lyon")
    await until(first, lambda s: s.steps and s.steps[0].pending_actions_count == 1)
    second = await stepped.start(car, "stopover", "Nice")
    assert (await until(second, lambda s: s.concurrency_key is not None)).status == "pending"

    assert await first.cancel() is True
    result = await first.result()

    assert result.status == "cancelled"
    assert result.completed_at is not None
    assert result.after_callbacks_succeeded_count == 1
    assert len(result.steps) == 1  # the second step never ran
    assert (await first.describe()).status == "cancelled"
    after_second = await second.result()
    assert after_second.status == "succeeded"
    assert after_second.after_callbacks_succeeded_count is None
    reloaded = stepped_env.reload(car)
    assert (reloaded.location, reloaded.mileage, reloaded.honks) == ("cancelled in Lyon", 3, 2)
