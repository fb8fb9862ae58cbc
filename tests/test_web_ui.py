"""S9.3: actions are findable in the Temporal Web UI — readable ids, a summary,
and search attributes for actor, action, status and concurrency key.

Runs on the dev server: the time-skipping server has no visibility queries.
"""

from __future__ import annotations

import asyncio
import time

import stepped_temporal as stepped
from tests.support import car_class


async def _listed(client, query: str, count: int) -> list[str]:
    """Ids the visibility store lists for `query`, once it lists `count` (it lags)."""
    deadline = time.monotonic() + 20
    while True:
        ids = sorted([w.id async for w in client.list_workflows(query)])
        if len(ids) >= count or time.monotonic() > deadline:
            return ids
        await asyncio.sleep(0.2)


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
    failed = await _listed(env.client, 'SteppedActor="Car/7" AND SteppedStatus="failed"', 1)
    assert failed == [crashed.id]
    by_actor = await _listed(env.client, 'SteppedActor="Car/7"', 3)
    assert by_actor == sorted([crashed.id, toured.id, drove.id])
    nested = await _listed(env.client, 'SteppedActor="Car/8" AND SteppedAction="drive"', 1)
    assert nested == [child_id]
    in_garage = await _listed(env.client, 'SteppedConcurrencyKey="garage"', 1)
    assert in_garage == [crashed.id]

    description = await env.client.get_workflow_handle(toured.id).describe()
    assert await description.static_summary() == "Car/7 tour(Car/8)"
    child = await env.client.get_workflow_handle(child_id).describe()
    assert await child.static_summary() == "Car/8 drive(3)"
    assert child.parent_id == toured.id
