"""S3.2: `before` runs first; it may change arguments, cancel, complete, or fail the action.

When it cancels, completes or fails, no step runs, no lane is joined, no
achievement changes, no after-callback runs, and a parent's dependency
concludes (successfully only for succeeded).
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from temporalio.service import RPCError, RPCStatusCode

import stepped_temporal as stepped
from stepped_temporal.achievements import Achievement, grant
from stepped_temporal.keys import lane_id
from stepped_temporal.store import LaneClaim
from tests.support import car_class, performing, until


async def _lane_exists(env, key: str) -> bool:
    try:
        await env.client.get_workflow_handle(lane_id(key)).describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


def _claim_holder(env, key: str) -> str | None:
    with env.session() as session:
        return session.scalar(sa.select(LaneClaim.holder).where(LaneClaim.concurrency_key == key))


def _achievement(env, key: str) -> str | None:
    with env.session() as session:
        return session.scalar(
            sa.select(Achievement.checksum).where(Achievement.checksum_key == key)
        )


def _ending_early(Car, name: str, hook):
    """Declare `name` with `hook` as before, a step, a checksum and catch-all callbacks."""
    definition = Car.stepped_action(name)
    definition.before(hook)
    definition.checksum(lambda car: "same work")

    @definition.step
    def _(car, step):
        car.honk()
        step.do("drive", 100)

    @definition.after()
    def _(car, action):
        car.change_location(f"after-callback saw {action.status}")

    return definition


async def test_before_changes_arguments_for_steps_callbacks_and_result(stepped_env):
    """S3.2, S3.10: arguments assigned in before are what steps, callbacks and result see."""
    Car = car_class()
    calls = []
    multiplied = Car.stepped_action("multiplied_drive")

    @multiplied.before
    def _(car, action, distance):
        calls.append(("before", list(action.arguments), action.status))
        action.arguments = [distance * 2]

    @multiplied.before
    def _(car, action, distance):
        calls.append(("second before", distance))
        action.arguments.append("scenic")

    @multiplied.step
    def _(car, step, distance, route):
        step.do("drive", distance)

    @multiplied.step
    def _(car, step, distance, route):
        car.change_location(f"{route} {distance}")

    @multiplied.succeeded
    def _(car, action, distance, route):
        calls.append(("succeeded", distance, route))

    car = stepped_env.create(Car, id=1)
    result = await stepped.run(car, "multiplied_drive", 5)

    assert result.status == "succeeded"
    assert result.arguments == [10, "scenic"]
    assert (await stepped.action_handle(result.id).describe()).arguments == [10, "scenic"]
    assert calls == [
        ("before", [5], "pending"),
        ("second before", 10),
        ("succeeded", 10, "scenic"),
    ]
    reloaded = stepped_env.reload(car)
    assert (reloaded.mileage, reloaded.location) == (10, "scenic 10")


async def test_cancel_in_before_runs_nothing_and_joins_no_lane(stepped_env):
    """S3.2, S3.9: cancel() in before → cancelled; no step, lane, achievement change or callback."""
    Car = car_class()
    _ending_early(Car, "cancelled_drive", lambda car, action: action.cancel())
    car = stepped_env.create(Car, id=1)
    with stepped_env.session() as session, session.begin():
        grant(session, "Car/1/cancelled_drive", "earlier work")

    result = await stepped.run(car, "cancelled_drive")

    assert result.status == "cancelled"
    assert result.steps == ()
    assert result.started_at is None and result.completed_at is not None
    assert result.current_step_index is None
    assert result.after_callbacks_succeeded_count is None
    assert result.after_callbacks_failed_count is None
    reloaded = stepped_env.reload(car)
    assert (reloaded.honks, reloaded.mileage, reloaded.location) == (0, 0, None)
    await stepped_env.assert_action_not_started(car, "drive")
    assert _achievement(stepped_env, "Car/1/cancelled_drive") == "earlier work"
    assert not await _lane_exists(stepped_env, "Car/1/cancelled_drive")
    assert _claim_holder(stepped_env, "Car/1/cancelled_drive") is None
    # the probe can see a claim: an ordinary action holds its key while it performs
    parked = Car.stepped_action("parked")
    parked.step(lambda car, step: step.wait(timedelta(hours=1)))
    handle = await stepped.start(car, "parked")
    await until(handle, performing)
    assert _claim_holder(stepped_env, "Car/1/parked") == handle.id
    assert await handle.cancel() is True  # (an hour's wait: on the dev server too)
    assert (await handle.result()).status == "cancelled"
    assert _claim_holder(stepped_env, "Car/1/parked") is None


async def test_complete_in_before_succeeds_without_steps(stepped_env):
    """S3.2: complete() in before → succeeded; no step, lane, achievement change or callback."""
    Car = car_class()
    _ending_early(Car, "complete_early", lambda car, action: action.complete())
    car = stepped_env.create(Car, id=1)

    result = await stepped.run(car, "complete_early")

    assert result.status == "succeeded"
    assert result.error is None
    assert result.steps == () and result.started_at is None
    assert result.after_callbacks_succeeded_count is None
    reloaded = stepped_env.reload(car)
    assert (reloaded.honks, reloaded.mileage, reloaded.location) == (0, 0, None)
    assert _achievement(stepped_env, "Car/1/complete_early") is None
    assert not await _lane_exists(stepped_env, "Car/1/complete_early")


async def test_handled_exception_in_before_fails_with_the_error(stepped_env):
    """S3.2, S8.1: a handled exception in before → failed, error kept; nothing else runs."""
    Car = car_class()

    def refuse(car, action, miles):
        car.honk()  # rolled back with the before transaction (S1.4)
        raise ValueError(f"will not drive {miles} miles")

    _ending_early(Car, "breakdown", refuse)
    car = stepped_env.create(Car, id=1)

    result = await stepped.run(car, "breakdown", 9)

    assert result.status == "failed"
    assert result.error is not None and result.error.type == "ValueError"
    assert "will not drive 9 miles" in result.error.message
    described = await stepped.action_handle(result.id).describe()
    assert described.status == "failed" and described.error == result.error
    assert result.steps == () and result.started_at is None
    assert result.after_callbacks_succeeded_count is None
    reloaded = stepped_env.reload(car)
    assert (reloaded.honks, reloaded.mileage, reloaded.location) == (0, 0, None)
    assert not await _lane_exists(stepped_env, "Car/1/breakdown")


def _trip_calling(Car, child: str) -> None:
    trip = Car.stepped_action("trip")

    @trip.step
    def _(car, step):
        step.do("honk")
        step.do(child)

    trip.step(lambda car, step: car.drive(1))


async def _child(result, name: str):
    for action_id in result.steps[0].actions:
        state = await stepped.action_handle(action_id).describe()
        if state.name == name:
            return state
    raise AssertionError(f"no child {name} in {result.steps[0].actions}")


async def test_child_cancelled_in_before_fails_the_parent_step(stepped_env):
    """S3.2, S3.14: a child whose before cancels concludes unsuccessfully: the parent fails."""
    Car = car_class()
    _ending_early(Car, "cancelled_drive", lambda car, action: action.cancel())
    _trip_calling(Car, "cancelled_drive")
    car = stepped_env.create(Car, id=1)

    result = await stepped.run(car, "trip")

    assert result.status == "failed"
    assert len(result.steps) == 1
    step = result.steps[0]
    assert step.status == "failed"
    assert (step.pending_actions_count, step.unsuccessful_actions_count) == (0, 1)
    child = await _child(result, "cancelled_drive")
    assert child.status == "cancelled" and not child.root and child.steps == ()
    assert (await _child(result, "honk")).status == "succeeded"
    reloaded = stepped_env.reload(car)
    assert (reloaded.honks, reloaded.mileage, reloaded.location) == (1, 0, None)


async def test_child_completed_in_before_lets_the_parent_succeed(stepped_env):
    """S3.2: a child whose before completes concludes successfully: the parent step succeeds."""
    Car = car_class()
    _ending_early(Car, "complete_early", lambda car, action: action.complete())
    _trip_calling(Car, "complete_early")
    car = stepped_env.create(Car, id=1)

    result = await stepped.run(car, "trip")

    assert result.status == "succeeded"
    assert [s.status for s in result.steps] == ["succeeded", "succeeded"]
    assert (result.steps[0].pending_actions_count, result.steps[0].unsuccessful_actions_count) == (
        0,
        0,
    )
    child = await _child(result, "complete_early")
    assert child.status == "succeeded" and child.steps == ()
    reloaded = stepped_env.reload(car)
    assert (reloaded.honks, reloaded.mileage, reloaded.location) == (1, 1, None)


async def test_child_failing_in_before_fails_the_parent(stepped_env):
    """S3.2, S8.1, S3.14: a child whose before raises fails, and so does the parent."""
    Car = car_class()

    def refuse(car, action):
        raise RuntimeError("no fuel")

    _ending_early(Car, "breakdown", refuse)
    _trip_calling(Car, "breakdown")
    car = stepped_env.create(Car, id=1)

    result = await stepped.run(car, "trip")

    assert result.status == "failed"
    assert len(result.steps) == 1 and result.steps[0].status == "failed"
    assert result.steps[0].unsuccessful_actions_count == 1
    child = await _child(result, "breakdown")
    assert child.status == "failed"
    assert child.error is not None and child.error.type == "RuntimeError"
    assert "no fuel" in child.error.message
    reloaded = stepped_env.reload(car)
    assert (reloaded.honks, reloaded.mileage) == (1, 0)
