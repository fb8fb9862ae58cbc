"""Scenarios of the gem's test catalogue (envirobly/stepped, test/models/stepped/)
our other tests did not cover yet, written for our rules: S3.11/S3.7 (a step whose
`on` calls name no actor), S3.2/S6.1 (an outbound child completed in `before`),
S3.9/S1.4 (a raising failed-callback: counted, its changes rolled back — the gem
keeps them), S2.2/S3.9 (a step-less definition with only a failed callback)."""

from __future__ import annotations

import stepped_temporal as stepped
from tests.support import car_class


async def test_a_step_on_no_actor_has_no_dependency_and_succeeds(stepped_env):
    """Gem: "action on blank actor completes parent step". None, [] and [None]
    start nothing — not even a check that `bar` exists (S2.3 needs an actor)."""
    Car = car_class()
    foo = Car.stepped_action("foo")
    foo.step(lambda car, step: [step.on(None, "bar"), step.on([], "bar"), step.on([None], "bar")])
    car = stepped_env.create(Car, id=1)

    result = await stepped.run(car, "foo")

    assert result.status == "succeeded"
    assert [(s.status, s.actions, s.pending_actions_count) for s in result.steps] == [
        ("succeeded", (), 0)
    ]


async def test_an_outbound_child_completed_in_before_lets_its_parent_succeed(stepped_env):
    """Gem: "completing nested action (outbound: true) in before block": complete()
    in `before` ends an outbound action at once — no outside completion, no lane."""
    Car = car_class()
    early = Car.stepped_action("complete_early", outbound=True)
    early.before(lambda car, action: action.complete())
    trip = Car.stepped_action("trip")
    trip.step(lambda car, step: [step.do("honk"), step.do("complete_early")])
    car = stepped_env.create(Car, id=1)

    result = await stepped.run(car, "trip")

    step = result.steps[0]
    assert result.status == "succeeded" and step.status == "succeeded"
    assert (step.pending_actions_count, step.unsuccessful_actions_count) == (0, 0)
    children = [await stepped.action_handle(a).result() for a in step.actions]
    assert [(c.name, c.status) for c in children] == [
        ("honk", "succeeded"),
        ("complete_early", "succeeded"),
    ]
    assert children[1].outbound is True and children[1].steps == ()
    assert children[1].started_at is None  # it never performed, so never joined a lane
    assert stepped_env.reload(car).honks == 1


async def test_a_raising_failed_callback_is_counted_and_rolled_back(stepped_env):
    """Gem: "exception in failed callback" — the child fails, so do the step and the
    parent; the parent's failed callback raises: counted, status unchanged, and
    (S1.4, unlike the gem) its honk rolled back with it."""
    Car = car_class()

    def breakdown(car):
        raise RuntimeError("engine")

    Car.breakdown = breakdown
    wrapped = Car.stepped_action("breakdown_wrapped")
    wrapped.step(lambda car, step: step.do("breakdown"))

    @wrapped.failed
    def _(car, action):
        car.honk()
        raise RuntimeError("horn broke too")

    car = stepped_env.create(Car, id=1)

    result = await stepped.run(car, "breakdown_wrapped")

    assert result.status == "failed" and result.steps[0].status == "failed"
    child = await stepped.action_handle(result.steps[0].actions[0]).result()
    assert child.status == "failed" and "engine" in child.error.message
    assert (result.after_callbacks_succeeded_count, result.after_callbacks_failed_count) == (
        None,
        1,
    )
    assert stepped_env.reload(car).honks == 0


async def test_a_steps_less_definition_with_a_failed_callback(stepped_env):
    """Gem: "exception in direct method call with definition with failed callback":
    the generated step calls the raising method; the failed callback runs and commits."""
    Car = car_class()

    def breakdown(car):
        raise RuntimeError("engine")

    Car.breakdown = breakdown
    Car.stepped_action("breakdown").failed(lambda car, action: car.honk())
    car = stepped_env.create(Car, id=1)

    result = await stepped.run(car, "breakdown")

    assert result.status == "failed" and "engine" in result.error.message
    assert result.after_callbacks_succeeded_count == 1
    assert stepped_env.reload(car).honks == 1
