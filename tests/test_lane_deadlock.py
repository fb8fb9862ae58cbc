"""S4.4: a descendant joining the lane its ancestor performs in is deadlocked —
reported, recorded, and its ancestor fails instead of waiting forever."""

from __future__ import annotations

import stepped_temporal as stepped
from tests.support import car_class


def _in_garage(definition):
    definition.concurrency_key(lambda car, *args: "garage")
    return definition


def _wash(Car):
    wash = _in_garage(Car.stepped_action("wash"))
    wash.step(lambda car, step: car.honk())


async def test_child_joining_its_parents_lane_is_deadlocked(stepped_env):
    """S4.4: the child is deadlocked with a Deadlock error; the parent step fails."""
    Car = car_class()
    _wash(Car)
    service = _in_garage(Car.stepped_action("service"))

    @service.step
    def _(car, step):
        step.do("wash")

    @service.failed
    def _(car, action):
        car.change_location("scrapyard")

    car = stepped_env.create(Car, id=1)
    result = await stepped.run(car, "service")

    assert result.status == "failed"
    assert result.steps[0].status == "failed"
    assert result.steps[0].unsuccessful_actions_count == 1
    (child_id,) = result.steps[0].actions
    child = await stepped.action_handle(child_id).describe()
    assert child.status == "deadlocked" and child.started_at is None
    assert child.error.type == "Deadlock"
    for named in (child_id, "Car/1/wash", "'garage'", result.id):
        assert named in child.error.message
    reloaded = stepped_env.reload(car)
    assert (reloaded.location, reloaded.honks) == ("scrapyard", 0)


async def test_grandchild_back_on_the_ancestors_lane_is_deadlocked(stepped_env):
    """S4.4: ancestor → child on another key → grandchild on the ancestor's key."""
    Car = car_class()
    _wash(Car)
    inspect = Car.stepped_action("inspect")  # its own lane

    @inspect.step
    def _(car, step):
        step.do("wash")

    service = _in_garage(Car.stepped_action("service"))

    @service.step
    def _(car, step):
        step.do("inspect")

    car = stepped_env.create(Car, id=1)
    result = await stepped.run(car, "service")

    assert result.status == "failed"
    (inspect_id,) = result.steps[0].actions
    inspected = await stepped.action_handle(inspect_id).describe()
    assert inspected.status == "failed"
    (wash_id,) = inspected.steps[0].actions
    washed = await stepped.action_handle(wash_id).describe()
    assert washed.status == "deadlocked" and result.id in washed.error.message


async def test_same_key_without_ancestry_is_no_deadlock(stepped_env):
    """S4.4: only ancestors count: a sibling tree on the same key just waits its turn."""
    Car = car_class()
    _wash(Car)
    tour = Car.stepped_action("tour")

    @tour.step
    def _(car, step, others):
        step.on(others, "wash")

    cars = [stepped_env.create(Car, id=n) for n in (1, 2)]
    result = await stepped.run(cars[0], "tour", cars[1:])

    assert result.status == "succeeded"
