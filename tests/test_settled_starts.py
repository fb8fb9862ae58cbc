"""`configure(record_achieved_starts=False)`: a root start that finds its checksum
achieved (S3.4) returns a settled handle and creates no workflow — the fast path
for loops that start the same work again and again. By default (S9.3) every
start, achieved or not, is a workflow."""

from __future__ import annotations

from dataclasses import asdict

import pytest
from temporalio.service import RPCError, RPCStatusCode

import stepped_temporal as stepped
from tests.support import achievement, car_class, grant


def _wash(Car):
    """wash(): honks; its checksum is "clean", so once done it is skipped."""
    wash = Car.stepped_action("wash")
    wash.checksum(lambda car: "clean")
    wash.step(lambda car, step: car.honk())
    return wash


async def _has_workflow(env, action_id: str) -> bool:
    try:
        await env.client.get_workflow_handle(action_id).describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def test_an_achieved_start_settles_without_a_workflow(stepped_db_env):
    """S3.4: succeeded at once, no step run, the achievement left alone — and no
    workflow behind the handle; its result and describe() agree; cancel() is a no-op."""
    Car = car_class()
    _wash(Car)
    car = stepped_db_env.create(Car, id=1)
    grant(stepped_db_env, "Car/1/wash", stepped.checksum("clean"))
    stepped.configure(record_achieved_starts=False)

    handle = await stepped.start(car, "wash")
    result = await handle.result()

    assert isinstance(handle, stepped.SettledActionHandle)
    assert handle.id.startswith("Car/1/wash/")
    assert (result.status, result.steps, result.error) == ("succeeded", (), None)
    assert (result.checksum, result.checksum_key) == (stepped.checksum("clean"), "Car/1/wash")
    assert result.concurrency_key == "Car/1/wash"
    assert result.completed_at is not None and result.started_at is None
    assert asdict(await handle.describe()) == asdict(result)
    assert await handle.cancel() is False
    assert not await _has_workflow(stepped_db_env, handle.id)
    assert stepped_db_env.reload(car).honks == 0
    assert achievement(stepped_db_env, "Car/1/wash") == stepped.checksum("clean")


async def test_only_achieved_starts_settle(stepped_env):
    """Work not achieved yet, or a definition with `before` (which runs first and
    may change everything), still goes through a workflow."""
    Car = car_class()
    _wash(Car)
    polish = Car.stepped_action("polish")
    polish.checksum(lambda car: "shiny")
    polish.before(lambda car, action: None)
    polish.step(lambda car, step: car.honk())
    car = stepped_env.create(Car, id=1)
    grant(stepped_env, "Car/1/polish", stepped.checksum("shiny"))
    stepped.configure(record_achieved_starts=False)

    washing = await stepped.start(car, "wash")
    washed = await washing.result()
    polishing = await stepped.start(car, "polish")
    polished = await polishing.result()
    again = await stepped.start(car, "wash")

    assert type(washing) is stepped.ActionHandle and washed.status == "succeeded"
    assert [s.status for s in washed.steps] == ["succeeded"]
    assert type(polishing) is stepped.ActionHandle
    assert (polished.status, polished.steps) == ("succeeded", ())
    assert await _has_workflow(stepped_env, washing.id)
    assert await _has_workflow(stepped_env, polishing.id)
    assert isinstance(again, stepped.SettledActionHandle)  # wash granted its achievement
    assert stepped_env.reload(car).honks == 1


async def test_by_default_an_achieved_start_is_a_workflow(stepped_env):
    """S9.3: every action, a skipped one too, is visible in Temporal."""
    Car = car_class()
    _wash(Car)
    car = stepped_env.create(Car, id=1)
    grant(stepped_env, "Car/1/wash", stepped.checksum("clean"))

    handle = await stepped.start(car, "wash")

    assert type(handle) is stepped.ActionHandle
    assert (await handle.result()).status == "succeeded"
    assert await _has_workflow(stepped_env, handle.id)
    assert (await stepped.action_handle(handle.id).describe()).status == "succeeded"


async def test_the_test_environment_sees_settled_starts(stepped_env):
    """S10.1: perform_stepped_actions() and the assertions count a settled start."""
    Car = car_class()
    _wash(Car)
    car = stepped_env.create(Car, id=1)
    grant(stepped_env, "Car/1/wash", stepped.checksum("clean"))
    stepped.configure(record_achieved_starts=False)

    handle = await stepped.start(car, "wash")
    states = await stepped_env.perform_stepped_actions()

    assert [(s.id, s.status) for s in states] == [(handle.id, "succeeded")]
    assert (await stepped_env.assert_action_started(car, "wash")).id == handle.id


def test_record_achieved_starts_must_be_a_bool():
    """Bad input names the culprit."""
    with pytest.raises(TypeError, match="record_achieved_starts"):
        stepped.configure(record_achieved_starts="no")  # type: ignore[arg-type]
