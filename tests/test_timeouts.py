"""S7.1, S10.2: `timeout=` as a timedelta, as seconds or as the name of an actor
method; its clock starts when the action starts performing; on expiry the action
is timed_out (timed_out callbacks only), its lane moves on and its parent step
fails; a late `complete` (S6.3) changes nothing. Long timeouts take no wall time
under time skipping."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

import stepped_temporal as stepped
from tests.support import car_class, joined, until

STATUSES = ("succeeded", "failed", "cancelled", "timed_out")


def _change_location(Car, timeout):
    """change_location(location): outbound with `timeout`; every final status records
    its name in `location` (replacing what the step set)."""
    definition = Car.stepped_action("change_location", outbound=True, timeout=timeout)
    for status in STATUSES:
        definition.after(status)(
            lambda car, action, location, s=status: setattr(car, "location", s)
        )
    return definition


@pytest.mark.parametrize(
    ("timeout", "seconds"),
    [(timedelta(seconds=5), 5.0), (5, 5.0), (2.5, 2.5), (timedelta(days=3), 259200.0)],
    ids=["timedelta", "int", "float", "three-days"],
)
@pytest.mark.time_skipping
async def test_outbound_action_times_out(stepped_env, timeout, seconds):
    """S7.1, S10.2: never completed → timed_out after `timeout`, only the timed_out
    callback runs; result.timeout holds the seconds; it takes well under 5 s of
    wall time, even for three days."""
    Car = car_class()
    _change_location(Car, timeout)
    car = stepped_env.create(Car, id=1)

    began = time.monotonic()
    handle = await stepped.start(car, "change_location", "Copenhagen")
    result = await handle.result()
    elapsed = time.monotonic() - began

    assert result.status == "timed_out"
    assert result.timeout == seconds
    assert result.after_callbacks_succeeded_count == 1
    assert result.after_callbacks_failed_count is None
    assert [s.status for s in result.steps] == ["succeeded"]
    assert (result.completed_at - result.started_at).total_seconds() >= seconds
    assert (result.completed_at - result.started_at).total_seconds() < seconds + 60
    assert stepped_env.reload(car).location == "timed_out"
    assert elapsed < 5


@pytest.mark.time_skipping
async def test_timeout_named_by_an_actor_method(stepped_env):
    """S7.1: `timeout="method"` calls the actor's method; its value is the timeout."""
    Car = car_class()
    Car.service_time = lambda self: timedelta(minutes=self.mileage)
    _change_location(Car, "service_time")
    car = stepped_env.create(Car, id=1, mileage=3)

    result = await stepped.run(car, "change_location", "Copenhagen")

    assert result.status == "timed_out"
    assert result.timeout == 180.0
    assert (result.completed_at - result.started_at) >= timedelta(minutes=3)
    assert stepped_env.reload(car).location == "timed_out"


@pytest.mark.time_skipping
async def test_action_completed_in_time_is_not_timed_out(stepped_env):
    """S7.1: completed before the timeout → that status; no timed_out callback runs,
    and waiting past the timeout changes nothing."""
    Car = car_class()
    _change_location(Car, timedelta(seconds=5))
    idle = Car.stepped_action("idle")
    idle.step(lambda car, step: step.wait(timedelta(minutes=1)))
    car = stepped_env.create(Car, id=1)
    handle = await stepped.start(car, "change_location", "Copenhagen")
    await until(
        handle,
        lambda s: s.status == "performing" and s.steps[-1:] and (s.steps[-1].status == "succeeded"),
    )

    assert await stepped.complete(car, "change_location") is True
    result = await handle.result()
    assert (await stepped.run(car, "idle")).status == "succeeded"  # a minute goes by

    assert result.status == "succeeded" and result.timeout == 5.0
    assert (await handle.describe()).status == "succeeded"
    assert stepped_env.reload(car).location == "succeeded"


@pytest.mark.time_skipping
async def test_a_normal_action_with_long_work_times_out(stepped_env):
    """S7.1: a non-outbound action whose step waits longer than its timeout is
    timed_out; its later steps never run."""
    Car = car_class()
    trip = Car.stepped_action("trip", timeout=timedelta(minutes=10))
    trip.step(lambda car, step: step.wait(timedelta(hours=1)))
    trip.step(lambda car, step: car.honk())
    trip.timed_out(lambda car, action: car.change_location("timed_out"))
    car = stepped_env.create(Car, id=1)

    result = await stepped.run(car, "trip")

    assert result.status == "timed_out"
    assert (result.completed_at - result.started_at) < timedelta(hours=1)
    reloaded = stepped_env.reload(car)
    assert (reloaded.honks, reloaded.location) == (0, "timed_out")


@pytest.mark.time_skipping
async def test_the_clock_starts_when_the_action_performs(stepped_env):
    """S7.1: pending behind another action in its lane for longer than its timeout,
    the action still performs and succeeds, since its own work is short."""
    Car = car_class()
    service = Car.stepped_action("service")
    service.concurrency_key(lambda car: "Car/maintenance")
    service.step(lambda car, step: step.wait(timedelta(hours=2)))
    service.step(lambda car, step: car.honk())
    wash = Car.stepped_action("wash", timeout=timedelta(minutes=1))
    wash.concurrency_key(lambda car: "Car/maintenance")
    wash.step(lambda car, step: car.honk())
    first_car, second_car = stepped_env.create(Car, id=1), stepped_env.create(Car, id=2)
    blocker = await stepped.start(first_car, "service")
    await until(blocker, lambda s: s.status == "performing" and s.steps)
    washing = await stepped.start(second_car, "wash")
    assert (await until(washing, joined)).status == "pending"

    washed = await washing.result()
    serviced = await blocker.result()

    assert serviced.status == "succeeded"
    assert washed.status == "succeeded" and washed.timeout == 60.0
    assert washed.started_at >= serviced.completed_at
    assert washed.started_at - serviced.started_at >= timedelta(hours=2)
    assert [stepped_env.reload(c).honks for c in (first_car, second_car)] == [1, 1]


async def test_expiry_moves_the_lane_on(stepped_env):
    """S7.1, S4.5: the timed-out action leaves its lane; the next pending one performs."""
    Car = car_class()
    paint = Car.stepped_action("paint", outbound=True, timeout=timedelta(seconds=5))
    paint.concurrency_key(lambda car: "Car/maintenance")
    paint.step(lambda car, step: car.honk())
    wash = Car.stepped_action("wash")
    wash.concurrency_key(lambda car: "Car/maintenance")
    wash.step(lambda car, step: car.change_location("washed"))
    first_car, second_car = stepped_env.create(Car, id=1), stepped_env.create(Car, id=2)
    painting = await stepped.start(first_car, "paint")
    await until(painting, lambda s: s.status == "performing" and s.steps)
    washing = await stepped.start(second_car, "wash")
    await until(washing, joined)
    assert (await washing.describe()).status == "pending"

    painted = await painting.result()
    washed = await washing.result()

    assert painted.status == "timed_out"
    assert washed.status == "succeeded"
    assert washed.started_at >= painted.completed_at
    assert stepped_env.reload(second_car).location == "washed"


async def test_timed_out_child_fails_its_parent_step(stepped_env):
    """S7.1, S3.14: a nested action that times out fails its parent's step and the
    parent; the parent's later step and succeeded callback do not run."""
    Car = car_class()
    _change_location(Car, timedelta(seconds=5))
    visit = Car.stepped_action("visit")
    visit.step(lambda car, step, location: step.do("change_location", location))
    visit.step(lambda car, step, location: car.honk())
    visit.succeeded(lambda car, action, location: car.drive(100))
    visit.failed(lambda car, action, location: car.drive(1))
    car = stepped_env.create(Car, id=1)

    result = await stepped.run(car, "visit", "Copenhagen")

    assert result.status == "failed"
    assert result.timeout is None
    (step,) = result.steps
    assert (step.status, step.unsuccessful_actions_count, step.pending_actions_count) == (
        "failed",
        1,
        0,
    )
    child = await stepped.action_handle(step.actions[0]).result()
    assert child.status == "timed_out" and child.root is False and child.timeout == 5.0
    reloaded = stepped_env.reload(car)
    assert (reloaded.honks, reloaded.mileage, reloaded.location) == (0, 1, "timed_out")


async def test_late_complete_of_a_timed_out_action_changes_nothing(stepped_env):
    """S7.1, S6.3: after the time-out, `complete` returns False; status and callbacks
    stay those of the time-out."""
    Car = car_class()
    _change_location(Car, timedelta(seconds=5))
    car = stepped_env.create(Car, id=1)
    handle = await stepped.start(car, "change_location", "Copenhagen")
    timed_out = await handle.result()
    assert timed_out.status == "timed_out"

    assert await stepped.complete(car, "change_location") is False
    assert await car.complete_stepped_action("change_location", "failed") is False

    state = await handle.describe()
    assert state.status == "timed_out"
    assert state.completed_at == timed_out.completed_at
    assert state.after_callbacks_succeeded_count == 1
    assert stepped_env.reload(car).location == "timed_out"
