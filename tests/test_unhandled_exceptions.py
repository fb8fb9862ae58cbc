"""S8.2, S8.3: an exception outside `handle_stepped_action_exceptions(only=...)` is
not handled: it fails the activity, Temporal retries it under the action's retry
policy, and once the retries are spent the action fails with the error's type —
in a step, in a nested child (failing every ancestor, S3.14) and in a `before`
hook (S3.2). Nothing hangs."""

from __future__ import annotations

from datetime import timedelta

import pytest

import stepped_temporal as stepped
from stepped_temporal.testing import handle_stepped_action_exceptions
from tests.support import car_class, until

#: One entry per attempt, kept outside the rolled-back transactions.
ATTEMPTS: list = []


def _retry(attempts: int, interval: timedelta = timedelta(milliseconds=10)) -> stepped.RetryPolicy:
    return stepped.RetryPolicy(maximum_attempts=attempts, initial_interval=interval)


def _flaky(Car, attempts: int = 4, interval: timedelta = timedelta(milliseconds=10)):
    """flaky(): honks (rolled back), records the attempt and raises KeyError."""
    flaky = Car.stepped_action("flaky", retry=_retry(attempts, interval))

    @flaky.step
    def _(car, step):
        ATTEMPTS.append(("flaky", car.id))
        car.honk()
        raise KeyError("spare wheel")

    flaky.failed(lambda car, action: car.change_location("failed"))
    return flaky


@pytest.mark.time_skipping
async def test_unhandled_step_exception_is_retried_then_fails(stepped_env):
    """S8.2, S8.3: KeyError is not in `only`: after the first attempt the action still
    performs, waiting for its retry (a minute: time stands still until a result is
    awaited); the step runs maximum_attempts (4) times, then the action fails with
    type KeyError; the failed callback runs; every attempt's change rolled back."""
    ATTEMPTS.clear()
    Car = car_class()
    _flaky(Car, attempts=4, interval=timedelta(minutes=1))
    car = stepped_env.create(Car, id=1)

    with handle_stepped_action_exceptions(only=[ValueError]):
        handle = await stepped.start(car, "flaky")
        retrying = await until(handle, lambda s: ATTEMPTS and s.steps)
        assert retrying.status == "performing"  # an unhandled error is no failure yet
        assert retrying.steps[0].status == "performing" and retrying.error is None
        assert ATTEMPTS == [("flaky", 1)]
        result = await handle.result()

    assert ATTEMPTS == [("flaky", 1)] * 4
    assert result.status == "failed"
    assert result.error is not None and result.error.type == "KeyError"
    assert "spare wheel" in result.error.message
    assert [s.status for s in result.steps] == ["failed"]
    reloaded = stepped_env.reload(car)
    assert (reloaded.honks, reloaded.location) == (0, "failed")


async def test_unhandled_exception_in_a_grandchild_fails_every_ancestor(stepped_env):
    """S8.2, S3.14: a grandchild failing after its retries fails its parent's step,
    that parent, and the root; later steps do not run."""
    ATTEMPTS.clear()
    Car = car_class()
    _flaky(Car, attempts=2)
    service = Car.stepped_action("service")
    service.step(lambda car, step: step.do("flaky"))
    service.step(lambda car, step: car.drive(10))
    trip = Car.stepped_action("trip")
    trip.step(lambda car, step, other: step.on(other, "service"))
    trip.step(lambda car, step, other: car.drive(100))
    car, other = stepped_env.create(Car, id=1), stepped_env.create(Car, id=2)

    with handle_stepped_action_exceptions(only=[ValueError]):
        result = await stepped.run(car, "trip", other)

    assert ATTEMPTS == [("flaky", 2)] * 2
    assert result.status == "failed"
    assert [s.status for s in result.steps] == ["failed"]
    assert result.steps[0].unsuccessful_actions_count == 1
    child = await stepped.action_handle(result.steps[0].actions[0]).result()
    assert (child.name, child.status) == ("service", "failed")
    assert [s.status for s in child.steps] == ["failed"]
    grandchild = await stepped.action_handle(child.steps[0].actions[0]).result()
    assert (grandchild.name, grandchild.status) == ("flaky", "failed")
    assert grandchild.error is not None and grandchild.error.type == "KeyError"
    assert [stepped_env.reload(c).mileage for c in (car, other)] == [0, 0]
    assert stepped_env.reload(other).location == "failed"


async def test_handled_exception_in_the_same_block_fails_at_once(stepped_env):
    """S8.3, S8.1: the contrast — a ValueError is in `only`: one attempt, then failed."""
    ATTEMPTS.clear()
    Car = car_class()
    flaky = Car.stepped_action("flaky", retry=_retry(4))

    @flaky.step
    def _(car, step):
        ATTEMPTS.append("attempt")
        raise ValueError("bent rim")

    car = stepped_env.create(Car, id=1)

    with handle_stepped_action_exceptions(only=[ValueError]):
        result = await stepped.run(car, "flaky")

    assert ATTEMPTS == ["attempt"]
    assert result.status == "failed"
    assert result.error is not None and result.error.type == "ValueError"


async def test_unhandled_exception_in_before_is_retried_then_fails(stepped_env):
    """S8.2, S3.2: a `before` hook raising an unhandled exception is retried under the
    default retry policy (5 attempts), then the action fails: no step runs, no lane
    is joined, the failed callback does not run (before failed)."""
    ATTEMPTS.clear()
    Car = car_class()
    inspect = Car.stepped_action("inspect")

    @inspect.before
    def _(car, action):
        ATTEMPTS.append("before")
        car.honk()
        raise KeyError("no inspector")

    inspect.step(lambda car, step: car.drive(1))
    car = stepped_env.create(Car, id=1)

    with handle_stepped_action_exceptions(only=[ValueError]):
        result = await stepped.run(car, "inspect")

    assert ATTEMPTS == ["before"] * 5
    assert result.status == "failed"
    assert result.error is not None and result.error.type == "KeyError"
    assert "no inspector" in result.error.message
    assert result.steps == () and result.started_at is None
    reloaded = stepped_env.reload(car)
    assert (reloaded.honks, reloaded.mileage) == (0, 0)


async def test_unhandled_exception_in_before_follows_the_definitions_retry_policy(stepped_env):
    """S8.2: "retried under the action's retry policy" — a definition with
    `retry=RetryPolicy(maximum_attempts=2)` retries its `before` hook twice, not
    under the default policy."""
    ATTEMPTS.clear()
    Car = car_class()
    inspect = Car.stepped_action("inspect", retry=_retry(2))

    @inspect.before
    def _(car, action):
        ATTEMPTS.append("before")
        raise KeyError("no inspector")

    inspect.step(lambda car, step: car.drive(1))
    car = stepped_env.create(Car, id=1)

    with handle_stepped_action_exceptions(only=[ValueError]):
        result = await stepped.run(car, "inspect")

    assert ATTEMPTS == ["before"] * 2
    assert result.status == "failed"
    assert result.error is not None and result.error.type == "KeyError"


async def test_unhandled_exception_in_a_nested_before_fails_the_parent(stepped_env):
    """S8.2, S3.2, S3.14: a child whose `before` keeps raising fails after its retries,
    and so does its parent."""
    ATTEMPTS.clear()
    Car = car_class()
    inspect = Car.stepped_action("inspect")

    @inspect.before
    def _(car, action):
        ATTEMPTS.append("before")
        raise KeyError("no inspector")

    trip = Car.stepped_action("trip")
    trip.step(lambda car, step: step.do("inspect"))
    trip.step(lambda car, step: car.honk())
    car = stepped_env.create(Car, id=1)

    with handle_stepped_action_exceptions(only=[ValueError]):
        result = await stepped.run(car, "trip")

    assert ATTEMPTS == ["before"] * 5
    assert result.status == "failed"
    assert [s.status for s in result.steps] == ["failed"]
    child = await stepped.action_handle(result.steps[0].actions[0]).result()
    assert child.status == "failed"
    assert child.error is not None and child.error.type == "KeyError"
    assert stepped_env.reload(car).honks == 0
