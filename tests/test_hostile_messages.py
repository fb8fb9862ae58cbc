"""Issue 19 (part 3): wrong and hostile messages sent straight through the Temporal
client to action and lane workflows — wrong types, nulls, unknown kinds, forged
and non-string ids, unknown names, duplicates — never fail or stick a workflow
task; the `complete` update's validator rejects bad statuses with a clear error;
and the lane and its actions go on correctly afterwards.

A well-formed forged join is indistinguishable from a real one (anyone who may
signal in the namespace may also terminate): it is taken as a candidate, and
when its grant finds no workflow the lane frees itself — nothing waits forever.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.service import RPCError

import stepped_temporal as stepped
from tests.support import car_class, garage, joined, performing, until

STUCK = (EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED, EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT)
JUNK: tuple[Any, ...] = (None, 1, "x", {}, [1, 2], {"kind": "explode"}, {"dependency_id": 5})
LANE_JUNK: tuple[Any, ...] = (
    None,
    1,
    "x",
    {},
    {"action_id": 5},
    {"action_id": None},
    {"action_id": "forged", "ancestry": "not a list"},
    {"action_id": "forged", "status": 3, "successful": "yes"},
    {"action_id": "forged"},
)

#: deadlock probes (S4.9) that no Stepped workflow sends: dropped unread
PROBE_JUNK: tuple[Any, ...] = (
    {"origin": "x"},
    {"origin": 5, "path": "no"},
    {"origin": "x", "path": [{"action_id": "y", "kind": "pending", "to": "z", "key": "k"}]},
    {"origin": "x", "path": [{"action_id": "x", "kind": "sideways", "to": "z"}]},
    {"origin": "x", "path": [{"action_id": "x", "kind": "pending", "to": "x"}]},
    {"origin": "x", "path": [{"action_id": "x", "kind": "waits", "to": "x"}], "at": 3},
    {"origin": "x", "path": [{"action_id": "x", "kind": "waits", "to": "y"}], "phase": "confirm"},
    {"origin": "x", "path": [{"action_id": "x", "kind": "waits", "to": "x"}], "phase": "boom"},
    {"origin": "x", "path": [{"action_id": "x", "kind": "waits", "to": "x"}] * 100},
)


def _forged_probes(pending_id: str, holder_id: str) -> list[dict]:
    """Well-formed probes about real actions whose edges do not hold: a seek the
    lane passes to the holder (which waits on nothing), a confirm and a break
    naming a performer the lane does not have, a break naming the wrong hop."""
    fake = [
        {"action_id": pending_id, "kind": "pending", "to": "nobody", "key": "garage"},
        {"action_id": "nobody", "kind": "waits", "to": pending_id},
    ]
    real = [{**fake[0], "to": holder_id}, {**fake[1], "action_id": holder_id}]
    return [
        {"origin": "forged", "path": [{"action_id": "forged", "kind": "waits", "to": pending_id}]},
        {"origin": pending_id, "path": fake, "phase": "confirm"},
        {"origin": pending_id, "path": fake, "phase": "break"},
        # a real cycle's shape, but the break names a hop that is not its victim
        {"origin": pending_id, "path": real, "phase": "break", "at": 1},
    ]


async def _task_failures(client, workflow_id: str) -> int:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return sum(event.event_type in STUCK for event in history.events)


async def test_junk_signals_updates_and_queries_never_stick_a_workflow(stepped_env):
    env = stepped_env
    Car = car_class()
    garage(Car)
    car = env.create(Car, id=1)
    holder = await stepped.start(car, "hold")
    await until(holder, performing)
    pending = await stepped.start(car, "visit", "Oslo")
    await until(pending, joined)
    lane: WorkflowHandle = env.client.get_workflow_handle("stepped-lane/garage")
    actions = [env.client.get_workflow_handle(h.id) for h in (holder, pending)]
    tried = 0

    for handle in actions:
        # (not "cancel": it takes no argument, so any call of it is a real cancel)
        for name in ("verdict", "conclude", "joined", "forward", "probe", "unknown"):
            for junk in JUNK + PROBE_JUNK if name == "probe" else JUNK:
                await handle.signal(name, junk)
                await handle.signal(name, junk)  # and again: duplicates
                tried += 2
        for junk in (None, "x", "succeeded "):  # the validator's refusal, by name
            with pytest.raises((WorkflowUpdateFailedError, RPCError)) as refused:
                await handle.execute_update("complete", junk)
            if isinstance(refused.value, WorkflowUpdateFailedError):
                assert "invalid status" in str(refused.value.cause), refused.value.cause
            else:  # the time-skipping server reports a rejected update as not found
                assert env.default_server != "dev" and "not found" in str(refused.value)
            tried += 1
        # not even a str: refused before the validator (the time-skipping server
        # reports the dropped update as not found)
        with pytest.raises((WorkflowUpdateFailedError, RPCError)):
            await handle.execute_update("complete", 1)
        tried += 1
        for junk in (1, None):  # a stray argument is ignored: the state comes back
            answer = await handle.query("describe", junk)
            assert answer["id"] == handle.id, answer
            tried += 1
    for junk in (*JUNK, *PROBE_JUNK, *_forged_probes(pending.id, holder.id)):
        for handle in (lane, actions[0]):
            await handle.signal("probe", junk)
            tried += 1
    for name in ("join", "release", "withdraw", "unknown"):
        for junk in reversed(LANE_JUNK):  # reordered: the forged join last-but-first
            await lane.signal(name, junk)
            tried += 1
    print(f"hostile messages: {tried} cases tried on {env.default_server}")
    assert tried >= 150
    await asyncio.sleep(1)  # let every task that got them run

    # the lane and its actions go on: the holder completes, the lane frees itself
    # from the forged candidate, and a new action performs
    assert await stepped.complete(car, "hold") is True
    assert (await asyncio.wait_for(holder.result(), 30)).status == "succeeded"
    ended = await asyncio.wait_for(pending.result(), 30)
    assert ended.status.final and ended.status != "deadlocked"  # no forged probe deadlocks
    later = await asyncio.wait_for(stepped.run(car, "visit", "Paris"), 30)
    assert later.status == "succeeded"
    assert env.reload(car).location == "Paris"
    for workflow_id in (holder.id, pending.id, later.id, "stepped-lane/garage"):
        assert await _task_failures(env.client, workflow_id) == 0, workflow_id
