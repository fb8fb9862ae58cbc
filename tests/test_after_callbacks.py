"""S3.9, S2.4, S2.5: after-callbacks of a completed action.

Callbacks for the final status and catch-all ones run in registration order
as ``fn(actor, action, *arguments)``, each in its own transaction. Returning
ones are counted in after_callbacks_succeeded_count, ones raising a handled
exception in after_callbacks_failed_count (each None until something is
counted in it); a failed callback does not change the status, but the
parent's dependency then concludes unsuccessfully.
"""

from __future__ import annotations

import sqlalchemy as sa

import stepped_temporal as stepped
from stepped_temporal.achievements import Achievement
from tests.support import car_class


def _recording(Car, calls):
    """Declare `park` with callbacks that record (label, actor, action, arguments)."""
    park = Car.stepped_action("park")

    @park.step
    def _(car, step, miles, place):
        if place == "cliff":
            raise ValueError("no parking here")
        car.drive(miles)

    def record(label):
        def callback(car, action, *arguments):
            calls.append((label, type(car).__name__, car.id, action.name, action.status, arguments))
            car.honk()

        return callback

    park.after()(record("any 1"))
    park.succeeded(record("succeeded"))
    park.failed(record("failed"))
    park.after("succeeded", "cancelled")(record("succeeded or cancelled"))
    park.cancelled(record("cancelled"))
    park.after()(record("any 2"))
    return park


async def test_callbacks_for_succeeded_run_in_registration_order(stepped_env):
    """S3.9, S2.5: succeeded and catch-all callbacks run in order with (actor, action, *args)."""
    Car = car_class()
    calls = []
    _recording(Car, calls)
    car = stepped_env.create(Car, id=1)

    result = await stepped.run(car, "park", 5, "garage")

    assert result.status == "succeeded"
    expected = ("Car", 1, "park", "succeeded", (5, "garage"))
    assert calls == [
        (label, *expected) for label in ("any 1", "succeeded", "succeeded or cancelled", "any 2")
    ]
    assert result.after_callbacks_succeeded_count == 4
    reloaded = stepped_env.reload(car)
    assert (reloaded.mileage, reloaded.honks) == (5, 4)


async def test_callbacks_for_failed_run_in_registration_order(stepped_env):
    """S3.9: a failed action runs the failed and catch-all callbacks, in order."""
    Car = car_class()
    calls = []
    _recording(Car, calls)
    car = stepped_env.create(Car, id=1)

    result = await stepped.run(car, "park", 5, "cliff")

    assert result.status == "failed"
    expected = ("Car", 1, "park", "failed", (5, "cliff"))
    assert calls == [(label, *expected) for label in ("any 1", "failed", "any 2")]
    assert result.after_callbacks_succeeded_count == 3
    described = await stepped.action_handle(result.id).describe()
    assert described.after_callbacks_succeeded_count == 3
    reloaded = stepped_env.reload(car)
    assert (reloaded.mileage, reloaded.honks) == (0, 3)


async def test_counts_are_none_when_no_callback_ran(stepped_env):
    """S3.9: no callback for the final status: both counts stay None."""
    Car = car_class()
    plain = Car.stepped_action("plain")
    plain.step(lambda car, step: car.honk())
    only_failed = Car.stepped_action("only_failed")
    only_failed.step(lambda car, step: car.honk())
    only_failed.failed(lambda car, action: car.drive(100))
    car = stepped_env.create(Car, id=1)

    for name in ("plain", "only_failed", "drive"):
        result = await stepped.run(car, name, *([3] if name == "drive" else []))
        assert result.status == "succeeded", name
        assert result.after_callbacks_succeeded_count is None, name
        assert result.after_callbacks_failed_count is None, name
    reloaded = stepped_env.reload(car)
    assert (reloaded.honks, reloaded.mileage) == (2, 3)


async def test_callbacks_added_to_an_undeclared_action(stepped_env):
    """S2.4, S3.9: after_stepped_action on an undeclared method action declares it."""
    Car = car_class()
    assert Car.stepped_definition("drive") is None

    @Car.after_stepped_action("drive", "succeeded")
    def _(car, action, miles):
        car.drive(miles)

    @Car.after_stepped_action("drive")
    def _(car, action, miles):
        car.honk()

    car = stepped_env.create(Car, id=1)

    result = await stepped.run(car, "drive", 30)

    assert result.status == "succeeded"
    assert result.after_callbacks_succeeded_count == 2
    reloaded = stepped_env.reload(car)
    assert (reloaded.mileage, reloaded.honks) == (60, 1)


async def test_a_raising_callback_is_counted_and_does_not_change_the_status(stepped_env):
    """S3.9, S1.4: a handled exception in a callback counts as failed; status stays; no grant."""
    Car = car_class()
    honk = Car.stepped_action("honk")
    honk.checksum(lambda car: "a")
    honk.succeeded(lambda car, action: car.drive(1))

    @honk.succeeded
    def _(car, action):
        car.drive(100)  # rolled back with the callback's transaction
        raise ValueError("horn stuck")

    honk.succeeded(lambda car, action: car.drive(10))
    car = stepped_env.create(Car, id=1)

    result = await stepped.run(car, "honk")

    assert result.status == "succeeded"
    assert result.error is None
    assert result.after_callbacks_succeeded_count == 2
    assert result.after_callbacks_failed_count == 1
    reloaded = stepped_env.reload(car)
    assert (reloaded.honks, reloaded.mileage) == (1, 11)
    with stepped_env.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Achievement)) == 0


async def test_a_count_stays_none_until_something_is_counted_in_it(stepped_env):
    """S3.9: each count is None until a callback is counted in it (as in the gem)."""
    Car = car_class()
    calm = Car.stepped_action("calm")
    calm.step(lambda car, step: car.honk())
    calm.after()(lambda car, action: car.drive(1))
    calm.succeeded(lambda car, action: car.drive(2))
    stuck = Car.stepped_action("stuck")
    stuck.step(lambda car, step: car.honk())

    @stuck.after()
    def _(car, action):
        raise RuntimeError("battery flat")

    car = stepped_env.create(Car, id=1)

    calm_result = await stepped.run(car, "calm")
    stuck_result = await stepped.run(car, "stuck")

    assert calm_result.status == stuck_result.status == "succeeded"
    assert calm_result.after_callbacks_succeeded_count == 2
    assert calm_result.after_callbacks_failed_count is None
    assert stuck_result.after_callbacks_succeeded_count is None
    assert stuck_result.after_callbacks_failed_count == 1
    reloaded = stepped_env.reload(car)
    assert (reloaded.honks, reloaded.mileage) == (2, 3)


async def test_a_childs_failed_callback_fails_the_parent_step(stepped_env):
    """S3.9, S3.14: a child succeeded but a callback failed: the parent's dependency fails."""
    Car = car_class()
    honk = Car.stepped_action("honk")

    @honk.succeeded
    def _(car, action):
        raise ValueError("horn stuck")

    trip = Car.stepped_action("trip")

    @trip.step
    def _(car, step):
        step.do("honk")
        step.do("drive", 2)

    trip.step(lambda car, step: car.change_location("arrived"))
    parent_failed = []
    trip.failed(lambda car, action: parent_failed.append(action.status))
    car = stepped_env.create(Car, id=1)

    result = await stepped.run(car, "trip")

    assert result.status == "failed"
    assert len(result.steps) == 1
    step = result.steps[0]
    assert step.status == "failed"
    assert (step.pending_actions_count, step.unsuccessful_actions_count) == (0, 1)
    children = {
        c.name: c for c in [await stepped.action_handle(i).describe() for i in step.actions]
    }
    assert children["honk"].status == "succeeded"
    assert children["honk"].after_callbacks_failed_count == 1
    assert children["drive"].status == "succeeded"
    assert parent_failed == ["failed"]
    assert result.after_callbacks_succeeded_count == 1
    reloaded = stepped_env.reload(car)
    assert (reloaded.honks, reloaded.mileage, reloaded.location) == (1, 2, None)
