"""S3.4: an action whose checksum is already achieved succeeds at once — no
step, no lane, no callbacks, no change — at the root and nested; on SQLite and
PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError

import stepped_temporal as stepped
from tests.support import achievement, car_class, grant, joined, performing, until


def _visit(Car):
    visit = Car.stepped_action("visit")
    visit.checksum(lambda car, location: location)

    @visit.step
    def _(car, step, location):
        step.wait(timedelta(hours=1))
        car.honk()

    @visit.step
    def _(car, step, location):
        car.change_location(location)

    @visit.after()
    def _(car, action, location):
        car.mileage += 1

    return visit


async def test_achieved_root_succeeds_without_anything_running(stepped_db_env):
    """S3.4: no step, no lane joined, no callback, the achievement left alone."""
    Car = car_class()
    _visit(Car)
    car = stepped_db_env.create(Car, id=1)
    grant(stepped_db_env, "Car/1/visit", stepped.checksum("Oslo"))

    result = await stepped.run(car, "visit", "Oslo")

    assert result.status == "succeeded"
    assert result.steps == () and result.started_at is None
    assert result.after_callbacks_succeeded_count is None
    assert result.checksum == stepped.checksum("Oslo")
    reloaded = stepped_db_env.reload(car)
    assert (reloaded.honks, reloaded.location, reloaded.mileage) == (0, None, 0)
    assert achievement(stepped_db_env, "Car/1/visit") == stepped.checksum("Oslo")
    lane = stepped_db_env.client.get_workflow_handle("stepped-lane/Car/1/visit")
    try:
        await lane.describe()
        raise AssertionError("an achieved action started its lane")
    except RPCError:
        pass


@pytest.mark.time_skipping
async def test_other_checksum_is_not_skipped(stepped_db_env):
    """S3.4: only exactly the achieved checksum skips; another one performs."""
    Car = car_class()
    _visit(Car)
    car = stepped_db_env.create(Car, id=1)
    grant(stepped_db_env, "Car/1/visit", stepped.checksum("Oslo"))

    result = await stepped.run(car, "visit", "Rome")

    assert result.status == "succeeded" and len(result.steps) == 2
    assert stepped_db_env.reload(car).location == "Rome"


@pytest.mark.time_skipping
async def test_achieved_child_concludes_its_parent_step_successfully(stepped_db_env):
    """S3.4: nested, the skip concludes the parent's dependency successfully."""
    Car = car_class()
    _visit(Car)
    tour = Car.stepped_action("tour")
    tour.step(lambda car, step, others: step.on(others, "visit", "Oslo"))
    cars = [stepped_db_env.create(Car, id=n) for n in (1, 2, 3)]
    grant(stepped_db_env, "Car/2/visit", stepped.checksum("Oslo"))

    result = await stepped.run(cars[0], "tour", cars[1:])

    assert result.status == "succeeded"
    children = [await stepped.action_handle(i).describe() for i in result.steps[0].actions]
    assert sorted((c.actor_id, len(c.steps)) for c in children) == [(2, 0), (3, 2)]
    assert [stepped_db_env.reload(c).location for c in cars] == [None, None, "Oslo"]


@pytest.mark.time_skipping
async def test_achieved_while_pending_is_skipped_when_its_turn_comes(stepped_db_env):
    """S3.4 checked again at perform time: the same work achieved by the action it
    waited behind is not done twice (the gem re-checks inside its lock)."""
    Car = car_class()
    visit = _visit(Car)
    visit.concurrency_key(lambda car, location: "road")
    car = stepped_db_env.create(Car, id=1)
    blocker = await stepped.start(car, "visit", "Oslo")
    await until(blocker, performing)
    waiting = await stepped.start(car, "visit", "Oslo")  # same checksum: shared, S4.3
    other = stepped_db_env.create(Car, id=2)
    second = await stepped.start(other, "visit", "Oslo")  # other checksum_key: queues
    await until(second, joined)
    grant(stepped_db_env, "Car/2/visit", stepped.checksum("Oslo"))

    assert (await blocker.result()).status == "succeeded"
    skipped = await second.result()
    assert (await waiting.result()).status == "succeeded"
    assert skipped.status == "succeeded" and skipped.steps == ()
    assert skipped.after_callbacks_succeeded_count is None
    assert stepped_db_env.reload(other).honks == 0
    assert achievement(stepped_db_env, "Car/2/visit") == stepped.checksum("Oslo")
    described = await stepped_db_env.client.get_workflow_handle(second.id).describe()
    assert described.status == WorkflowExecutionStatus.COMPLETED
