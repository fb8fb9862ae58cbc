"""S9.4: Temporal's execution status mirrors the final status.

`failed`, `timed_out`, `deadlocked` and `cancelled` end the workflow failed —
non-retryable, the failure type naming the status, the message the action's
error with the action named, the result as its detail — while `succeeded`,
`superseded` and shared actions complete. `handle.result()` returns an
`ActionResult` for every final status, and parents conclude as before.
Runs on both servers (the list query test is in test_web_ui.py: dev only).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError

import stepped_temporal as stepped
from stepped_temporal.failures import action_data
from tests.support import car_class, garage, joined, performing, rally_with_a_crash, until


async def _temporal_end(env, action_id: str) -> tuple[str, ApplicationError | None]:
    """The workflow's execution status (RUNNING → COMPLETED, FAILED…) and its failure."""
    handle: WorkflowHandle = env.client.get_workflow_handle(action_id)
    try:
        await handle.result()
        failure = None
    except WorkflowFailureError as error:
        assert isinstance(error.cause, ApplicationError), error.cause
        failure = error.cause
    description = await handle.describe()
    assert description.status is not None
    return description.status.name, failure


def _assert_failed_as(failure: ApplicationError | None, failure_type: str, *named: str) -> None:
    assert failure is not None
    assert failure.type == failure_type
    assert failure.non_retryable is True
    for text in named:
        assert text in failure.message, (text, failure.message)


def _steps_done(state) -> bool:
    return (
        state.status == "performing"
        and bool(state.steps)
        and state.steps[-1].status == ("succeeded")
    )


async def test_a_failed_leaf_and_its_parent_fail_their_workflows(stepped_env):
    """A failing child fails its workflow; its parent concludes failed (and fails its
    own); the succeeding sibling completes. result() returns all three."""
    Car = car_class()
    rally_with_a_crash(Car)
    one, two, three = (stepped_env.create(Car, id=n) for n in (1, 2, 3))

    parent = await stepped.run(one, "rally", two, three)
    assert parent.status == "failed" and parent.steps[0].unsuccessful_actions_count == 1
    crashed_id, drove_id = parent.steps[0].actions
    crashed = await stepped.action_handle(crashed_id).result()
    drove = await stepped.action_handle(drove_id).result()
    assert (crashed.status, drove.status) == ("failed", "succeeded")
    assert crashed.error is not None and crashed.error.message == "hit a wall"

    status, failure = await _temporal_end(stepped_env, crashed_id)
    assert status == "FAILED"
    _assert_failed_as(failure, "ActionFailed", crashed_id, "RuntimeError: hit a wall")
    assert failure is not None and action_data(failure) is not None
    assert action_data(failure).status == "failed"  # type: ignore[union-attr]
    status, failure = await _temporal_end(stepped_env, parent.id)
    assert status == "FAILED"
    _assert_failed_as(failure, "ActionFailed", parent.id)
    assert await _temporal_end(stepped_env, drove_id) == ("COMPLETED", None)
    assert stepped_env.reload(three).mileage == 5


async def test_timed_out_cancelled_and_completed_as_failed_fail_their_workflows(stepped_env):
    """timed_out (the action's timeout), cancelled (cancel() while performing) and an
    outbound action completed as failed each fail their workflow with their type."""
    Car = car_class()
    slow = Car.stepped_action("slow", timeout=timedelta(seconds=2))
    slow.step(lambda car, step: step.wait(timedelta(hours=1)))
    Car.stepped_action("paint", outbound=True).step(lambda car, step: car.honk())
    Car.stepped_action("wash", outbound=True).step(lambda car, step: car.honk())
    car = stepped_env.create(Car, id=1)

    timed_out = await stepped.run(car, "slow")
    assert timed_out.status == "timed_out"
    status, failure = await _temporal_end(stepped_env, timed_out.id)
    assert status == "FAILED"
    _assert_failed_as(failure, "ActionTimedOut", timed_out.id, "timed out")

    painting = await stepped.start(car, "paint")
    await until(painting, performing)
    assert await painting.cancel() is True
    assert (await painting.result()).status == "cancelled"
    status, failure = await _temporal_end(stepped_env, painting.id)
    assert status == "FAILED"
    _assert_failed_as(failure, "ActionCancelled", painting.id, "cancelled")

    washing = await stepped.start(car, "wash")
    await until(washing, _steps_done)
    assert await stepped.complete(car, "wash", "failed") is True
    assert (await washing.result()).status == "failed"
    status, failure = await _temporal_end(stepped_env, washing.id)
    assert status == "FAILED"
    _assert_failed_as(failure, "ActionFailed", washing.id)


async def test_a_deadlocked_child_fails_its_workflow(stepped_env):
    """deadlocked → ActionDeadlocked, the Deadlock error in the message."""
    Car = car_class()
    wash = Car.stepped_action("wash")
    wash.concurrency_key(lambda car: "garage")
    wash.step(lambda car, step: car.honk())
    service = Car.stepped_action("service")
    service.concurrency_key(lambda car: "garage")
    service.step(lambda car, step: step.do("wash"))
    car = stepped_env.create(Car, id=1)

    parent = await stepped.run(car, "service")
    (child_id,) = parent.steps[0].actions
    assert (await stepped.action_handle(child_id).result()).status == "deadlocked"
    status, failure = await _temporal_end(stepped_env, child_id)
    assert status == "FAILED"
    _assert_failed_as(failure, "ActionDeadlocked", child_id, "Deadlock: ")
    assert (await _temporal_end(stepped_env, parent.id))[0] == "FAILED"


async def test_superseded_and_shared_actions_complete(stepped_env):
    """superseded (a newer pending one replaced it) and shared (an identical one was
    in flight) end COMPLETED, as does what they were handed to."""
    Car = car_class()
    garage(Car, checksum=True)
    car = stepped_env.create(Car, id=1)

    holder = await stepped.start(car, "hold")
    await until(holder, performing)
    first = await stepped.start(car, "visit", "Oslo")
    await until(first, joined)
    second = await stepped.start(car, "visit", "Paris")  # supersedes the first
    await until(second, joined)  # before the third: it must share this one
    shared = await stepped.start(car, "visit", "Paris")  # shares the second
    await until(shared, lambda s: s.resolved_by is not None)
    assert await stepped.complete(car, "hold") is True

    results = [await h.result() for h in (first, second, shared, holder)]
    assert [r.status for r in results] == ["superseded", "succeeded", "succeeded", "succeeded"]
    assert results[2].resolved_by == second.id and results[2].steps == ()
    for handle in (first, second, shared, holder):
        assert await _temporal_end(stepped_env, handle.id) == ("COMPLETED", None)
