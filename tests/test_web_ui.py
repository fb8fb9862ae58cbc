"""S9.3: actions are findable in the Temporal Web UI — readable ids, a summary,
and search attributes for actor, action, status and concurrency key; S9.4: the
execution status lists exactly the unsuccessful actions as Failed.

Runs on the dev server: the time-skipping server has no visibility queries.
"""

from __future__ import annotations

import asyncio
import time

import stepped_temporal as stepped
from tests.support import car_class, listed


async def test_list_queries_by_actor_and_status_find_the_actions(stepped_dev_env):
    """S9.3: `SteppedActor="Car/7" AND SteppedStatus="failed"` finds what a user looks for."""
    env = stepped_dev_env
    Car = car_class()
    crash = Car.stepped_action("crash")
    crash.concurrency_key(lambda car: "garage")

    @crash.step
    def _(car, step):
        raise RuntimeError("hit a wall")

    tour = Car.stepped_action("tour")
    tour.step(lambda car, step, other: step.on(other, "drive", 3))
    seven, eight = env.create(Car, id=7), env.create(Car, id=8)

    crashed = await stepped.run(seven, "crash")
    toured = await stepped.run(seven, "tour", eight)
    drove = await stepped.run(seven, "drive", 5)
    assert (crashed.status, toured.status, drove.status) == ("failed", "succeeded", "succeeded")
    child_id = toured.steps[0].actions[0]

    assert crashed.id.startswith("Car/7/crash/") and child_id.startswith("Car/8/drive/")
    failed = await listed(env.client, 'SteppedActor="Car/7" AND SteppedStatus="failed"', 1)
    assert failed == [crashed.id]
    by_actor = await listed(env.client, 'SteppedActor="Car/7"', 3)
    assert by_actor == sorted([crashed.id, toured.id, drove.id])
    nested = await listed(env.client, 'SteppedActor="Car/8" AND SteppedAction="drive"', 1)
    assert nested == [child_id]
    in_garage = await listed(env.client, 'SteppedConcurrencyKey="garage"', 1)
    assert in_garage == [crashed.id]
    # S9.4: Temporal's own status agrees, so the UI's status column and filter do too
    failed_in_ui = await listed(env.client, 'SteppedActor="Car/7" AND ExecutionStatus="Failed"', 1)
    assert failed_in_ui == [crashed.id]
    completed = await listed(env.client, 'SteppedActor="Car/7" AND ExecutionStatus="Completed"', 2)
    assert completed == sorted([toured.id, drove.id])

    description = await env.client.get_workflow_handle(toured.id).describe()
    assert await description.static_summary() == "Car/7 tour(Car/8)"
    child = await env.client.get_workflow_handle(child_id).describe()
    assert await child.static_summary() == "Car/8 drive(3)"
    assert child.parent_id == toured.id


async def _upserts(client, workflow_id: str) -> list[dict[str, bytes]]:
    """The search-attribute upserts in a workflow's history, in order."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return [
        {
            name: payload.data
            for name, payload in event.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields.items()  # noqa: E501
        }
        for event in history.events
        if event.HasField("upsert_workflow_search_attributes_event_attributes")
    ]


async def _attributes(client, workflow_id: str) -> dict[str, str]:
    description = await client.get_workflow_handle(workflow_id).describe()
    return {pair.key.name: pair.value for pair in description.typed_search_attributes}


async def test_status_and_key_follow_the_action_in_as_few_upserts_as_it_allows(
    stepped_dev_env,
):
    """S9.3: SteppedStatus says performing while a step runs and the final status
    from the moment the action finishes (also while its after-callbacks run); a
    one-step action whose step ran in prepare sets key and status in ONE upsert,
    as a hand-written workflow would — and it is listed by both."""
    env = stepped_dev_env
    Car = car_class()
    step_gate, callback_gate = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()

    def wait_for(gate: asyncio.Event) -> None:
        asyncio.run_coroutine_threadsafe(asyncio.wait_for(gate.wait(), 20), loop).result()

    wash = Car.stepped_action("wash", outbound=True)  # outbound: its step runs as an activity
    wash.concurrency_key(lambda car: "wash-bay")
    wash.step(lambda car, step: wait_for(step_gate))
    wash.after("succeeded")(lambda car, action: wait_for(callback_gate))
    seven = env.create(Car, id=7)

    handle = await stepped.start(seven, "wash")
    deadline = time.monotonic() + 20
    while (await _attributes(env.client, handle.id)).get("SteppedStatus") != "performing":
        assert time.monotonic() < deadline, await _attributes(env.client, handle.id)
        await asyncio.sleep(0.05)
    assert (await _attributes(env.client, handle.id))["SteppedConcurrencyKey"] == "wash-bay"
    step_gate.set()
    while (await handle.describe()).steps[0].status != "succeeded":
        await asyncio.sleep(0.05)
    assert await stepped.complete(seven, "wash") is True
    while (await handle.describe()).status != "succeeded":
        await asyncio.sleep(0.05)
    assert (await _attributes(env.client, handle.id))["SteppedStatus"] == "succeeded"
    assert (await env.client.get_workflow_handle(handle.id).describe()).status.name == "RUNNING"
    callback_gate.set()
    assert (await handle.result()).status == "succeeded"
    assert await _upserts(env.client, handle.id) == [
        {"SteppedConcurrencyKey": b'"wash-bay"', "SteppedStatus": b'"performing"'},
        {"SteppedStatus": b'"succeeded"'},
    ]

    drove = await stepped.run(seven, "drive", 5)  # one step, run inside prepare
    assert drove.status == "succeeded"
    assert await _upserts(env.client, drove.id) == [
        {"SteppedConcurrencyKey": b'"Car/7/drive"', "SteppedStatus": b'"succeeded"'}
    ]
    found = await listed(
        env.client, 'SteppedConcurrencyKey="Car/7/drive" AND SteppedStatus="succeeded"', 1
    )
    assert found == [drove.id]


async def test_a_namespace_without_stepped_lane_still_gets_lanes(tmp_path, caplog):
    """An upgrade: the namespace registered the four older attributes only, and the
    app says `search_attributes=True`. Actions keep theirs; a lane starts without
    `SteppedLane` (the worker says how to register it) instead of failing its joins."""
    from temporalio.testing import WorkflowEnvironment

    from stepped_temporal import binaries, search_attributes
    from tests.support import configured, garage, joined, performing, until
    from tests.test_user_environment import create

    older = tuple(key for key in search_attributes.ALL if key.name != "SteppedLane")
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=binaries.dev_server_path(),
        dev_server_log_level="error",
        search_attributes=older,
    )
    try:
        async with configured(env, tmp_path, search_attributes=True):
            Car = car_class()
            garage(Car)
            car = create(Car, id=1)
            holder = await stepped.start(car, "hold")
            await until(holder, performing)
            visiting = await stepped.start(car, "visit", "Oslo")
            await until(visiting, joined)
            assert await stepped.complete(car, "hold") is True
            assert (await visiting.result()).status == "succeeded"
            assert "SteppedLane" not in await _attributes(env.client, "stepped-lane/garage")
            assert (await _attributes(env.client, visiting.id))["SteppedActor"] == "Car/1"
        assert "register it: temporal operator search-attribute create --name SteppedLane" in (
            caplog.text
        )
    finally:
        await env.shutdown()


async def test_an_action_that_continued_as_new_is_found_by_its_attributes(stepped_dev_env):
    """S9.3 across continue-as-new (S11.1): the last run carries the actor, the action,
    the key and the final status, and is listed by them exactly once; the first run
    keeps the summary line (the SDK cannot give a continued run one)."""
    env = stepped_dev_env
    stepped.configure(server_limits=stepped.ServerLimits(history_events=500))
    Car = car_class()
    tour = Car.stepped_action("tour")
    tour.concurrency_key(lambda car: "ring-road")
    for _ in range(40):
        tour.step(lambda car, step: car.drive(1))
    result = await stepped.run(env.create(Car, id=9), "tour")
    assert result.status == "succeeded"

    runs = await listed(env.client, f'WorkflowId="{result.id}"', 3)
    assert len(runs) >= 3  # one row per run, as the Web UI lists them
    found = await listed(
        env.client,
        'SteppedActor="Car/9" AND SteppedAction="tour" AND SteppedStatus="succeeded" '
        'AND SteppedConcurrencyKey="ring-road"',
        1,
    )
    assert found == [result.id]
    latest = await env.client.get_workflow_handle(result.id).describe()
    first_run = latest.raw_description.workflow_execution_info.first_run_id
    first = await env.client.get_workflow_handle(result.id, run_id=first_run).describe()
    assert await first.static_summary() == "Car/9 tour()"
