"""What `describe()` says while a local prepare holds the action's workflow task (S9.2).

From `ActionInput.revision` 2, prepare — `before`, the keys, the claim and, for a
claimed action, its first step (preparing.py) — runs as a local activity, inside
the action's first workflow task: a one-step leaf costs the server no activity
task and no second workflow task (fan-out 200: 11 history events per leaf, 16
before, and a fifth less server CPU than a hand-written Temporal leaf).

The price: while a local activity runs, its workflow answers no query. Temporal
holds the query until the task ends — for a first step of seconds, that long
(the SDK heartbeats the task only every 80% of its timeout). So `describe()`
asks with a deadline (`QUERY_PATIENCE`). Past it, and when the history shows
the action still in its first workflow task with no command issued, the
workflow knows no more than its input: `in_prepare` says the same without it —
the action as it was started, pending — and, once the action holds a claim on
its key, performing its first step since the claim, with its keys (what a
regular prepare activity reports by heartbeat).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from .action_run import initial_data
from .config import read_session, settings
from .messages import ActionData, ActionInput, Prepared
from .store import claims, records
from .wire import decode

__all__ = ["QUERY_PATIENCE", "in_prepare", "query_timed_out"]

log = logging.getLogger("stepped_temporal")

#: How long `describe()` waits for the workflow's answer before it asks history.
#: Short: a wrong guess costs a history page and the query again, and what
#: `in_prepare` says is what the workflow would say (better: it knows of the claim).
QUERY_PATIENCE = timedelta(seconds=0.5)

#: the events of an action whose first workflow task has issued no command yet
_BEFORE_ANY_COMMAND = frozenset(
    {
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
        EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
        EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
        EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,  # the SDK's heartbeats of the task
        EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT,
        EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED,
    }
)
#: more events than this and it is not a prepare: ask the workflow again
_MAX_EVENTS = 300


def query_timed_out(error: RPCError) -> bool:
    """The query passed its deadline (the client's or the server's)."""
    return error.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED)


async def in_prepare(client: Client, action_id: str) -> ActionData | None:
    """The action's state while its local prepare runs; None when its workflow is past
    prepare (busy for another reason, or its worker is gone: ask it, and wait)."""
    started: HistoryEvent | None = None
    count = 0
    handle = client.get_workflow_handle(action_id)
    async for event in handle.fetch_history_events(rpc_timeout=settings().rpc_timeout):
        count += 1
        if event.event_type not in _BEFORE_ANY_COMMAND or count > _MAX_EVENTS:
            return None
        started = started or event
    if started is None:
        return None
    payloads = started.workflow_execution_started_event_attributes.input.payloads
    raw = await client.data_converter.decode(payloads, [dict])
    input = decode(ActionInput, raw[0])
    if input.revision < 2 or input.resume is not None:
        # a regular prepare activity, or a run that continued as new (it prepared
        # long ago): the workflow is busy otherwise
        return None
    data = initial_data(input)
    run_id = started.workflow_execution_started_event_attributes.original_execution_run_id
    try:
        prepared = await asyncio.to_thread(_claimed, input, run_id)
    except Exception as error:  # no database here: what the start said is all we know
        log.debug("describe %s: no claim to read: %r", action_id, error)
        return data
    return data.performing_in_prepare(prepared) if prepared else data


def _claimed(input: ActionInput, run_id: str) -> Prepared | None:
    """What prepare had found once it claimed the key (it runs the first step now, or
    ran it: the step gave the key up and recorded itself, the task is ending)."""
    with read_session() as session:
        row = claims.held_by(session, input.action_id)
        since = row.claimed_at if row is not None else None
        if since is None:
            since = records.found_at(session, records.record_key(run_id, "step/0"))
            if since is None:
                return None
        return Prepared(
            outcome="claimed",
            arguments=list(input.arguments),
            concurrency_key=row.concurrency_key if row is not None else None,
            checksum_key=row.holder_checksum_key if row is not None else None,
            checksum=row.holder_checksum if row is not None else None,
            step_count=1,
            first_step_started_at=_utc(since).isoformat(),
        )


def _utc(moment: datetime) -> datetime:
    """A stored time, which SQLite keeps without its zone: it was written in UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
