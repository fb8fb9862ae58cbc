"""S11.4: an action nearing its cluster's history limit ends `failed` with an error
naming the limit; its workflow is never terminated, `result()` does not raise, its
key goes to the next action and its after-callbacks run.

The limits are declared (`configure(server_limits=…)`, S11.5) far below the
server's own, so the action stops at four fifths of the declared limit while the
server would have let it go on: both test servers serve, and the control runs —
the same work under the stop, and the same work started as an older release
would start it — finish as they always did.
"""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowExecutionStatus

import stepped_temporal as stepped
from stepped_temporal import client as stepped_client
from tests.support import car_class

#: the declared limits: an action opens at most 50 children at once and stops at 250
#: events, keeping 250 to finish in (the 50 children still open end in 100 of them)
LIMIT = 500
LIMITS = stepped.ServerLimits(history_events=LIMIT, pending_operations=100)


def _fleet(Car, calls: list[str]) -> None:
    """`fleet` honks every car in one step (about 4.3 events each), on the key "fleet"."""
    fleet = Car.stepped_action("fleet")
    fleet.concurrency_key(lambda car, cars: "fleet")
    fleet.step(lambda car, step, cars: step.on(cars, "honk"))
    fleet.failed(lambda car, action, cars: calls.append(action.status))
    fleet.succeeded(lambda car, action, cars: calls.append("succeeded"))


async def _history_of(env, workflow_id: str):
    handle = env.client.get_workflow_handle(workflow_id)
    return (await handle.describe()).status, len((await handle.fetch_history()).events)


async def test_a_step_too_wide_for_the_history_fails_its_action(stepped_env, monkeypatch):
    """150 children need about 650 events: the action stops at 250 of the declared 500,
    ends failed naming the limit, runs its `failed` callback and hands its key on.
    (Started as revision 5 started it: from revision 6 a wide step continues as new
    inside it instead, tests/test_wide_steps.py — at these limits, where the child
    window is a tenth of the history, its drain may still reach the stop on the
    time-skipping server, and not on the dev server.)"""
    stepped.configure(server_limits=LIMITS)
    monkeypatch.setattr(stepped_client, "REVISION", 5)
    Car = car_class()
    calls: list[str] = []
    _fleet(Car, calls)
    boss, *cars = (stepped_env.create(Car, id=n) for n in range(0, 151))

    result = await stepped.run(boss, "fleet", cars)  # never raises (S9.4)

    assert result.status == "failed"
    assert result.error is not None and result.error.type == "HistoryLimitReached"
    message = result.error.message
    assert result.id in message and "250 events" in message, message
    assert "ServerLimits" in message, message
    assert calls == ["failed"]  # its callbacks ran (S3.9)
    status, events = await _history_of(stepped_env, result.id)
    assert status == WorkflowExecutionStatus.FAILED  # failed, never terminated (S9.4)
    print(f"stopped at {events} events")
    # (it may stop below 250: each child still open counts two events ahead)
    assert events < LIMIT, events
    # its key was given back: the next action on it performs at once
    small = await stepped.run(boss, "fleet", cars[:3])
    assert small.status == "succeeded"
    assert calls[-1] == "succeeded"


async def test_a_step_of_too_many_waits_fails_at_its_stop(stepped_env):
    """Waits add events too (a timer started and fired each): 200 of them in one step
    stop the action mid-step, failed, without running the step after. (Many steps
    do not: the action continues as new between them, test_long_actions.py.)"""
    stepped.configure(server_limits=LIMITS)
    Car = car_class()
    pause = Car.stepped_action("pause")
    pause.step(lambda car, step: [step.wait(1 + n / 100) for n in range(200)])
    pause.step(lambda car, step: car.drive(1))
    car = stepped_env.create(Car, id=1)
    result = await stepped.run(car, "pause")

    assert result.status == "failed"
    assert result.error is not None and result.error.type == "HistoryLimitReached"
    assert stepped_env.reload(car).mileage == 0  # the second step never ran
    assert result.current_step_index == 0
    status, events = await _history_of(stepped_env, result.id)
    assert status == WorkflowExecutionStatus.FAILED and events < LIMIT, (status, events)


@pytest.mark.parametrize("revision", [None, 3], ids=["this-release", "revision-3"])
async def test_work_under_the_stop_or_of_an_older_release_goes_on(
    stepped_env, monkeypatch, revision
):
    """The controls: 30 children stay under the stop and succeed; 150 children started
    as a release before the stop starts them (revision 3) succeed too — their
    histories recorded no stop, so they never take one (the server's real limit is far)."""
    stepped.configure(server_limits=LIMITS)
    if revision is not None:
        monkeypatch.setattr(stepped_client, "REVISION", revision)
    Car = car_class()
    calls: list[str] = []
    _fleet(Car, calls)
    boss, *cars = (stepped_env.create(Car, id=n) for n in range(0, 151))

    result = await stepped.run(boss, "fleet", cars[:30] if revision is None else cars)

    assert result.status == "succeeded", result.error
    assert calls == ["succeeded"]
    if revision is not None:
        _, events = await _history_of(stepped_env, result.id)
        assert events > LIMIT, events  # past where this release would have stopped
