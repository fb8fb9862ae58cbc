"""S4.6: cancelling pending actions (they leave the queue) and performing ones
(they complete as cancelled and the lane moves on)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.client import WorkflowHandle

import stepped_temporal as stepped
from stepped_temporal.lane_messages import LaneState
from tests.support import car_class, first_child, joined, performing, until


def _declare(Car):
    visit = Car.stepped_action("visit")

    @visit.step
    def _(car, step, location):
        step.wait(timedelta(hours=1))

    @visit.step
    def _(car, step, location):
        car.change_location(location)

    @visit.cancelled
    def _(car, action, location):
        car.honk()


def _lane(env, key: str) -> WorkflowHandle:
    return env.client.get_workflow_handle(f"stepped-lane/{key}", result_type=LaneState)


@pytest.mark.time_skipping
async def test_cancelling_a_pending_action_removes_it_from_the_queue(stepped_env):
    """S4.6: cancelled, callbacks run, the performing action is unaffected."""
    Car = car_class()
    _declare(Car)
    car = stepped_env.create(Car, id=1)
    first = await stepped.start(car, "visit", "Paris")
    await until(first, performing)
    second = await stepped.start(car, "visit", "Rome")
    await until(second, joined)

    assert await second.cancel() is True
    cancelled = await second.result()

    assert cancelled.status == "cancelled" and cancelled.started_at is None
    assert cancelled.after_callbacks_succeeded_count == 1
    lane = await _lane(stepped_env, "Car/1/visit").query("state", result_type=LaneState)
    assert lane.pending == [] and lane.performing.action_id == first.id
    assert (await first.result()).status == "succeeded"
    reloaded = stepped_env.reload(car)
    assert (reloaded.location, reloaded.honks) == ("Paris", 1)


@pytest.mark.time_skipping
async def test_cancelling_a_pending_child_fails_its_parent_step(stepped_env):
    """S4.6: the cancelled action's dependents conclude unsuccessfully."""
    Car = car_class()
    _declare(Car)
    trip = Car.stepped_action("trip")

    @trip.step
    def _(car, step, other):
        step.on(other, "visit", "Oslo")

    car, other = stepped_env.create(Car, id=1), stepped_env.create(Car, id=2)
    blocker = await stepped.start(other, "visit", "Paris")
    await until(blocker, performing)
    parent = await stepped.start(car, "trip", other)
    child = await first_child(parent)
    await until(child, joined)

    assert await child.cancel() is True

    result = await parent.result()
    assert result.status == "failed" and result.steps[0].unsuccessful_actions_count == 1
    assert (await child.result()).status == "cancelled"
    assert (await blocker.result()).status == "succeeded"


async def test_cancelling_a_successor_fails_the_dependencies_it_inherited(stepped_env):
    """S4.6, S4.2: a pending successor that is cancelled concludes what it took over."""
    Car = car_class()
    _declare(Car)
    trip = Car.stepped_action("trip")

    @trip.step
    def _(car, step, other):
        step.on(other, "visit", "Oslo")

    car, other = stepped_env.create(Car, id=1), stepped_env.create(Car, id=2)
    blocker = await stepped.start(other, "visit", "Paris")
    await until(blocker, performing)
    parent = await stepped.start(car, "trip", other)
    state = await until(parent, lambda s: s.steps and s.steps[0].actions)
    await until(stepped.action_handle(state.steps[0].actions[0]), joined)
    successor = await stepped.start(other, "visit", "Rome")
    await until(parent, lambda s: successor.id in s.steps[0].actions)

    assert await successor.cancel() is True

    assert (await successor.result()).status == "cancelled"
    result = await parent.result()
    assert result.status == "failed"
    assert result.steps[0].actions == (state.steps[0].actions[0], successor.id)


@pytest.mark.time_skipping
async def test_cancelling_a_performing_action_moves_the_lane_on(stepped_env):
    """S4.6: performing → cancelled with callbacks; the next pending one performs."""
    Car = car_class()
    _declare(Car)
    car = stepped_env.create(Car, id=1)
    first = await stepped.start(car, "visit", "Paris")
    await until(first, performing)
    second = await stepped.start(car, "visit", "Rome")
    await until(second, joined)

    assert await first.cancel() is True

    cancelled = await first.result()
    assert cancelled.status == "cancelled" and cancelled.started_at is not None
    assert cancelled.after_callbacks_succeeded_count == 1
    assert cancelled.steps[0].status == "performing"
    done = await second.result()
    assert done.status == "succeeded" and done.started_at >= cancelled.completed_at
    reloaded = stepped_env.reload(car)
    assert (reloaded.location, reloaded.honks) == ("Rome", 1)


async def test_cancelling_a_final_action_changes_nothing(stepped_env):
    """S3.1: a final status never changes."""
    Car = car_class()
    car = stepped_env.create(Car, id=1)
    handle = await stepped.start(car, "honk")
    done = await handle.result()

    assert await handle.cancel() is False

    assert (await handle.describe()).status == done.status == "succeeded"
