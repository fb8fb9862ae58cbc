"""S3.6, S3.7, S3.8, S3.10: how a step ends, how a failed step ends the action, and
how arguments changed by a step carry on.

A body that raises starts none of the dependencies it asked for and its
database changes roll back. A body that sets ``step.status = "failed"`` still
lets its dependencies run, then the step fails. A failed step fails the action
and later steps do not run. Changed arguments are seen by later steps,
callbacks and ``describe()``.
"""

from __future__ import annotations

import stepped_temporal as stepped
from tests.support import car_class


async def _children(step) -> list:
    return [await stepped.action_handle(i).describe() for i in step.actions]


async def test_a_raising_body_starts_no_dependency_and_rolls_back(stepped_env):
    """S3.6, S1.4, S8.1: do/on/wait before a raise start nothing; the body's changes roll back."""
    Car = car_class()
    definition = Car.stepped_action("breakdown_wrapped")

    @definition.step
    def _(car, step, other):
        step.do("honk")
        step.on([other], "drive", 5)
        step.wait(60)
        car.drive(100)
        other.change_location("ditch")
        raise ValueError("engine seized")

    car = stepped_env.create(Car, id=1)
    other = stepped_env.create(Car, id=2)

    result = await stepped.run(car, "breakdown_wrapped", other)

    assert result.status == "failed"
    assert result.error is not None and result.error.type == "ValueError"
    assert "engine seized" in result.error.message
    assert len(result.steps) == 1
    step = result.steps[0]
    assert step.status == "failed"
    assert step.actions == () and step.waits == ()
    assert (step.pending_actions_count, step.unsuccessful_actions_count) == (0, 0)
    assert step.started_at is not None and step.completed_at is not None
    assert result.started_at is not None and result.completed_at is not None
    await stepped_env.assert_action_not_started(car, "honk")
    await stepped_env.assert_action_not_started(other, "drive")
    for actor in (car, other):
        reloaded = stepped_env.reload(actor)
        assert (reloaded.mileage, reloaded.honks, reloaded.location) == (0, 0, None)


async def test_a_body_marked_failed_still_lets_its_dependencies_run(stepped_env):
    """S3.7, S3.8: step.status = "failed" runs the children first, then fails the step."""
    Car = car_class()
    definition = Car.stepped_action("doomed_trip")

    @definition.step
    def _(car, step, other):
        step.do("honk")
        step.on(other, "drive", 3)
        car.drive(1)
        step.status = "failed"
        assert step.status == "failed"

    definition.step(lambda car, step, other: car.change_location("never reached"))
    car = stepped_env.create(Car, id=1)
    other = stepped_env.create(Car, id=2)

    result = await stepped.run(car, "doomed_trip", other)

    assert result.status == "failed"
    assert len(result.steps) == 1
    step = result.steps[0]
    assert step.status == "failed"
    assert len(step.actions) == 2
    assert (step.pending_actions_count, step.unsuccessful_actions_count) == (0, 0)
    children = await _children(step)
    assert sorted((c.name, c.status) for c in children) == [
        ("drive", "succeeded"),
        ("honk", "succeeded"),
    ]
    assert all(c.completed_at is not None and c.completed_at <= step.completed_at for c in children)
    reloaded = stepped_env.reload(car)
    # the body returned normally: its own change commits (S1.4)
    assert (reloaded.honks, reloaded.mileage, reloaded.location) == (1, 1, None)
    assert stepped_env.reload(other).mileage == 3


async def test_a_step_marked_failed_without_dependencies_fails_at_once(stepped_env):
    """S3.7, S3.8: no dependencies and status failed: the step and the action fail."""
    Car = car_class()
    definition = Car.stepped_action("give_up")

    @definition.step
    def _(car, step):
        step.status = "failed"

    definition.step(lambda car, step: car.honk())
    car = stepped_env.create(Car, id=1)

    result = await stepped.run(car, "give_up")

    assert result.status == "failed"
    assert [s.status for s in result.steps] == ["failed"]
    assert result.steps[0].actions == ()
    assert stepped_env.reload(car).honks == 0


async def test_a_step_without_dependencies_completes_when_its_body_returns(stepped_env):
    """S3.6, S3.7: steps run in order; one without dependencies succeeds once its body returns."""
    Car = car_class()
    definition = Car.stepped_action("errands")
    order = []

    @definition.step
    def _(car, step):
        order.append(step.index)
        car.honk()

    @definition.step
    def _(car, step):
        order.append(step.index)
        car.drive(2)

    car = stepped_env.create(Car, id=1)

    result = await stepped.run(car, "errands")

    assert result.status == "succeeded"
    assert order == [0, 1]
    assert result.current_step_index == 1
    assert [s.index for s in result.steps] == [0, 1]
    for step in result.steps:
        assert step.status == "succeeded"
        assert step.actions == () and step.waits == ()
        assert (step.pending_actions_count, step.unsuccessful_actions_count) == (0, 0)
        assert step.started_at is not None and step.completed_at is not None
        assert step.started_at <= step.completed_at
    assert result.steps[0].completed_at <= result.steps[1].started_at
    reloaded = stepped_env.reload(car)
    assert (reloaded.honks, reloaded.mileage) == (1, 2)


async def test_a_failed_step_fails_the_action_and_later_steps_do_not_run(stepped_env):
    """S3.8: a raising second step fails the action; the third never runs."""
    Car = car_class()
    definition = Car.stepped_action("three_legs")
    definition.step(lambda car, step: car.honk())

    @definition.step
    def _(car, step):
        raise RuntimeError("flat tyre")

    definition.step(lambda car, step: car.drive(50))
    car = stepped_env.create(Car, id=1)

    result = await stepped.run(car, "three_legs")

    assert result.status == "failed"
    assert result.error is not None and result.error.type == "RuntimeError"
    assert "flat tyre" in result.error.message
    assert [s.status for s in result.steps] == ["succeeded", "failed"]
    assert result.current_step_index == 1
    reloaded = stepped_env.reload(car)
    assert (reloaded.honks, reloaded.mileage) == (1, 0)


async def test_a_step_with_a_failed_child_fails_and_later_steps_do_not_run(stepped_env):
    """S3.7, S3.8: one unsuccessful dependency fails the step once all have concluded."""
    Car = car_class()
    breakdown = Car.stepped_action("breakdown")

    @breakdown.step
    def _(car, step):
        raise ValueError("smoke")

    convoy = Car.stepped_action("convoy")

    @convoy.step
    def _(car, step, other):
        step.on(other, "breakdown")
        step.do("drive", 4)

    convoy.step(lambda car, step, other: car.honk())
    car = stepped_env.create(Car, id=1)
    other = stepped_env.create(Car, id=2)

    result = await stepped.run(car, "convoy", other)

    assert result.status == "failed"
    assert len(result.steps) == 1
    step = result.steps[0]
    assert step.status == "failed"
    assert (step.pending_actions_count, step.unsuccessful_actions_count) == (0, 1)
    children = {c.name: c for c in await _children(step)}
    assert children["breakdown"].status == "failed"
    assert children["drive"].status == "succeeded"
    reloaded = stepped_env.reload(car)
    assert (reloaded.mileage, reloaded.honks) == (4, 0)


async def test_arguments_appended_in_a_step_persist(stepped_env):
    """S3.10: step.action.arguments.append(33) reaches later steps, callbacks and describe()."""
    Car = car_class()
    definition = Car.stepped_action("argument_add_in_step")
    seen = []

    @definition.step
    def _(car, step):
        step.action.arguments.append(33)

    @definition.step
    def _(car, step, distance):
        step.do("drive", 2)

    @definition.step
    def _(car, step, distance):
        car.drive(distance)

    @definition.succeeded
    def _(car, action, distance):
        seen.append((list(action.arguments), distance))

    car = stepped_env.create(Car, id=1)

    result = await stepped.run(car, "argument_add_in_step")

    assert result.status == "succeeded"
    assert result.arguments == [33]
    assert (await stepped.action_handle(result.id).describe()).arguments == [33]
    assert seen == [([33], 33)]
    assert stepped_env.reload(car).mileage == 35


async def test_arguments_assigned_in_a_step_persist(stepped_env):
    """S3.10: assigning a new list to step.action.arguments is what later code sees."""
    Car = car_class()
    definition = Car.stepped_action("reroute")
    seen = []

    @definition.step
    def _(car, step, city):
        step.action.arguments = [f"{city} via Paris", 4]

    @definition.step
    def _(car, step, city, miles):
        step.do("drive", miles)

    @definition.step
    def _(car, step, city, miles):
        car.change_location(city)

    @definition.after()
    def _(car, action, city, miles):
        seen.append((action.status, list(action.arguments)))

    car = stepped_env.create(Car, id=1)

    handle = await stepped.start(car, "reroute", "London")
    result = await handle.result()

    assert result.status == "succeeded"
    assert result.arguments == ["London via Paris", 4]
    assert (await handle.describe()).arguments == ["London via Paris", 4]
    assert seen == [("succeeded", ["London via Paris", 4])]
    reloaded = stepped_env.reload(car)
    assert (reloaded.location, reloaded.mileage) == ("London via Paris", 4)
