"""S8.2: an action's retry policy counts the failures of its code, not attempts lost
with their worker (budgets.py). Temporal runs Stepped's units with no limit on
attempts; each failed attempt of user code is recorded, and the one that uses up
`maximum_attempts` is final. Worker kills are proven not to count by the crash
tests (tests/reliability/test_production.py: fifty kills, no action lost to
them); here, that counting ends actions exactly as the policy says — also a
step that always runs past its start-to-close timeout."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest

import stepped_temporal as stepped
from stepped_temporal.store import records, transaction
from stepped_temporal.testing import handle_stepped_action_exceptions
from tests.support import car_class

CALLS: list[str] = []


async def test_a_step_always_running_too_long_ends_after_its_attempts(stepped_db_env):
    """A unit still running at 90% of its start-to-close timeout counts as failed: with
    maximum_attempts=2 the step runs twice and the action fails (TimeoutError),
    instead of being retried for ever.

    PostgreSQL only: on SQLite a running step body holds the database's write lock
    (transactions begin IMMEDIATE), so nothing else writes until it ends — the
    count of its lateness neither."""
    if stepped_db_env.engine.dialect.name == "sqlite":
        pytest.skip("on SQLite a running step body holds the write lock (see docstring)")
    stepped_env = stepped_db_env
    CALLS.clear()
    stepped.configure(activity_timeout=timedelta(seconds=1.5))
    Car = car_class()
    released = threading.Event()
    slow = Car.stepped_action(
        "crawl",
        retry=stepped.RetryPolicy(maximum_attempts=2, initial_interval=timedelta(milliseconds=50)),
    )

    @slow.step
    def _(car, step):
        CALLS.append("crawl")
        released.wait(6)
        car.honk()

    car = stepped_env.create(Car, id=1)
    started = time.monotonic()
    with handle_stepped_action_exceptions(only=[ValueError]):
        result = await stepped.run(car, "crawl")
    released.set()

    assert result.status == "failed", (CALLS, result)
    assert result.error is not None and result.error.type == "TimeoutError"
    assert "still ran after" in result.error.message
    assert CALLS == ["crawl", "crawl"]
    assert time.monotonic() - started < 10


def test_failed_attempts_are_counted_once_each(stepped_db_env):
    """The record of failed attempts (store/records.py), on SQLite and PostgreSQL:
    counting an attempt twice counts it once; later attempts are not seen early."""
    with transaction() as session:
        assert records.count_failure(session, "run", "1", 1, "A/1/x") == 1
    with transaction() as session:
        assert records.count_failure(session, "run", "1", 1, "A/1/x") == 1  # again
        assert records.count_failure(session, "run", "1", 3, "A/1/x") == 2  # 2 was a kill
        assert records.count_failure(session, "run", "2", 1, "A/1/x") == 1  # another activity
