"""S11.1: an action of any number of steps continues as new between steps, and every
run stays small — with its key, achievement, callbacks, timeout, cancel, outside
completion and its parent unchanged by it.

The cluster's limits are declared small (`configure(server_limits=…)`, S11.5):
history 500 events, so an action continues as new past 50, its stop (S11.4) at
250 never nears. Both test servers serve.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import timedelta

import pytest
from temporalio.api.enums.v1 import EventType

import stepped_temporal as stepped
from stepped_temporal import client as stepped_client
from tests.support import achievement, car_class, performing, until

LIMITS = stepped.ServerLimits(history_events=500, pending_operations=100)
#: where a run continues as new, and a step's worth of events it may pass it by
CONTINUE, STEP = 50, 30


async def runs_of(env, workflow_id: str) -> list[int]:
    """The event counts of each run of `workflow_id`, first run first."""
    client, run_id, counts = env.client, None, []
    while True:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        counts.append(len(history.events))
        started = history.events[0].workflow_execution_started_event_attributes
        if not started.continued_execution_run_id:
            return counts[::-1]
        run_id = started.continued_execution_run_id


def _long(Car, name: str, steps: int, **options):
    """`name`: `steps` steps, each driving a mile; every fifth waits a moment too (a
    wait takes about a second on the dev server)."""
    action = Car.stepped_action(name, **options)
    for number in range(steps):

        @action.step
        def _(car, step, *arguments, number=number):
            car.drive(1)
            if number % 5 == 0:
                step.wait(0.1)

    return action


async def test_a_long_action_continues_as_new_and_keeps_its_key_and_achievement(stepped_env):
    """60 steps (about 400 events): several runs, none much past 50 events; every step
    ran once and is listed; its lane let the next action perform only after it; its
    checksum was achieved and its callback ran once."""
    stepped.configure(server_limits=LIMITS)
    Car = car_class()
    calls: list[str] = []
    tour = _long(Car, "tour", 60)
    tour.checksum(lambda car: "v1")
    tour.concurrency_key(lambda car: "road")
    tour.checksum_key(lambda car: "tour")
    tour.succeeded(lambda car, action: calls.append(action.status))
    honk = Car.stepped_action("honk_after")
    honk.concurrency_key(lambda car: "road")
    honk.step(lambda car, step: car.honk())
    car = stepped_env.create(Car, id=1)

    handle = await stepped.start(car, "tour")
    await until(handle, performing, seconds=30)
    after = await stepped.start(car, "honk_after")  # waits in the lane behind it
    result = await handle.result()

    assert result.status == "succeeded", result.error
    assert [s.index for s in result.steps] == list(range(60))
    assert {s.status for s in result.steps} == {"succeeded"}
    assert result.current_step_index == 59
    assert stepped_env.reload(car).mileage == 60  # each step once
    assert calls == ["succeeded"]
    assert achievement(stepped_env, "tour") is not None  # granted as it ended (S3.9)
    counts = await runs_of(stepped_env, handle.id)
    print(f"runs of a 60-step action: {counts}")
    assert len(counts) >= 5, counts
    assert max(counts) < CONTINUE + STEP, counts
    assert (await after.result()).status == "succeeded"
    assert stepped_env.reload(car).honks == 1
    state = await handle.describe()  # the last run answers
    assert state.status == "succeeded" and len(state.steps) == 60


async def test_a_parent_waits_for_a_child_across_its_runs(stepped_env):
    """A step's child that continues as new concludes once, at its last run's end."""
    stepped.configure(server_limits=LIMITS)
    Car = car_class()
    _long(Car, "tour", 40)
    trip = Car.stepped_action("trip")
    trip.step(lambda car, step: step.do("tour"))
    trip.step(lambda car, step: car.honk())
    car = stepped_env.create(Car, id=1)

    result = await stepped.run(car, "trip")

    assert result.status == "succeeded", result.error
    (child,) = result.steps[0].actions
    assert len(await runs_of(stepped_env, child)) >= 3
    reloaded = stepped_env.reload(car)
    assert (reloaded.mileage, reloaded.honks) == (40, 1)


async def test_a_timeout_counts_from_when_it_began_performing(stepped_env):
    """S7.1 across runs: 30 steps of a second each under a 10-second timeout end
    timed_out after about ten of them, whichever run holds it then."""
    stepped.configure(server_limits=LIMITS)
    Car = car_class()
    slow = Car.stepped_action("slow", timeout=timedelta(seconds=10))
    for _ in range(30):
        slow.step(lambda car, step: (car.drive(1), step.wait(1)))
    car = stepped_env.create(Car, id=1)

    result = await stepped.run(car, "slow")

    assert result.status == "timed_out"
    assert 5 <= stepped_env.reload(car).mileage <= 12
    assert len(await runs_of(stepped_env, result.id)) >= 2


async def test_cancel_and_outside_completion_reach_a_later_run(stepped_env):
    """S4.6 and S6.1 after continuing as new: an outbound action completed from
    outside once its 30 steps ran; a long one cancelled in its third run or later."""
    stepped.configure(server_limits=LIMITS)
    Car = car_class()
    _long(Car, "deliver", 30, outbound=True)
    stroll = Car.stepped_action("stroll")
    for number in range(200):
        stroll.step(lambda car, step, n=number: (car.drive(1), n % 10 or step.wait(0.5)))
    one, two = stepped_env.create(Car, id=1), stepped_env.create(Car, id=2)

    deliver = await stepped.start(one, "deliver")
    await until(
        deliver,
        lambda s: s.current_step_index == 29 and s.steps[-1].status != "performing",
        seconds=60,
    )
    assert len(await runs_of(stepped_env, deliver.id)) >= 3
    while not await stepped.complete(one, "deliver"):
        await asyncio.sleep(0.05)
    assert (await deliver.result()).status == "succeeded"

    walk = await stepped.start(two, "stroll")
    while len(await runs_of(stepped_env, walk.id)) < 3:
        await asyncio.sleep(0.1)
    assert await walk.cancel() is True
    result = await walk.result()
    assert result.status == "cancelled"
    assert stepped_env.reload(two).mileage < 200


@pytest.mark.parametrize("revision", [4], ids=["revision-4"])
async def test_inputs_of_an_older_release_never_continue(stepped_env, monkeypatch, revision):
    """An action started as the release before this one starts it stays one run."""
    stepped.configure(server_limits=LIMITS)
    monkeypatch.setattr(stepped_client, "REVISION", revision)
    Car = car_class()
    _long(Car, "tour", 30)
    car = stepped_env.create(Car, id=1)

    result = await stepped.run(car, "tour")

    assert result.status == "succeeded"
    (count,) = await runs_of(stepped_env, result.id)
    assert count > CONTINUE + STEP


async def test_continuing_as_new_is_recorded_where_the_server_sees_it(stepped_env):
    """The run ends with Temporal's own continue-as-new event, its successor's input
    carrying the step to begin with (what the Web UI shows)."""
    stepped.configure(server_limits=LIMITS)
    Car = car_class()
    _long(Car, "tour", 20)
    result = await stepped.run(stepped_env.create(Car, id=1), "tour")
    handle = stepped_env.client.get_workflow_handle(result.id)
    history = await handle.fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    previous = await stepped_env.client.get_workflow_handle(
        result.id, run_id=started.continued_execution_run_id
    ).fetch_history()
    last = previous.events[-1]
    assert last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    assert b'"next_step"' in started.input.payloads[0].data


async def test_a_long_action_shows_its_first_and_latest_steps_and_counts_the_rest(
    stepped_env,
):
    """S11.2 for steps: 150 steps, the last fanning out to 120 children — the result
    lists steps 0-49 and 100-149 and counts 50 left out; the last step still lists
    all 120 children through `step_actions` (it may have continued as new inside
    it: each run holding part of it is asked); each run's input (what continuing
    as new carries) stays small. (History 2,000: a run continues past 200 events.)"""
    stepped.configure(server_limits=replace(LIMITS, history_events=2_000))
    Car = car_class()
    many = Car.stepped_action("many")
    for _ in range(149):
        many.step(lambda car, step, cars: car.drive(1))
    many.step(lambda car, step, cars: step.on(cars, "honk"))
    boss, *cars = (stepped_env.create(Car, id=n) for n in range(121))

    handle = await stepped.start(boss, "many", cars)
    result = await handle.result()

    assert result.status == "succeeded", result.error
    assert (result.steps_count, len(result.steps), result.steps_left_out) == (150, 100, 50)
    assert [s.index for s in result.steps] == [*range(50), *range(100, 150)]
    assert result.step(75) is None and result.step(149) is not None
    assert result.step(149).actions_count == 120  # type: ignore[union-attr]
    assert len([a async for a in handle.step_actions(149)]) == 120
    assert stepped_env.reload(boss).mileage == 149
    assert {stepped_env.reload(car).honks for car in cars} == {1}
    carried = []  # the steps each run's input carried, latest run first
    client, run_id = stepped_env.client, None
    while True:
        history = await client.get_workflow_handle(result.id, run_id=run_id).fetch_history()
        started = history.events[0].workflow_execution_started_event_attributes
        resume = json.loads(started.input.payloads[0].data).get("resume")
        if resume is None:
            break
        carried.append(len(resume["data"]["steps"]))
        run_id = started.continued_execution_run_id
    assert len(carried) >= 3 and max(carried) == 100, carried
