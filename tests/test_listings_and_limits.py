"""Listings over everything (S9.6 `performing_outbound`, S11.2 `step_actions` and
`lane_pending`) and the cluster's declared limits sizing what new runs record
(S11.5 `configure(server_limits=...)`, shapes.py)."""

from __future__ import annotations

import asyncio
import json

import pytest
from temporalio.api.enums.v1 import EventType

import stepped_temporal as stepped
from stepped_temporal.keys import lane_id
from stepped_temporal.shapes import CURRENT_ACTION_SHAPE, CURRENT_LANE_SHAPE
from tests.support import car_class, joined, performing, until


async def _input(env, workflow_id: str) -> dict:
    """The JSON input a workflow (its first run) was started with."""
    history = env.client.get_workflow_handle(workflow_id).fetch_history_events()
    async for event in history:
        assert event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED
        payload = event.workflow_execution_started_event_attributes.input.payloads[0]
        return json.loads(payload.data)
    raise AssertionError(f"{workflow_id} has no history")


def _outbound(Car, name: str) -> None:
    definition = Car.stepped_action(name, outbound=True)
    definition.step(lambda car, step: None)


async def test_performing_outbound_lists_what_performs_by_actor_and_name(stepped_env):
    Car = car_class()
    _outbound(Car, "approve")
    _outbound(Car, "inspect")
    one, two = stepped_env.create(Car, id=1), stepped_env.create(Car, id=2)
    handles = [
        await stepped.start(one, "approve"),
        await stepped.start(two, "approve"),
        await stepped.start(two, "inspect"),
    ]
    for handle in handles:
        await until(handle, performing)

    async def ids(*args, **kwargs) -> list[str]:
        return [state.id async for state in stepped.performing_outbound(*args, **kwargs)]

    approve_one, approve_two, inspect_two = (h.id for h in handles)
    assert await ids() == [approve_one, approve_two, inspect_two]
    assert await ids(name="approve") == [approve_one, approve_two]
    assert await ids(two) == [approve_two, inspect_two]
    assert await ids(two, name="inspect") == [inspect_two]
    assert await stepped.complete(two, "approve") is True
    assert (await handles[1].result()).status == "succeeded"
    assert await ids(name="approve") == [approve_one]  # ended: no longer listed
    states = [state async for state in stepped.performing_outbound(one)]
    assert [s.status for s in states] == ["performing"] and states[0].outbound


async def test_step_actions_and_lane_pending_iterate_in_order(stepped_env):
    Car = car_class()
    hold = Car.stepped_action("hold", outbound=True)
    hold.concurrency_key(lambda car: "garage")
    hold.step(lambda car, step: None)
    wash = Car.stepped_action("wash", lane="queue")
    wash.concurrency_key(lambda car: "garage")
    wash.step(lambda car, step: car.honk())
    Car.stepped_action("fleet").step(lambda car, step, cars: step.on(cars, "wash"))
    boss, *cars = (stepped_env.create(Car, id=n) for n in range(1, 5))
    holder = await stepped.start(boss, "hold")
    await until(holder, performing)
    parent = await stepped.start(boss, "fleet", cars)
    state = await until(parent, lambda s: s.steps and len(s.steps[0].actions) == 3)
    children = list(state.steps[0].actions)
    for child in children:
        await until(stepped.action_handle(child), joined)

    assert [a async for a in parent.step_actions(0)] == children
    assert [a async for a in parent.step_actions(5)] == []  # no such step (yet)
    assert [a async for a in stepped.lane_pending("garage")] == children
    assert [a async for a in stepped.lane_pending("nobody")] == []
    assert await stepped.complete(boss, "hold") is True
    assert (await parent.result()).status == "succeeded"


async def test_declared_limits_size_what_new_runs_record(stepped_env):
    """S11.5: with the cluster's pending operations at 100 and history at 5,000
    events, a root records a child window of 50, a stop at 4,000 events (S11.4), a
    continue-as-new past 500 and inside a step past 900 with the rest of the step
    (S11.1; its children inherit all four), and a lane
    run continues as new past 200 events with 10 signals under way — and 60
    children still all run."""
    stepped.configure(
        server_limits=stepped.ServerLimits(history_events=5_000, pending_operations=100)
    )
    Car = car_class()
    Car.stepped_action("fleet").step(lambda car, step, cars: step.on(cars, "honk"))
    hold = Car.stepped_action("hold", outbound=True)
    hold.concurrency_key(lambda car: "garage")
    hold.step(lambda car, step: None)
    boss, *cars = (stepped_env.create(Car, id=n) for n in range(1, 62))
    result = await stepped.run(boss, "fleet", cars)
    assert result.status == "succeeded"
    assert [stepped_env.reload(car).honks for car in cars] == [1] * 60
    shape = {"child_window": 50, "stop_events": 4000, "continue_events": 500, "step_events": 900}
    assert (await _input(stepped_env, result.id))["shape"] == shape
    child = await _input(stepped_env, result.steps[0].actions[0])
    assert child["shape"] == shape  # inherited

    first = await stepped.start(cars[0], "hold")
    await until(first, performing)  # it holds the key: the second joins the lane
    second = await stepped.start(cars[1], "hold")
    await until(second, joined)
    lane = await _input(stepped_env, lane_id("garage"))
    assert (lane["shape"]["history_limit"], lane["shape"]["window"]) == (200, 10)
    for car, handle in ((cars[0], first), (cars[1], second)):
        await until(handle, performing)
        while not await stepped.complete(car, "hold"):  # (recorded by its first unit)
            await asyncio.sleep(0.05)


def test_server_limits_are_temporals_defaults_and_refuse_nonsense():
    limits = stepped.ServerLimits()
    assert (limits.history_events, limits.pending_operations) == (51_200, 2_000)
    assert (limits.payload_bytes, limits.signals_per_run) == (2 * 1024 * 1024, 10_000)
    from stepped_temporal.shapes import action_shape, lane_shape

    assert action_shape(limits) == CURRENT_ACTION_SHAPE  # nothing travels by default
    assert lane_shape(limits) == CURRENT_LANE_SHAPE
    with pytest.raises(ValueError, match="pending_operations"):
        stepped.ServerLimits(pending_operations=0)
    with pytest.raises(TypeError, match="ServerLimits"):
        stepped.configure(server_limits={"history_events": 100})  # type: ignore[arg-type]


async def test_arguments_past_a_declared_payload_limit_are_refused_before_anything_starts(
    stepped_env,
):
    """S11.3: on a cluster whose payloads stop at 64 KiB, a start with 20 KB of arguments
    is refused, naming the limit and the size, and nothing starts; 10 KB travel (a
    quarter of the limit is theirs); a step asking for such a child fails its action."""
    stepped.configure(server_limits=stepped.ServerLimits(payload_bytes=64 * 1024))
    Car = car_class()
    Car.stepped_action("relay").step(lambda car, step, size: step.do("change_location", "x" * size))
    car = stepped_env.create(Car, id=1)

    with pytest.raises(stepped.ArgumentValueError) as refused:
        await stepped.start(car, "change_location", "x" * 20_000)
    message = str(refused.value)
    assert "Car/1/change_location" in message and "65,536" in message, message
    assert "20,004 bytes" in message and "16,384 bytes" in message, message
    assert stepped_env.started == []

    assert (await stepped.run(car, "change_location", "x" * 10_000)).status == "succeeded"
    failed = await stepped.run(car, "relay", 20_000)
    assert failed.status == "failed" and failed.error is not None
    assert "65,536" in failed.error.message and failed.steps[0].actions == ()


async def test_a_wide_step_shows_a_bounded_list_and_step_actions_lists_all(
    stepped_env, monkeypatch
):
    """S11.2: a step of 250 children: describe() and result() keep its counts exact and
    show the first 50 and the latest 50 ids, saying 150 are left out; step_actions(0)
    lists all 250 in call order, a page at a time; the test environment sees them all."""
    from stepped_temporal import client

    monkeypatch.setattr(client, "STEP_PAGE", 60)
    Car = car_class()
    Car.stepped_action("fleet").step(lambda car, step, cars: step.on(cars, "honk"))
    boss, *cars = (stepped_env.create(Car, id=n) for n in range(1, 252))
    handle = await stepped.start(boss, "fleet", cars)
    result = await handle.result()

    assert result.status == "succeeded"
    step = result.steps[0]
    assert (step.actions_count, step.actions_left_out, len(step.actions)) == (250, 150, 100)
    assert step.pending_actions_count == 0 and step.unsuccessful_actions_count == 0
    every = [action_id async for action_id in handle.step_actions(0)]
    assert [int(action_id.split("/")[1]) for action_id in every] == list(range(2, 252))
    assert step.actions == (*every[:50], *every[-50:])
    assert (await handle.describe()).steps[0] == step
    assert len(await stepped_env.actions()) == 251
