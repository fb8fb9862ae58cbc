"""S4.1, S4.5: one action performs per lane, in order; an empty lane ends."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError

import stepped_temporal as stepped
from stepped_temporal.lane_messages import LaneState
from stepped_temporal.store import LaneClaim
from tests.support import car_class, performing, until


def _slow_action(Car, name: str, key: str | None):
    definition = Car.stepped_action(name)
    if key is not None:
        definition.concurrency_key(lambda car: key)

    @definition.step
    def _(car, step):
        step.wait(timedelta(hours=1))

    @definition.step
    def _(car, step):
        car.honk()

    return definition


@pytest.mark.time_skipping
async def test_same_key_performs_one_at_a_time_across_actors_and_names(stepped_env):
    """S4.1: equal concurrency keys share a lane even across actors and action names."""
    Car = car_class()
    _slow_action(Car, "wash", "garage")
    _slow_action(Car, "repair", "garage")
    first, second = stepped_env.create(Car, id=1), stepped_env.create(Car, id=2)

    washing = await stepped.start(first, "wash")
    await until(washing, performing)
    repairing = await stepped.start(second, "repair")
    await stepped_env.workflow_environment.sleep(timedelta(minutes=5))

    assert (await washing.describe()).status == "performing"
    waiting = await repairing.describe()
    assert waiting.status == "pending" and waiting.started_at is None and waiting.steps == ()

    washed, repaired = await washing.result(), await repairing.result()
    assert washed.status == repaired.status == "succeeded"
    assert washed.concurrency_key == repaired.concurrency_key == "garage"
    assert repaired.started_at >= washed.completed_at


@pytest.mark.time_skipping
async def test_different_keys_perform_at_the_same_time(stepped_env):
    """S4.1: lanes are per key: actions of different keys do not wait for each other."""
    Car = car_class()
    _slow_action(Car, "wash", None)
    first, second = stepped_env.create(Car, id=1), stepped_env.create(Car, id=2)

    one = await stepped.start(first, "wash")
    two = await stepped.start(second, "wash")
    await stepped_env.workflow_environment.sleep(timedelta(minutes=5))

    assert [(await h.describe()).status for h in (one, two)] == ["performing", "performing"]
    results = [await one.result(), await two.result()]
    assert {r.concurrency_key for r in results} == {"Car/1/wash", "Car/2/wash"}
    assert results[1].started_at < results[0].completed_at


@pytest.mark.time_skipping
async def test_next_pending_performs_when_the_performing_one_fails(stepped_env):
    """S4.5: any final status of the performing action lets the oldest pending one perform."""
    Car = car_class()
    crash = Car.stepped_action("crash")
    crash.concurrency_key(lambda car: "road")

    @crash.step
    def _(car, step):
        step.wait(timedelta(minutes=30))

    @crash.step
    def _(car, step):
        raise RuntimeError("hit a tree")

    _slow_action(Car, "wash", "road")
    car = stepped_env.create(Car, id=1)

    crashing = await stepped.start(car, "crash")
    await until(crashing, performing)
    washing = await stepped.start(car, "wash")

    crashed, washed = await crashing.result(), await washing.result()
    assert crashed.status == "failed" and crashed.error.message == "hit a tree"
    assert washed.status == "succeeded"
    assert washed.started_at >= crashed.completed_at
    assert stepped_env.reload(car).honks == 1


@pytest.mark.time_skipping
async def test_children_of_one_step_in_one_lane_take_turns(stepped_env):
    """S4.1: nested actions queue in their lane like roots; the parent waits for all."""
    Car = car_class()
    _slow_action(Car, "wash", "garage")
    fleet = Car.stepped_action("service_all")

    @fleet.step
    def _(car, step):
        step.on([step.action.actor], "wash")

    tour = Car.stepped_action("tour")

    @tour.step
    def _(car, step, others):
        step.on(others, "wash")

    cars = [stepped_env.create(Car, id=n) for n in (1, 2)]
    result = await stepped.run(cars[0], "tour", [cars[1]])

    assert result.status == "succeeded"
    (child_id,) = result.steps[0].actions
    child = await stepped.action_handle(child_id).describe()
    assert (child.status, child.root, child.parent_id) == ("succeeded", False, result.id)
    assert stepped_env.reload(cars[1]).honks == 1


async def test_an_uncontended_action_needs_no_lane_workflow(stepped_env):
    """S4.1, S4.5: an action alone on its key claims it and performs at once: no lane
    workflow starts, and the claim is gone when the action ends."""
    Car = car_class()
    car = stepped_env.create(Car, id=1)

    first = await stepped.run(car, "honk")
    second = await stepped.run(car, "honk")

    assert [first.status, second.status] == ["succeeded", "succeeded"]
    assert stepped_env.reload(car).honks == 2
    with pytest.raises(RPCError):
        await stepped_env.client.get_workflow_handle("stepped-lane/Car/1/honk").describe()
    with stepped_env.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(LaneClaim)) == 0


@pytest.mark.time_skipping
async def test_an_empty_lane_ends_and_holds_nothing(stepped_env):
    """S4.5: once idle past its linger, the lane workflow completes; a later join restarts it."""
    Car = car_class()
    parked = Car.stepped_action("parked")
    parked.step(lambda car, step: step.wait(timedelta(hours=1)))
    parked.step(lambda car, step: car.honk())
    car = stepped_env.create(Car, id=1)

    # a second action while the first performs: the key is contended, a lane starts
    first = await stepped.start(car, "parked")
    await until(first, performing)
    second = await stepped.start(car, "parked")
    await until(second, lambda s: s.concurrency_key is not None)
    assert [(await h.result()).status for h in (first, second)] == ["succeeded"] * 2
    lane = stepped_env.client.get_workflow_handle(
        "stepped-lane/Car/1/parked", result_type=LaneState
    )
    await stepped_env.workflow_environment.sleep(timedelta(minutes=1))

    description = await lane.describe()
    assert description.status == WorkflowExecutionStatus.COMPLETED
    final = await lane.result()
    assert final.performing is None and final.pending == []
    assert final.granted == 1  # the second; the first held the key by claim and was adopted
    assert first.id in final.recent and second.id in final.recent

    third = await stepped.run(car, "parked")
    assert third.status == "succeeded"
    assert stepped_env.reload(car).honks == 3
