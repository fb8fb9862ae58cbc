"""Poison pills end: a unit whose worker dies N times in a row fails its action (S8.2, S1.4).

Attempts lost with their worker never count against an action's retry policy
(budgets.py), so a step that kills every worker running it — out of memory, a
crash in native code — would be retried for ever, taking worker after worker
down. So Stepped counts, per unit of user code (a before hook, the key
functions, a step, the job, an after-callback), how many times in a row its
worker died while running it; at `configure(worker_loss_limit=...)` (default 5)
the unit is not run again and fails with `WorkerLost`, as a handled error would
(its action fails; a failed after-callback is counted and the others still run).

Only deaths count, and only recovery pays for counting them:

- A regular activity's attempt 2 or later asks Temporal how the attempt before
  it ended (the pending activity's last failure). A heartbeat timeout (a
  start-to-close one, for an activity without heartbeats) of an attempt that
  recorded no failure of its code (budgets.py) is a lost worker. Anything else —
  its code failed, the database was away — is not, and ends the streak.
- A local prepare runs inside the workflow's task: a lost worker loses the task,
  and the local activity starts again from attempt 1 in the task that replaces
  it. So a local prepare not in the workflow's first task reads the history: the
  last workflow task before it timed out (start to close) → a lost worker. A
  later attempt within one task follows a failure of code or database, and ends
  the streak.
- The death is charged to the first unit the attempt reaches without a record
  (store/records.py) — the one that was running when the worker died — in a
  transaction of its own, before that unit's code runs again (`settle`). A
  unit that finished has a record and is never charged.

The first attempt of a unit, and a local prepare in the workflow's first task,
cost nothing more: `settle` then reads a context variable and returns.
"""

from __future__ import annotations

import contextvars
import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session
from temporalio import activity
from temporalio.api.enums.v1 import EventType, TimeoutType
from temporalio.client import WorkflowHandle

from .config import settings
from .errors import WorkerLost
from .execution import first_task, unit_key
from .store import claims, records, transaction
from .user_code import Handled

__all__ = ["RPC_PATIENCE", "look_back", "lost", "settle"]

log = logging.getLogger("stepped_temporal")

#: how long a recovering attempt waits for Temporal's answer (then it counts nothing)
RPC_PATIENCE = timedelta(seconds=5)

_TASK_ENDS = (
    EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT,
)


@dataclass
class _Loss:
    """What a recovering attempt learnt of the attempt before it, until charged."""

    #: the lost attempt's id; None when it ended otherwise (the streak ends)
    death: str | None
    #: the id of the attempt before the lost one: the streak goes on if it was lost too
    follows: str | None = None
    #: the record of a failure of code in the lost attempt, which makes it no loss
    failed: str | None = None
    #: the unit it was charged to, and the error that ended that unit
    unit: str | None = None
    error: WorkerLost | None = None


_loss: contextvars.ContextVar[_Loss | None] = contextvars.ContextVar("stepped_loss", default=None)


async def look_back() -> None:
    """At the start of an activity, before its thread: whether the attempt before this
    one lost its worker (only a recovering attempt asks; see the module docstring)."""
    info = activity.info()
    loss = None
    if info.is_local:
        if not first_task.get(False):
            loss = _Loss(None) if info.attempt > 1 else await _task_lost()
    elif info.attempt > 1 and await _attempt_lost():
        before = info.attempt - 1
        failed = records.failure_key(info.workflow_run_id or "", info.activity_id, before)
        loss = _Loss(str(before), follows=str(before - 1), failed=failed)
    _loss.set(loss)


def _workflow() -> WorkflowHandle[object, object]:
    info = activity.info()
    return activity.client().get_workflow_handle(
        info.workflow_id or "", run_id=info.workflow_run_id
    )


async def _attempt_lost() -> bool:
    """Whether Temporal saw the previous attempt of this activity time out."""
    info = activity.info()
    try:
        description = await _workflow().describe(rpc_timeout=RPC_PATIENCE)
    except Exception as error:
        log.warning(
            "%s: cannot tell how attempt %d ended: %r", info.activity_type, info.attempt - 1, error
        )
        return False
    for pending in description.raw_description.pending_activities:
        if pending.activity_id == info.activity_id and pending.attempt == info.attempt:
            if not pending.last_failure.HasField("timeout_failure_info"):
                return False
            kind = pending.last_failure.timeout_failure_info.timeout_type
            return kind == TimeoutType.TIMEOUT_TYPE_HEARTBEAT or (
                kind == TimeoutType.TIMEOUT_TYPE_START_TO_CLOSE and not info.heartbeat_timeout
            )
    return False


async def _task_lost() -> _Loss | None:
    """A loss when the workflow task before this one timed out, start to close (its
    worker died), and none completed since."""
    try:
        history = await _workflow().fetch_history(rpc_timeout=RPC_PATIENCE)
    except Exception as error:
        log.warning("prepare: cannot tell how the workflow task before ended: %r", error)
        return None
    ends = [event for event in history.events if event.event_type in _TASK_ENDS]
    if not ends or not ends[-1].HasField("workflow_task_timed_out_event_attributes"):
        return None
    timed_out = ends[-1].workflow_task_timed_out_event_attributes
    if timed_out.timeout_type != TimeoutType.TIMEOUT_TYPE_START_TO_CLOSE:
        return None
    return _Loss(f"task/{ends[-1].event_id}/{len(history.events)}")


def settle(unit: str, *, verdict: object = None) -> None:
    """Before `unit` runs its code: charge it the lost worker `look_back` found, unless
    a record shows it finished. Raises `Handled(WorkerLost)` when that makes its streak
    reach the limit: the unit must not run again (a `verdict` is then recorded as its
    outcome, so no later attempt runs it either)."""
    loss = _loss.get()
    if loss is None:
        return
    if loss.unit is not None:  # charged already (this is the unit's code run again)
        if loss.unit == unit and loss.error is not None:
            raise Handled(loss.error)
        return
    action_id = activity.info().workflow_id or ""
    key = unit_key(unit)
    count = 0
    with transaction() as session:
        if records.found_at(session, key) is not None or (unit == "keys" and _keyed(session)):
            return  # it finished: the worker died after it
        streak = unit_key(f"lost/{unit}")
        if loss.death is None or (loss.failed and records.found_at(session, loss.failed)):
            records.forget(session, streak)  # a failure of code or database ends the streak
        else:
            count = records.count_loss(session, streak, action_id, loss.death, loss.follows)
        limit = settings().worker_loss_limit
        if limit and count >= limit:
            loss.error = WorkerLost(_message(action_id, unit, count))
            if verdict is not None:
                records.record(session, key, action_id, verdict)
    loss.unit = unit
    if loss.error is not None:
        log.error("WorkerLost: %s", loss.error)
        raise Handled(loss.error)
    if count:
        log.warning(
            "action %s: its worker was lost running %s (%d time(s) in a row); running it again",
            action_id,
            _label(unit),
            count,
        )


def lost(unit: str) -> WorkerLost:
    """The error of a unit recorded as lost by an earlier attempt (see `settle`)."""
    count = settings().worker_loss_limit
    return WorkerLost(_message(activity.info().workflow_id or "", unit, count))


def _keyed(session: Session) -> bool:
    """Whether prepare got past the key functions: its claim holds the key, or its first
    step (run after the claim) has a record."""
    action_id = activity.info().workflow_id or ""
    if claims.held_by(session, action_id) is not None:
        return True
    return records.found_at(session, unit_key("step/0")) is not None


def _message(action_id: str, unit: str, count: int) -> str:
    return (
        f"action {action_id}: {_label(unit)} never finished: its worker was lost {count} "
        f"times in a row while running it: a poison pill? (the process killed, out of "
        f"memory, a crash in native code). It is not run again; "
        f"configure(worker_loss_limit=...) sets how many losses end an action"
    )


def _label(unit: str) -> str:
    """A unit's name for people: "before/0" is "before hook 0", "step/1" "step 1"."""
    kind, _, rest = unit.partition("/")
    if kind == "before":
        return f"before hook {rest}"
    if kind == "step":
        return f"step {rest}"
    if kind == "after":
        status, _, number = rest.partition("/")
        return f"after-callback {number} ({status})"
    if kind == "keys":
        return "its key functions (concurrency key, checksum, timeout)"
    return f"its {unit}"  # "its job"
