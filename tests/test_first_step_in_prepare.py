"""A claimed action's first step runs inside prepare (one activity and one workflow
task less per action), and nothing a user sees changes: describe() says
performing while that step runs (S9.2), its unhandled errors are retried under
the action's policy with the same number of attempts (S8.2), its times are in
order, and actions that must be seen performing first — outbound (S6) or with a
timeout (S7) — keep their first step in the step activity."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta

from temporalio.api.enums.v1 import EventType

import stepped_temporal as stepped
from stepped_temporal.testing import handle_stepped_action_exceptions
from tests.support import achievement, activities_run, car_class, performing, slow_action, until

#: One entry per run of a step body, kept outside the rolled-back transactions.
CALLS: list[str] = []


async def test_describe_says_performing_while_prepare_runs_the_first_step(stepped_db_env):
    """S9.2: the workflow has not heard back from prepare, yet describe() reports the
    action performing its first step, with its keys — read from its claim."""
    Car = car_class()
    gate = threading.Event()
    entered = threading.Event()
    slow = slow_action(Car, gate, entered)
    slow.step(lambda car, step: car.drive(5))
    car = stepped_db_env.create(Car, id=1)

    handle = await stepped.start(car, "slow")
    assert await asyncio.to_thread(entered.wait, 10)
    state = await until(handle, performing)
    assert state.concurrency_key == "garage/1"
    assert state.current_step_index == 0
    assert [(s.index, s.status) for s in state.steps] == [(0, "performing")]
    assert state.started_at is not None and state.steps[0].started_at == state.started_at
    gate.set()
    result = await handle.result()

    assert result.status == "succeeded"
    assert await activities_run(stepped_db_env.client, handle.id) == [
        "local stepped_prepare",
        "stepped_step",
    ]
    assert result.started_at is not None and result.completed_at is not None
    first, second = result.steps
    assert first.started_at is not None and first.completed_at is not None
    assert second.started_at is not None and second.completed_at is not None
    assert result.started_at <= first.started_at <= first.completed_at
    assert first.completed_at <= second.started_at <= second.completed_at <= result.completed_at
    reloaded = stepped_db_env.reload(car)
    assert (reloaded.honks, reloaded.mileage) == (1, 5)


def _failing(Car, name: str, retry: stepped.RetryPolicy, failures: int):
    """A one-step action whose step raises KeyError `failures` times, then honks."""
    action = Car.stepped_action(name, retry=retry)

    @action.step
    def _(car, step):
        CALLS.append(name)
        car.honk()  # rolled back whenever the step raises
        if CALLS.count(name) <= failures:
            raise KeyError("flat tyre")

    return action


async def test_a_first_step_with_a_single_attempt_runs_once(stepped_env):
    """S8.2: maximum_attempts=1 means one run, though it ran inside prepare."""
    CALLS.clear()
    Car = car_class()
    _failing(Car, "once", stepped.RetryPolicy(maximum_attempts=1), failures=5)
    car = stepped_env.create(Car, id=1)

    with handle_stepped_action_exceptions(only=[ValueError]):
        result = await stepped.run(car, "once")

    assert CALLS == ["once"]
    assert result.status == "failed"
    assert result.error is not None and result.error.type == "KeyError"
    assert [s.status for s in result.steps] == ["failed"]
    assert stepped_env.reload(car).honks == 0


async def test_a_non_retryable_error_of_the_first_step_is_not_retried(stepped_env):
    """S8.2: an error type the policy names as non-retryable ends the step at once."""
    CALLS.clear()
    Car = car_class()
    policy = stepped.RetryPolicy(
        maximum_attempts=5,
        initial_interval=timedelta(milliseconds=10),
        non_retryable_error_types=["KeyError"],
    )
    _failing(Car, "fragile", policy, failures=5)
    car = stepped_env.create(Car, id=1)

    with handle_stepped_action_exceptions(only=[ValueError]):
        result = await stepped.run(car, "fragile")

    assert CALLS == ["fragile"]
    assert result.status == "failed"
    assert result.error is not None and result.error.type == "KeyError"


async def test_a_first_step_failing_in_prepare_succeeds_on_its_retry(stepped_env):
    """S8.2: the failed run in prepare is attempt 1; the step activity's run is
    attempt 2, and its changes are the only ones kept."""
    CALLS.clear()
    Car = car_class()
    policy = stepped.RetryPolicy(maximum_attempts=2, initial_interval=timedelta(milliseconds=10))
    _failing(Car, "bumpy", policy, failures=1)
    car = stepped_env.create(Car, id=1)

    with handle_stepped_action_exceptions(only=[ValueError]):
        handle = await stepped.start(car, "bumpy")
        result = await handle.result()

    assert CALLS == ["bumpy", "bumpy"]
    assert result.status == "succeeded"
    assert stepped_env.reload(car).honks == 1
    assert await activities_run(stepped_env.client, handle.id) == [
        "local stepped_prepare",
        "stepped_step",
    ]


async def test_outbound_and_timed_actions_run_their_first_step_as_an_activity(stepped_env):
    """S6.1, S7: `complete()` and the timeout clock need the action performing in the
    workflow before its first step runs, so prepare leaves that step alone."""
    Car = car_class()
    timed = Car.stepped_action("timed", timeout=timedelta(hours=1))
    timed.step(lambda car, step: car.honk())
    paint = Car.stepped_action("paint", outbound=True)
    paint.step(lambda car, step: car.honk())
    car = stepped_env.create(Car, id=1)

    timed_result = await stepped.run(car, "timed")
    painting = await stepped.start(car, "paint")
    await until(painting, lambda s: s.steps and s.steps[0].status == "succeeded")
    assert await stepped.complete(car, "paint")
    paint_result = await painting.result()

    assert (timed_result.status, paint_result.status) == ("succeeded", "succeeded")
    assert await activities_run(stepped_env.client, timed_result.id) == [
        "local stepped_prepare",
        "stepped_step",
    ]
    # (an outbound action gives its key up in the finish activity, after the completion)
    assert (await activities_run(stepped_env.client, painting.id))[:2] == [
        "local stepped_prepare",
        "stepped_step",
    ]
    assert stepped_env.reload(car).honks == 2


async def test_the_last_step_grants_the_achievement_itself(stepped_db_env):
    """S3.9, S5.2: with a checksum and nothing left to run after it, the last step
    grants the achievement in its own transaction — no finish activity — and a
    start afterwards is skipped; a failed step grants nothing."""
    Car = car_class()
    wash = Car.stepped_action("wash")
    wash.checksum(lambda car, soap: soap)

    @wash.step
    def _(car, step, soap):
        if soap == "acid":
            raise ValueError("acid is no soap")
        car.honk()

    rinse = Car.stepped_action("rinse")
    rinse.checksum(lambda car: "clear")
    rinse.step(lambda car, step: car.honk())
    rinse.step(lambda car, step: car.drive(1))
    car = stepped_db_env.create(Car, id=1)

    washed = await stepped.run(car, "wash", "foam")
    rinsed = await stepped.run(car, "rinse")
    again = await stepped.run(car, "wash", "foam")
    failed = await stepped.run(car, "wash", "acid")

    assert (washed.status, rinsed.status, again.status) == ("succeeded",) * 3
    assert await activities_run(stepped_db_env.client, washed.id) == ["local stepped_prepare"]
    assert await activities_run(stepped_db_env.client, rinsed.id) == [
        "local stepped_prepare",
        "stepped_step",
    ]
    assert achievement(stepped_db_env, "Car/1/rinse") == stepped.checksum("clear")
    assert again.steps == ()  # skipped: the step's grant was there
    assert failed.status == "failed"
    assert achievement(stepped_db_env, "Car/1/wash") is None  # erased when acid performed
    reloaded = stepped_db_env.reload(car)
    assert (reloaded.honks, reloaded.mileage) == (2, 1)


async def test_a_wide_step_starts_its_children_in_batches(stepped_env):
    """S3.7: 120 children all run and conclude; the parent asks Temporal for them
    at most its shape's start_batch per workflow task (one huge batch of start
    events is slow for the server to work through)."""
    from stepped_temporal.shapes import CURRENT_ACTION_SHAPE

    START_BATCH = CURRENT_ACTION_SHAPE.start_batch

    Car = car_class()
    fleet = Car.stepped_action("fleet")
    fleet.step(lambda car, step, others: step.on(others, "honk"))
    cars = [stepped_env.create(Car, id=n) for n in range(1, 122)]

    result = await stepped.run(cars[0], "fleet", cars[1:])

    assert result.status == "succeeded"
    assert result.steps[0].actions_count == 120
    assert [stepped_env.reload(c).honks for c in cars[1:]] == [1] * 120
    history = await stepped_env.client.get_workflow_handle(result.id).fetch_history()
    batches, current = [], 0
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
            current += 1
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED and current:
            batches.append(current)
            current = 0
    batches.append(current)
    assert sum(batches) == 120
    assert max(batches) <= START_BATCH < 120
