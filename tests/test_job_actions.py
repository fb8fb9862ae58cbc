"""S6.4: job-backed actions. `job=` makes the action outbound; its job receives the
`Action`, changes its actor in its own transaction, runs as an activity under the
definition's retry policy, and decides the final status: succeeded when it
returns, its own `complete()`/`cancel()` status, failed once retries are spent.
Steps prepended with `prepend_stepped_action_step` run before the job (S2.4), and
`perform_stepped_actions()` drains job-backed actions (S10.1)."""

from __future__ import annotations

from datetime import timedelta

import stepped_temporal as stepped
from tests.support import car_class

#: What jobs and steps did, kept outside the rolled-back transactions.
EVENTS: list = []

RETRY = stepped.RetryPolicy(maximum_attempts=3, initial_interval=timedelta(milliseconds=10))


class TowTrouble(Exception):
    """The tow truck did not come."""


async def test_job_receives_the_action_and_its_change_persists(stepped_env):
    """S6.4: the job gets the Action with its actor loaded; its change commits;
    returning → succeeded; a job-backed action is outbound."""
    EVENTS.clear()
    Car = car_class()

    def tow(action):
        assert isinstance(action, stepped.Action)
        EVENTS.append((action.name, action.arguments, action.outbound, action.status))
        action.actor.location = action.arguments[0]
        action.actor.honk()

    Car.stepped_action("tow", job=tow)
    car = stepped_env.create(Car, id=1)

    result = await stepped.run(car, "tow", "service")

    assert result.status == "succeeded"
    assert result.outbound is True
    assert result.error is None and result.completed_at is not None
    assert EVENTS == [("tow", ["service"], True, "performing")]
    reloaded = stepped_env.reload(car)
    assert (reloaded.location, reloaded.honks) == ("service", 1)


async def test_job_completing_as_failed_gives_failed(stepped_env):
    """S6.4: the job's own `action.complete("failed")` is the final status; its
    change still commits (the job returned); failed callbacks run."""
    Car = car_class()

    def tow(action):
        action.actor.location = "ditch"
        action.complete("failed")

    towing = Car.stepped_action("tow", job=tow)
    towing.failed(lambda car, action: car.honk())
    towing.succeeded(lambda car, action: car.drive(100))
    car = stepped_env.create(Car, id=1)

    result = await stepped.run(car, "tow")

    assert result.status == "failed"
    assert result.after_callbacks_succeeded_count == 1
    reloaded = stepped_env.reload(car)
    assert (reloaded.location, reloaded.honks, reloaded.mileage) == ("ditch", 1, 0)


async def test_job_cancelling_gives_cancelled(stepped_env):
    """S6.4: the job's `action.cancel()` → cancelled; cancelled callbacks run."""
    Car = car_class()

    def tow(action):
        action.cancel()

    towing = Car.stepped_action("tow", job=tow)
    towing.cancelled(lambda car, action: car.change_location("cancelled"))
    towing.succeeded(lambda car, action: car.change_location("succeeded"))
    car = stepped_env.create(Car, id=1)

    result = await stepped.run(car, "tow")

    assert result.status == "cancelled"
    assert stepped_env.reload(car).location == "cancelled"


async def test_job_failing_twice_then_succeeding_is_retried(stepped_env):
    """S6.4: a raising job is retried under the definition's retry policy; the
    third attempt returns → succeeded; only that attempt's change persists."""
    EVENTS.clear()
    Car = car_class()

    def tow(action):
        EVENTS.append("attempt")
        action.actor.honk()
        if len(EVENTS) < 3:
            raise TowTrouble(f"attempt {len(EVENTS)}")
        action.actor.location = "garage"

    Car.stepped_action("tow", job=tow, retry=RETRY)
    car = stepped_env.create(Car, id=1)

    result = await stepped.run(car, "tow")

    assert EVENTS == ["attempt"] * 3
    assert result.status == "succeeded" and result.error is None
    reloaded = stepped_env.reload(car)
    assert (reloaded.location, reloaded.honks) == ("garage", 1)


async def test_job_always_failing_fails_after_the_retries(stepped_env):
    """S6.4: a job that never returns fails the action once the retries (3) are spent,
    with the job's error type; every attempt's changes rolled back."""
    EVENTS.clear()
    Car = car_class()

    def tow(action):
        EVENTS.append("attempt")
        action.actor.location = "halfway"
        action.actor.honk()
        raise TowTrouble("no truck")

    towing = Car.stepped_action("tow", job=tow, retry=RETRY)
    towing.failed(lambda car, action: car.drive(1))
    car = stepped_env.create(Car, id=1)

    result = await stepped.run(car, "tow")

    assert EVENTS == ["attempt"] * 3
    assert result.status == "failed"
    assert result.error is not None and result.error.type == "TowTrouble"
    assert "no truck" in result.error.message
    reloaded = stepped_env.reload(car)
    assert (reloaded.location, reloaded.honks, reloaded.mileage) == (None, 0, 1)


async def test_prepended_step_runs_before_the_job(stepped_env):
    """S6.4, S2.4: a step prepended to a job-backed action runs (and commits) first."""
    EVENTS.clear()
    Car = car_class()

    def tow(action):
        EVENTS.append(("job", action.actor.honks))
        action.actor.location = action.arguments[0]

    Car.stepped_action("tow", job=tow)

    @Car.prepend_stepped_action_step("tow")
    def _(car, step, location):
        EVENTS.append(("step", location))
        car.honk()

    car = stepped_env.create(Car, id=1)

    result = await stepped.run(car, "tow", "service")

    assert EVENTS == [("step", "service"), ("job", 1)]  # the job saw the step's honk
    assert result.status == "succeeded" and result.outbound is True
    # the prepended step and the job are steps of their own, in order (as in the gem)
    assert [(s.index, s.status) for s in result.steps] == [(0, "succeeded"), (1, "succeeded")]
    assert result.steps[0].completed_at <= result.steps[1].started_at
    assert result.current_step_index == 1
    reloaded = stepped_env.reload(car)
    assert (reloaded.location, reloaded.honks) == ("service", 1)


async def test_a_failing_prepended_step_keeps_the_job_from_running(stepped_env):
    """S6.4, S3.8: the prepended step fails → the action fails; the job never runs."""
    EVENTS.clear()
    Car = car_class()

    def tow(action):
        EVENTS.append("job")

    Car.stepped_action("tow", job=tow)

    @Car.prepend_stepped_action_step("tow")
    def _(car, step):
        raise TowTrouble("flat tyre")

    car = stepped_env.create(Car, id=1)

    result = await stepped.run(car, "tow")

    assert result.status == "failed"
    assert result.error is not None and result.error.type == "TowTrouble"
    assert EVENTS == []


async def test_nested_job_action_concludes_its_parent_step(stepped_env):
    """S6.4, S3.14: a parent waits on job-backed children; a failing job fails it."""
    Car = car_class()

    def tow(action):
        if action.arguments[0] == "nowhere":
            action.complete("failed")
        action.actor.location = action.arguments[0]

    Car.stepped_action("tow", job=tow)
    rescue = Car.stepped_action("rescue")
    rescue.step(lambda car, step, others, place: step.on(others, "tow", place))
    rescue.step(lambda car, step, others, place: car.honk())
    car, other = stepped_env.create(Car, id=1), stepped_env.create(Car, id=2)

    good = await stepped.run(car, "rescue", [other], "garage")
    bad = await stepped.run(car, "rescue", [other], "nowhere")

    assert good.status == "succeeded"
    assert bad.status == "failed" and [s.status for s in bad.steps] == ["failed"]
    assert stepped_env.reload(car).honks == 1


async def test_perform_stepped_actions_drains_job_backed_actions(stepped_env):
    """S10.1, S6.4: job-backed actions, as roots and as children, drain in one call
    without completing anything from outside."""
    Car = car_class()

    def tow(action):
        action.actor.location = action.arguments[0]

    Car.stepped_action("tow", job=tow, retry=RETRY)
    fleet = Car.stepped_action("fleet")
    fleet.step(lambda car, step, others: step.on(others, "tow", "depot"))
    fleet.step(lambda car, step, others: car.honk())
    cars = [stepped_env.create(Car, id=n) for n in (1, 2, 3)]
    await stepped.start(cars[0], "tow", "garage")
    await stepped.start(cars[0], "fleet", cars[1:])

    states = await stepped_env.perform_stepped_actions()

    assert [(s.name, s.status) for s in states] == [("tow", "succeeded"), ("fleet", "succeeded")]
    everything = await stepped_env.actions()
    assert sorted((s.name, s.status, s.outbound) for s in everything) == [
        ("fleet", "succeeded", False),
        ("tow", "succeeded", True),
        ("tow", "succeeded", True),
        ("tow", "succeeded", True),
    ]
    assert [stepped_env.reload(c).location for c in cars] == ["garage", "depot", "depot"]
    assert stepped_env.reload(cars[0]).honks == 1
