"""An unsuccessful action fails its Temporal workflow (S9.4).

The Web UI's status column, its "Failed" filter and `ExecutionStatus="Failed"`
list queries show what Temporal's execution status says, so an action that
ends `failed`, `timed_out`, `deadlocked` or `cancelled` ends its workflow
failed: a non-retryable `ApplicationError` whose type names the status
(`ActionFailed`, …), whose message is the action's error with the action
named, and whose one detail is the action's result (an `ActionData`, as a
completed workflow returns it). `succeeded` and `superseded` actions — and
shared ones that mirror a success — complete.

`cancelled` fails too, rather than ending the workflow cancelled: Temporal's
cancelled state carries no result, and `handle.result()` returns an
`ActionResult` for every final status. Reading the result back (the client's
`ActionHandle.result()`, a parent's watch on its child) goes through
`action_data`.

Workflows started before this existed completed for every status; they keep
doing so on replay (`workflow.patched(PATCH)`, asked only when the action is
unsuccessful, so successful actions carry no marker).
"""

from __future__ import annotations

from typing import Any

from temporalio.exceptions import ApplicationError

from .messages import ActionData
from .wire import Json, decode

__all__ = ["FAILURE_TYPES", "PATCH", "action_data", "failure", "is_action_failure"]

#: the final statuses that fail the workflow, and the failure type of each
FAILURE_TYPES: dict[str, str] = {
    "failed": "ActionFailed",
    "timed_out": "ActionTimedOut",
    "deadlocked": "ActionDeadlocked",
    "cancelled": "ActionCancelled",
}

#: the patch id that marks histories whose unsuccessful actions fail their workflow
PATCH = "stepped-unsuccessful-fails-workflow"

_TYPES = frozenset(FAILURE_TYPES.values())


def failure(data: ActionData, result: Json) -> ApplicationError:
    """The workflow's failure for an action that ended unsuccessfully."""
    status = data.status
    said = status.replace("_", " ")
    if data.error is not None:
        message = f"action {data.id} {said}: {data.error.type}: {data.error.message}"
    else:
        message = f"action {data.id} {said}"
    return ApplicationError(message, result, type=FAILURE_TYPES[status], non_retryable=True)


def is_action_failure(error: BaseException | None) -> bool:
    """Whether `error` is the failure of an action that ended unsuccessfully."""
    return isinstance(error, ApplicationError) and error.type in _TYPES and bool(error.details)


def action_data(error: BaseException | None) -> ActionData | None:
    """The result an unsuccessful action's workflow failed with; None for any other error."""
    if not is_action_failure(error):
        return None
    assert isinstance(error, ApplicationError)
    detail: Any = error.details[0]
    if isinstance(detail, ActionData):
        return detail
    return decode(ActionData, detail)
