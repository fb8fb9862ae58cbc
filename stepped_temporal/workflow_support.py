"""What the action workflow's modules share: its type name, retry policies,
activity errors, signals to other workflows and the clock (S3.9, S4.2, S8.2).

Like every module the action workflow is made of, this is deterministic
workflow code: no user code, no I/O, no randomness or wall-clock time; it
imports only the standard library, temporalio and Stepped's pure modules.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError

with workflow.unsafe.imports_passed_through():
    from .messages import ErrorData, RetryData
    from .wire import Json, decode, encode

T = TypeVar("T")

#: the action workflow's type (`workflows.ActionWorkflow`, and the children it starts)
ACTION_WORKFLOW = "SteppedAction"
#: the retry policy of a definition that names none (S8.2)
DEFAULT_RETRY = RetryData(
    initial_interval=1.0, backoff_coefficient=2.0, maximum_interval=30.0, maximum_attempts=5
)
#: Prepare and finish only retry failures of the moment (user errors come back as results).
SYSTEM_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30)
)

#: the patch marker of signals sent again when their target's run refuses more
SIGNAL_RETRIES = "stepped-signal-retries"
#: the first pause before such a signal goes again, and the longest (seconds)
SIGNAL_PAUSE = 1
SIGNAL_PAUSE_MAX = 60

__all__ = [
    "ACTION_WORKFLOW",
    "DEFAULT_RETRY",
    "SIGNAL_RETRIES",
    "SYSTEM_RETRY",
    "activity_error",
    "duration",
    "now",
    "received",
    "reraise_cancellation",
    "retry_policy",
    "run_activity",
    "signal",
    "unit_policy",
]


def retry_policy(data: RetryData) -> RetryPolicy:
    """A definition's retry policy (plain numbers) as Temporal's (S8.2)."""
    return RetryPolicy(
        initial_interval=timedelta(seconds=data.initial_interval),
        backoff_coefficient=data.backoff_coefficient,
        maximum_interval=timedelta(seconds=data.maximum_interval)
        if data.maximum_interval
        else None,
        maximum_attempts=data.maximum_attempts,
        non_retryable_error_types=data.non_retryable_error_types or None,
    )


def unit_policy(policy: RetryPolicy) -> RetryPolicy:
    """Temporal's policy for an activity running user code: the action's intervals
    and no limit on attempts — the activity counts its code's failures against the
    action's maximum (budgets.py), so attempts lost with a worker do not (S8.2)."""
    return dataclasses.replace(policy, maximum_attempts=0)


def duration(seconds: float | None) -> timedelta | None:
    """A timeout in seconds as a timedelta; None (no timeout) for None or 0."""
    return timedelta(seconds=seconds) if seconds else None


async def run_activity(
    name: str,
    argument: Any,
    *,
    local: bool,
    timeout: timedelta,
    heartbeat_timeout: float | None,
    retry: RetryPolicy,
) -> Json:
    """Run Stepped's activity `name` (JSON in, JSON out): `local`, inside the workflow
    task — no activity task, no task after it — or as an ordinary activity."""
    result: Json
    if local:
        result = await workflow.execute_local_activity(
            name, argument, result_type=dict, start_to_close_timeout=timeout, retry_policy=retry
        )
    else:
        result = await workflow.execute_activity(
            name,
            argument,
            result_type=dict,
            start_to_close_timeout=timeout,
            heartbeat_timeout=duration(heartbeat_timeout),
            retry_policy=retry,
        )
    return result


def reraise_cancellation(error: ActivityError) -> None:
    """An activity we cancelled (the action ended meanwhile) is no failure of it."""
    if isinstance(error.cause, CancelledError):
        raise asyncio.CancelledError() from error


def activity_error(error: BaseException) -> ErrorData:
    """The error an activity failed with for good (S8.2): its type and message."""
    cause = error.__cause__ if isinstance(error, ActivityError) else error
    if isinstance(cause, ApplicationError):
        return ErrorData(cause.type or "ApplicationError", cause.message)
    return ErrorData(type(cause).__name__ if cause else type(error).__name__, str(cause or error))


async def signal(workflow_id: str, name: str, payload: Any) -> bool:
    """Signal another workflow; one that already closed has nobody left to tell (False).

    A run that took its cluster's signals per run (a lane under a flood of joins,
    before it continues as new) refuses more: the signal goes again after a pause,
    to the run that has taken over by then (S11.1; `SIGNAL_RETRIES`, runs recorded
    before failed there)."""
    pause = SIGNAL_PAUSE
    while True:
        try:
            await workflow.get_external_workflow_handle(workflow_id).signal(name, encode(payload))
        except ApplicationError as error:
            if error.type == "ExternalWorkflowExecutionNotFound":
                workflow.logger.info("signal %s to closed workflow %s dropped", name, workflow_id)
                return False
            over = "SignalCountLimitExceeded" in f"{error.type} {error.message}"
            if not over or not workflow.patched(SIGNAL_RETRIES):
                raise
            workflow.logger.warning(
                "signal %s to %s: its run takes no more signals; again in %ss",
                name,
                workflow_id,
                pause,
            )
            await workflow.sleep(pause)
            pause = min(pause * 2, SIGNAL_PAUSE_MAX)
            continue
        return True


def received(cls: type[T], raw: Any, signal_name: str) -> T | None:
    """A signal's JSON as a `cls` (`wire.decode`: about a tenth of the CPU of
    Temporal's typed decoding, which matters when thousands of joins reach one
    lane in one task); None, logged, when it is not one — dropped, as Temporal
    drops a signal whose input it cannot decode."""
    try:
        return decode(cls, raw)
    except Exception as error:
        workflow.logger.warning("signal %s dropped: not a %s: %r", signal_name, cls.__name__, error)
        return None


def accepted(value: Any, cls: type, signal_name: str) -> bool:
    """Whether a typed signal's argument is a `cls`: Temporal passes a JSON null (or no
    argument) through as None, which a handler must drop, not trip over — a signal
    whose handler raises fails every retry of the workflow task it arrives in."""
    if isinstance(value, cls):
        return True
    workflow.logger.warning("signal %s dropped: not a %s: %r", signal_name, cls.__name__, value)
    return False


def now() -> str:
    """The workflow's time (deterministic), as the timestamps of `ActionData` hold it."""
    return workflow.now().isoformat()
