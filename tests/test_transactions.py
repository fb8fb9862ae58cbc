"""S1.4: each user callable has its own transaction: committed on return, rolled back on raise."""

from __future__ import annotations

import stepped_temporal as stepped
from tests.support import car_class


async def test_a_step_commits_without_save_and_the_next_step_sees_it(stepped_env):
    """S1.4: `car.honks += 1` persists with no save; the next step loads it fresh."""
    Car = car_class()
    tune = Car.stepped_action("tune")
    seen = []

    @tune.step
    def _(car, step):
        car.honks += 1

    @tune.step
    def _(car, step):
        seen.append(car.honks)
        car.mileage += 7

    car = stepped_env.create(Car, id=1)

    result = await stepped.run(car, "tune")

    assert result.status == "succeeded"
    assert seen == [1]
    reloaded = stepped_env.reload(car)
    assert (reloaded.honks, reloaded.mileage) == (1, 7)


async def test_a_step_that_raises_rolls_back_only_its_own_changes(stepped_env):
    """S1.4: a handled exception rolls back every change of that step, earlier steps stay."""
    Car = car_class()
    tow = Car.stepped_action("tow")

    @tow.step
    def _(car, step, other):
        car.honks += 1

    @tow.step
    def _(car, step, other):
        car.mileage += 50
        car.location = "ditch"
        other.mileage += 50  # another row in the same transaction
        raise ValueError("winch snapped")

    car = stepped_env.create(Car, id=1)
    other = stepped_env.create(Car, id=2)

    result = await stepped.run(car, "tow", other)

    assert result.status == "failed"
    assert result.error is not None and result.error.type == "ValueError"
    assert "winch snapped" in result.error.message
    assert [s.status for s in result.steps] == ["succeeded", "failed"]
    reloaded = stepped_env.reload(car)
    assert (reloaded.honks, reloaded.mileage, reloaded.location) == (1, 0, None)
    assert stepped_env.reload(other).mileage == 0


async def test_a_before_hook_commits_apart_from_the_steps(stepped_env):
    """S1.4, S3.2: a before hook's change persists though a later step raises."""
    Car = car_class()
    park = Car.stepped_action("park")
    seen = []

    @park.before
    def _(car, action):
        car.location = "garage"

    @park.step
    def _(car, step):
        seen.append(car.location)
        car.honks += 1
        raise ValueError("no space")

    car = stepped_env.create(Car, id=1)

    result = await stepped.run(car, "park")

    assert result.status == "failed"
    assert seen == ["garage"]
    reloaded = stepped_env.reload(car)
    assert (reloaded.location, reloaded.honks) == ("garage", 0)


async def test_a_before_hook_that_raises_rolls_back_its_changes(stepped_env):
    """S1.4, S3.2: a before hook that raises fails the action and its change rolls back."""
    Car = car_class()
    park = Car.stepped_action("park")
    ran = []

    @park.before
    def _(car, action):
        car.mileage += 9
        raise ValueError("gate closed")

    park.step(lambda car, step: ran.append("step"))
    car = stepped_env.create(Car, id=1)

    result = await stepped.run(car, "park")

    assert result.status == "failed"
    assert result.error is not None and result.error.type == "ValueError"
    assert "gate closed" in result.error.message
    assert ran == [] and result.steps == ()
    assert stepped_env.reload(car).mileage == 0


async def test_each_before_hook_commits_in_its_own_transaction(stepped_env):
    """S1.4: each before hook has its own transaction: a later hook raising keeps earlier ones."""
    Car = car_class()
    park = Car.stepped_action("park")

    @park.before
    def _(car, action):
        car.honks += 1

    @park.before
    def _(car, action):
        car.mileage += 9
        raise ValueError("gate closed")

    car = stepped_env.create(Car, id=1)

    result = await stepped.run(car, "park")

    assert result.status == "failed"
    reloaded = stepped_env.reload(car)
    assert reloaded.mileage == 0, "the raising hook's change must roll back"
    assert reloaded.honks == 1, "the first hook returned normally: its change must persist"


async def test_each_after_callback_commits_in_its_own_transaction(stepped_env):
    """S1.4, S3.9: a raising callback rolls back its change; the others' changes persist."""
    Car = car_class()
    wash = Car.stepped_action("wash")
    seen = []

    @wash.step
    def _(car, step):
        car.mileage = 5

    @wash.succeeded
    def _(car, action):
        seen.append(car.mileage)
        car.honks += 1

    @wash.succeeded
    def _(car, action):
        car.mileage += 100
        car.location = "spilled"
        raise ValueError("bucket tipped")

    @wash.after()
    def _(car, action):
        seen.append(car.location)
        car.location = "washed"

    car = stepped_env.create(Car, id=1)

    result = await stepped.run(car, "wash")

    assert result.status == "succeeded"
    assert (result.after_callbacks_succeeded_count, result.after_callbacks_failed_count) == (2, 1)
    assert seen == [5, None]
    reloaded = stepped_env.reload(car)
    assert (reloaded.honks, reloaded.mileage, reloaded.location) == (1, 5, "washed")


async def test_failed_callbacks_run_after_the_failed_step_rolled_back(stepped_env):
    """S1.4, S3.9: a failed callback sees the rolled-back state and its own change persists."""
    Car = car_class()
    race = Car.stepped_action("race")
    seen = []

    @race.step
    def _(car, step):
        car.honks += 3
        raise ValueError("engine stalled")

    @race.failed
    def _(car, action):
        seen.append((car.honks, action.status))
        car.location = "pit lane"

    car = stepped_env.create(Car, id=1)

    result = await stepped.run(car, "race")

    assert result.status == "failed"
    assert result.after_callbacks_succeeded_count == 1
    assert seen == [(0, "failed")]
    reloaded = stepped_env.reload(car)
    assert (reloaded.honks, reloaded.location) == (0, "pit lane")
