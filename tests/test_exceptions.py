"""S8.1, S8.2, S8.3: handled and unhandled exceptions in user code.

A handled exception (by default any `Exception`) fails the action at once and
keeps the error's type and message. An unhandled one fails the activity, which
Temporal retries under the definition's retry policy; once the retries are
spent the action fails the same way. `handle_stepped_action_exceptions(only=...)`
sets the handled classes for a `with` block.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import stepped_temporal as stepped
from stepped_temporal.testing import handle_stepped_action_exceptions


class EngineTrouble(Exception):
    """A user's own exception class."""


def _car_class():
    """A Car whose `breakdown` raises and whose `flaky` action counts its attempts."""

    class Base(DeclarativeBase):
        pass

    class Car(stepped.Actor, Base):
        __tablename__ = "cars"
        id: Mapped[int] = mapped_column(primary_key=True)
        honks: Mapped[int] = mapped_column(default=0)

        def honk(self) -> None:
            self.honks += 1

        def breakdown(self) -> None:
            self.honks += 1
            raise EngineTrouble(f"car {self.id} broke down")

    return Car


def _flaky(Car, attempts: list) -> None:
    """`flaky(error_name)`: each attempt is recorded outside the rolled-back transaction."""
    flaky = Car.stepped_action(
        "flaky",
        retry=stepped.RetryPolicy(maximum_attempts=3, initial_interval=timedelta(milliseconds=10)),
    )

    @flaky.step
    def _(car, step, error_name):
        attempts.append(error_name)
        car.honk()
        raise {"KeyError": KeyError, "ValueError": ValueError}[error_name]("wheel")


async def test_a_handled_exception_in_a_step_fails_with_its_type_and_message(stepped_env):
    """S8.1: a step raising a handled exception: failed, error kept in result and describe."""
    Car = _car_class()
    trip = Car.stepped_action("trip")
    trip.step(lambda car, step: car.honk())

    @trip.step
    def _(car, step):
        car.honk()
        raise EngineTrouble("engine seized on the motorway")

    car = stepped_env.create(Car, id=1)

    handle = await stepped.start(car, "trip")
    result = await handle.result()
    described = await handle.describe()

    for state in (result, described):
        assert state.status == "failed"
        assert state.error is not None
        assert state.error.type == "EngineTrouble"
        assert state.error.message == "engine seized on the motorway"
        assert state.started_at is not None and state.completed_at is not None
        assert [s.status for s in state.steps] == ["succeeded", "failed"]
    assert "EngineTrouble" in str(result.error) and "motorway" in str(result.error)
    assert stepped_env.reload(car).honks == 1


async def test_a_handled_exception_in_a_generated_method_step_fails(stepped_env):
    """S8.1, S2.3: an undeclared method that raises fails the action with its error."""
    Car = _car_class()
    car = stepped_env.create(Car, id=1)

    result = await stepped.run(car, "breakdown")

    assert result.status == "failed"
    assert result.error is not None and result.error.type == "EngineTrouble"
    assert "car 1 broke down" in result.error.message
    assert [s.status for s in result.steps] == ["failed"]
    assert stepped_env.reload(car).honks == 0


async def test_a_handled_exception_in_a_key_function_fails(stepped_env):
    """S8.1, S3.3: a key function raising a handled exception fails the action; no step runs."""
    Car = _car_class()
    keyed = Car.stepped_action("keyed")

    @keyed.concurrency_key
    def _(car):
        raise LookupError("no lane for this car")

    keyed.step(lambda car, step: car.honk())
    car = stepped_env.create(Car, id=1)

    result = await stepped.run(car, "keyed")

    assert result.status == "failed"
    assert result.error is not None and result.error.type == "LookupError"
    assert "no lane for this car" in result.error.message
    assert result.steps == ()
    assert stepped_env.reload(car).honks == 0


async def test_an_unhandled_exception_is_retried_under_the_retry_policy(stepped_env):
    """S8.2, S8.3: outside `only`, the step is retried (3 attempts), then the action fails."""
    Car = _car_class()
    attempts = []
    _flaky(Car, attempts)
    car = stepped_env.create(Car, id=1)

    with handle_stepped_action_exceptions(only=[ValueError]):
        result = await stepped.run(car, "flaky", "KeyError")

    assert attempts == ["KeyError"] * 3
    assert result.status == "failed"
    assert result.error is not None and result.error.type == "KeyError"
    assert "wheel" in result.error.message
    assert [s.status for s in result.steps] == ["failed"]
    assert stepped_env.reload(car).honks == 0


async def test_an_exception_listed_in_only_is_handled_at_once(stepped_env):
    """S8.3, S8.1: inside the block a ValueError is handled: one attempt, then failed."""
    Car = _car_class()
    attempts = []
    _flaky(Car, attempts)
    car = stepped_env.create(Car, id=1)

    with handle_stepped_action_exceptions(only=[ValueError]):
        result = await stepped.run(car, "flaky", "ValueError")

    assert attempts == ["ValueError"]
    assert result.status == "failed"
    assert result.error is not None and result.error.type == "ValueError"
    assert "wheel" in result.error.message


async def test_the_handled_classes_are_restored_after_the_block(stepped_env):
    """S8.3, S8.1: after the block every Exception is handled again: one attempt."""
    Car = _car_class()
    attempts = []
    _flaky(Car, attempts)
    car = stepped_env.create(Car, id=1)

    with handle_stepped_action_exceptions(only=[ValueError]):
        pass
    result = await stepped.run(car, "flaky", "KeyError")

    assert attempts == ["KeyError"]
    assert result.status == "failed"
    assert result.error is not None and result.error.type == "KeyError"


async def test_an_unhandled_exception_in_a_child_fails_the_tree_once_retries_are_spent(
    stepped_env,
):
    """S8.2, S3.14: retries exhausted in a child fail it and its parent; nothing hangs."""
    Car = _car_class()
    attempts = []
    _flaky(Car, attempts)
    convoy = Car.stepped_action("convoy")

    @convoy.step
    def _(car, step):
        step.do("flaky", "KeyError")
        step.do("honk")

    car = stepped_env.create(Car, id=1)

    with handle_stepped_action_exceptions(only=[ValueError]):
        result = await stepped.run(car, "convoy")

    assert attempts == ["KeyError"] * 3
    assert result.status == "failed"
    (step,) = result.steps
    assert step.status == "failed"
    assert (step.pending_actions_count, step.unsuccessful_actions_count) == (0, 1)
    children = {
        c.name: c for c in [await stepped.action_handle(i).describe() for i in step.actions]
    }
    assert children["flaky"].status == "failed"
    assert children["flaky"].error is not None and children["flaky"].error.type == "KeyError"
    assert children["honk"].status == "succeeded"
    assert stepped_env.reload(car).honks == 1
