"""Rolling upgrades (issue 27, S10.3): a worker handed work of a newer release leaves
it to a newer worker — it fails the workflow *task*, never the workflow, and says
why in its log — and the newer worker then runs it to the end.

Old and new workers poll one task queue during a rolling upgrade, so any worker
may get any task. An action or lane whose input asks for a revision the worker
does not know (`ActionInput.revision`, `LaneState.revision`) must not run the
old way (versioning.py). Here one worker is the "old" one; the "newer" one is the
same code told it knows one revision more. Runs on Temporal's own
`WorkflowEnvironment`, on the server `--stepped-server` chose.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict
from datetime import timedelta

import pytest
import pytest_asyncio
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

import stepped_temporal as stepped
from stepped_temporal import config, lanes, workflows
from stepped_temporal.lane_messages import LANE_REVISION, LaneState
from stepped_temporal.messages import REVISION, ActionData, ActionInput
from stepped_temporal.wire import decode, encode
from tests.support import car_class
from tests.test_user_environment import create, reload, user_environment


@pytest_asyncio.fixture
async def temporal(tmp_path) -> AsyncIterator[WorkflowEnvironment]:
    """Temporal's own environment and stepped configured on it, no worker yet."""
    async with user_environment(tmp_path, lane_idle=timedelta(seconds=0)) as env:
        yield env


def _drive(miles: int, revision: int) -> ActionInput:
    """A raw input for `Car(1).drive(miles)`, as a starter of `revision` writes it."""
    return ActionInput(
        action_id=f"Car/1/drive/{uuid.uuid4().hex[:12]}",
        actor_type="Car",
        actor_id=1,
        name="drive",
        arguments=[miles],
        task_queue=config.settings().task_queue,
        revision=revision,
    )


async def refused_task(client: Client, workflow_id: str, seconds: float = 20.0) -> str:
    """The message of the first failed workflow task of `workflow_id` (waits for it)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        handle = client.get_workflow_handle(workflow_id)
        async for event in handle.fetch_history_events():
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                return str(event.workflow_task_failed_event_attributes.failure.message)
        await asyncio.sleep(0.1)
    raise AssertionError(f"{workflow_id}: no workflow task failed within {seconds}s")


async def test_an_action_of_a_newer_revision_waits_for_a_newer_worker(
    temporal, monkeypatch, caplog
):
    """An action whose input has revision REVISION+1: the old worker fails its task
    (the workflow keeps running, the log says why, nothing runs); once a worker that
    knows that revision polls, the action runs to its end as usual."""
    Car = car_class()
    car = create(Car, id=1)
    future = _drive(7, REVISION + 1)
    action_id, task_queue = future.action_id, future.task_queue
    client = temporal.client
    caplog.set_level(logging.ERROR, logger="stepped_temporal")
    async with stepped.create_worker():
        handle = await client.start_workflow(
            "SteppedAction", encode(future), id=action_id, task_queue=task_queue
        )
        message = await refused_task(client, action_id)
        assert f"revision {REVISION + 1}" in message and "newer worker" in message, message
        assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    logged = [r.getMessage() for r in caplog.records]
    assert any("newer worker" in line and action_id in line for line in logged), logged
    assert reload(car).mileage == 0  # nothing ran

    monkeypatch.setattr(workflows, "REVISION", REVISION + 1)  # the upgraded worker
    async with stepped.create_worker():
        result = decode(ActionData, await asyncio.wait_for(handle.result(), 60))
    assert result.status == "succeeded"
    assert reload(car).mileage == 7


async def test_a_lane_of_a_newer_revision_waits_for_a_newer_worker(temporal, monkeypatch):
    """The same for a lane workflow whose state has revision LANE_REVISION+1."""
    lane_id = f"stepped-lane/future-{uuid.uuid4().hex[:8]}"
    state = LaneState(key=lane_id, idle_seconds=0, revision=LANE_REVISION + 1)
    client = temporal.client
    task_queue = config.settings().task_queue
    async with stepped.create_worker():
        handle = await client.start_workflow(
            lanes.LANE_WORKFLOW, asdict(state), id=lane_id, task_queue=task_queue
        )
        message = await refused_task(client, lane_id)
        assert f"revision {LANE_REVISION + 1}" in message and "newer worker" in message, message
        assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING

    monkeypatch.setattr(lanes, "LANE_REVISION", LANE_REVISION + 1)
    async with stepped.create_worker():
        await asyncio.wait_for(handle.result(), 60)  # idle: it ends
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED


@pytest.mark.parametrize("revision", [0, 1, REVISION])
async def test_every_known_revision_runs(temporal, revision):
    """Revisions up to the worker's own run as they always did (no refusal)."""
    Car = car_class()
    car = create(Car, id=1)
    known = _drive(3, revision)
    action_id, task_queue = known.action_id, known.task_queue
    async with stepped.create_worker():
        handle = await temporal.client.start_workflow(
            "SteppedAction", encode(known), id=action_id, task_queue=task_queue
        )
        result = decode(ActionData, await asyncio.wait_for(handle.result(), 60))
    assert result.status == "succeeded" and reload(car).mileage == 3
