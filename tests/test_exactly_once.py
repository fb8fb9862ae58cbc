"""Exactly-once effects (store/records.py): an activity whose transaction committed but
whose completion Temporal never heard of is retried — and returns the recorded
outcome instead of running the user code again. Also: the idempotency keys
handed to user code, and database outages retried rather than failing actions.

"The worker died after the commit" is played by an activity interceptor that
lets the first attempt of an activity run to the end, then fails it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from temporalio.common import RetryPolicy
from temporalio.testing import ActivityEnvironment
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

import stepped_temporal as stepped
from stepped_temporal.messages import ActionContext, PrepareInput
from stepped_temporal.preparing import prepare
from stepped_temporal.store import LaneClaim, StepRecord
from stepped_temporal.testing import SteppedTestEnvironment, handle_stepped_action_exceptions
from stepped_temporal.wire import encode
from tests.databases import postgres_schema, postgres_unreachable
from tests.support import achievement, car_class, record_lookups


class _LoseFirstCompletion(Interceptor):
    """Fails attempt 1 of the named activities after they ran (and committed)."""

    def __init__(self, names: set[str]) -> None:
        self.names = names
        self.lost: list[str] = []

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        outer = self

        class _Inbound(ActivityInboundInterceptor):
            async def execute_activity(self, input: ExecuteActivityInput) -> Any:
                from temporalio import activity

                result = await super().execute_activity(input)
                info = activity.info()
                if info.activity_type in outer.names and info.attempt == 1:
                    outer.lost.append(info.activity_type)
                    raise RuntimeError("the worker died before Temporal heard of the result")
                return result

        return _Inbound(next)


FAST = RetryPolicy(initial_interval=timedelta(milliseconds=10), maximum_attempts=3)
ACTIVITIES = {"stepped_prepare", "stepped_step", "stepped_job", "stepped_finish"}


@pytest.fixture(params=["sqlite", "postgresql"])
async def losing_env(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[SteppedTestEnvironment, _LoseFirstCompletion]]:
    interceptor = _LoseFirstCompletion(ACTIVITIES)
    with contextlib.ExitStack() as stack:
        url = None
        if request.param == "postgresql":
            reason = postgres_unreachable()
            if reason:
                pytest.skip(reason)
            url = stack.enter_context(postgres_schema())
        async with SteppedTestEnvironment.start(
            database_url=url, interceptors=[interceptor]
        ) as env:
            yield env, interceptor


async def test_every_unit_of_user_code_commits_once_though_every_completion_is_lost(losing_env):
    """before, each step, the after-callback: each attempt 1 committed, then its
    completion was lost; the retries ran nothing again."""
    env, interceptor = losing_env
    Car = car_class()
    visit = Car.stepped_action("visit", retry=FAST)

    @visit.before
    def _(car, action, location):
        car.mileage += 1

    @visit.step
    def _(car, step, location):
        car.honk()

    @visit.step
    def _(car, step, location):
        car.change_location(location)
        car.mileage += 10

    @visit.succeeded
    def _(car, action, location):
        car.honk()

    car = env.create(Car, id=1)
    result = await stepped.run(car, "visit", "Oslo")

    assert result.status == "succeeded"
    reloaded = env.reload(car)
    assert (reloaded.honks, reloaded.mileage, reloaded.location) == (2, 11, "Oslo")
    # prepare ran the first step too (it claimed the key): one lost completion
    # for before + step 0, one for step 1, one for the callback
    assert sorted(interceptor.lost) == ["stepped_finish", "stepped_prepare", "stepped_step"]
    with env.session() as session:
        units = session.scalars(sa.select(StepRecord.key).where(StepRecord.action_id == result.id))
        assert sorted(key.split("/", 1)[1] for key in units) == [
            "after/succeeded/0",
            "before/0",
            "step/0",
            "step/1",
        ]


async def test_a_lost_prepare_that_ran_the_whole_action_leaves_no_claim(losing_env):
    """Prepare claimed the key, ran the only step (which gave the key up and granted
    the achievement), then its completion was lost: the retry returns the step's
    record — it neither claims the key again (held for good) nor reads the step's
    own grant as "already achieved"."""
    env, interceptor = losing_env
    Car = car_class()
    wash = Car.stepped_action("wash", retry=FAST)
    wash.checksum(lambda car: "clean")
    wash.step(lambda car, step: car.honk())
    car = env.create(Car, id=1)

    result = await stepped.run(car, "wash")

    assert interceptor.lost == ["stepped_prepare"]
    assert result.status == "succeeded"
    assert [s.status for s in result.steps] == ["succeeded"]
    assert env.reload(car).honks == 1
    with env.session() as session:
        assert session.scalars(sa.select(LaneClaim.concurrency_key)).all() == []
    assert achievement(env, "Car/1/wash") == stepped.checksum("clean")


async def test_a_local_prepare_run_again_from_attempt_one_finds_its_first_step(stepped_db_env):
    """Prepare is a local activity (revision 2), whose attempts start again at 1
    when its worker is lost mid-task (the next worker replays a history with no
    marker yet): the second run, attempt 1 again but not in the workflow's first
    task, still finds the first run's step record — it neither runs the step
    again nor leaves the key claimed. The first run, in the first task, looked
    no record up: none can exist."""
    env = stepped_db_env
    Car = car_class()
    Car.stepped_action("wash").step(lambda car, step: car.honk())
    car = env.create(Car, id=1)
    environment = ActivityEnvironment()
    environment.info = dataclasses.replace(
        environment.info, is_local=True, attempt=1, workflow_run_id=uuid.uuid4().hex
    )
    context = ActionContext(
        action_id="Car/1/wash/0123456789abcdef",
        actor_type="Car",
        actor_id=1,
        name="wash",
        arguments=[],
        root=True,
    )
    argument = PrepareInput(context, "exactly-once", perform_first_step=True)
    with record_lookups() as lookups:
        first = await environment.run(prepare, encode(replace(argument, first_task=True)))
        assert lookups == []
        again = await environment.run(prepare, encode(argument))
        assert len(lookups) == 1  # step 0's record: found, so nothing else runs

    assert first["outcome"] == again["outcome"] == "claimed"
    assert first["first_step"]["released"] is True
    assert again["first_step"] == first["first_step"], again
    assert env.reload(car).honks == 1
    with env.session() as session:
        assert session.scalars(sa.select(LaneClaim.concurrency_key)).all() == []


async def test_a_job_and_a_step_starting_children_commit_once(losing_env):
    """The recorded outcome carries what the step asked for: the children start once."""
    env, interceptor = losing_env
    Car = car_class()
    Car.stepped_action("drive")
    tour = Car.stepped_action("tour", retry=FAST)

    @tour.step
    def _(car, step, others):
        car.honk()
        step.on(others, "drive", 5)

    def fuel(action):
        action.actor.mileage += 100

    Car.stepped_action("refuel", job=fuel, retry=FAST)
    cars = [env.create(Car, id=n) for n in (1, 2, 3)]

    toured = await stepped.run(cars[0], "tour", cars[1:])
    refuelled = await stepped.run(cars[0], "refuel")

    assert toured.status == refuelled.status == "succeeded"
    assert len(toured.steps[0].actions) == 2
    assert [env.reload(c).mileage for c in cars] == [100, 5, 5]
    assert env.reload(cars[0]).honks == 1
    assert "stepped_job" in interceptor.lost


async def test_idempotency_keys_are_stable_across_retries(stepped_env):
    """step.idempotency_key / action.idempotency_key: the same on every attempt,
    different for every unit."""
    seen: list[str] = []
    Car = car_class()
    flaky = Car.stepped_action("flaky", retry=FAST)
    attempts = {"step": 0}

    @flaky.before
    def _(car, action):
        seen.append(action.idempotency_key)

    @flaky.step
    def _(car, step):
        seen.append(step.idempotency_key)
        attempts["step"] += 1
        if attempts["step"] == 1:
            raise RuntimeError("the outside system timed out")

    @flaky.succeeded
    def _(car, action):
        seen.append(action.idempotency_key)

    car = stepped_env.create(Car, id=1)
    with handle_stepped_action_exceptions([ValueError]):
        result = await stepped.run(car, "flaky")

    assert result.status == "succeeded"
    assert seen == [
        f"{result.id}/before/0",
        f"{result.id}/step/0",
        f"{result.id}/step/0",
        f"{result.id}/after/succeeded/0",
    ]


async def test_a_database_outage_inside_a_step_is_retried_not_a_failure(stepped_env):
    """An OperationalError is the database being away, not the code being wrong: even
    though every Exception counts as handled by default, the step runs again."""
    Car = car_class()
    shaky = Car.stepped_action("shaky")
    calls = {"n": 0}

    @shaky.step
    def _(car, step):
        calls["n"] += 1
        if calls["n"] < 3:
            raise sa.exc.OperationalError("SELECT 1", {}, ConnectionRefusedError("refused"))
        car.honk()

    car = stepped_env.create(Car, id=1)
    result = await stepped.run(car, "shaky")

    assert result.status == "succeeded"
    assert calls["n"] == 3
    assert stepped_env.reload(car).honks == 1
