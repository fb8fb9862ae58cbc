"""The prepare phase of an action, in its workflow (S3.2-S3.4, S4.8, S8.2).

The `stepped_prepare` activity (`preparing.py`) runs the `before` hooks, works
out the keys, looks up the achievement and claims the key or joins its lane;
from `ActionInput.revision` 2 it runs as a local activity, inside the
workflow's first task (`prepare_view.py` says what `describe()` shows
meanwhile). Here the workflow asks for it, tells a parent waiting on its join
(S4.8), and fails the action early when its input is unreadable or prepare
failed for good.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from . import lane_checks
    from .action_run import ActionRun
    from .continuing import PAGED_REVISION
    from .messages import PAYLOAD_VERSION, ErrorData, Prepared, PrepareInput
    from .search_attributes import CONCURRENCY_KEY
    from .wire import decode, encode
    from .workflow_support import (
        DEFAULT_RETRY,
        activity_error,
        now,
        retry_policy,
        run_activity,
        signal,
        unit_policy,
    )

__all__ = ["prepare"]


async def prepare(action: ActionRun) -> Prepared | None:
    """The prepare activity (S3.2-S3.4): `before`, the keys, the achievement, and
    a claim on the key or a place in its lane. None when the action failed."""
    input = action.input
    if input.version != PAYLOAD_VERSION:
        _fail_early(
            action,
            ErrorData(
                "PayloadVersionError",
                f"action input has payload version {input.version!r}; this worker reads "
                f"version {PAYLOAD_VERSION}",
            ),
        )
        return None
    try:
        prepared = input.prepared or await _prepare_activity(action)
    except (ActivityError, ApplicationError) as error:  # (a local one fails bare)
        await _report_joined(action)
        _fail_early(action, activity_error(error))
        return None
    action.prepared = prepared
    lane_checks.arm(action)  # (in prepare's own task: see lane_checks)
    await _report_joined(action)
    if prepared.concurrency_key is not None:
        # a claimed action performs now: its key goes with its next status
        claimed = prepared.outcome == "claimed"
        action.upsert(CONCURRENCY_KEY.value_set(prepared.concurrency_key), later=claimed)
    action.data.take(prepared)
    return prepared


async def _prepare_activity(action: ActionRun) -> Prepared:
    input = action.input
    argument = PrepareInput(
        action.context(),
        input.task_queue,
        input.parent,
        list(input.ancestry),
        # a sibling waits for our join: report it without running a step
        perform_first_step=not input.report_joined,
        search_attributes=input.search_attributes,
        budget=(input.retry or DEFAULT_RETRY).maximum_attempts,
        # the first task's events: started, task scheduled, task started
        first_task=workflow.info().get_current_history_length() <= 3,
        page_children=input.revision >= PAGED_REVISION,
    )
    # from revision 2 a local activity: nothing waits on the server (prepare_view.py)
    result = await run_activity(
        "stepped_prepare",
        encode(argument),
        local=input.revision >= 2,
        timeout=timedelta(seconds=input.activity_timeout or 600.0),
        heartbeat_timeout=input.heartbeat_timeout,
        retry=unit_policy(retry_policy(input.retry or DEFAULT_RETRY)),
    )
    return decode(Prepared, result)


async def _report_joined(action: ActionRun) -> None:
    """Tell the parent we are in our lane (or done), so the next sibling joins (S4.8)."""
    input = action.input
    if input.report_joined and input.parent is not None:
        await signal(input.parent.workflow_id, "joined", action.data.id)


def _fail_early(action: ActionRun, error: ErrorData) -> None:
    data = action.data
    data.error = error
    data.status = "failed"
    data.completed_at = now()
    workflow.logger.error("action %s failed: %s: %s", data.id, error.type, error.message)
