"""What runs a job-backed action's job (S6.4).

The job is the step after the prepended ones: one `run_job` activity, its own
transaction and record, retried under the definition's retry policy for every
exception it raises (the handled list applies only to steps and hooks). It may
complete the action with a status of its own (`action.complete(...)`).
"""

from __future__ import annotations

import logging

from temporalio import activity

from . import losses
from .arguments import encode_arguments
from .errors import DefinitionError
from .execution import attempt, error_data, json_in_thread, unit_key
from .faults import crash_point
from .stepping import recorded_or_started
from .store import records, transaction
from .unit_messages import JobInput, JobOutcome
from .user_code import PERMANENT, Handled, build_action, load, refuse_awaitable
from .wire import Json

__all__ = ["run_job"]

log = logging.getLogger("stepped_temporal")


def _job(data: JobInput) -> JobOutcome:
    context = data.action
    key = unit_key("job")
    if data.erase_achievement:
        early = recorded_or_started(context, key, JobOutcome, JobOutcome(achieved=True))
        if early is not None:
            return early
    try:
        losses.settle("job")  # a worker lost running it (only when recovering)
        with transaction() as session:
            done = records.find(session, key, JobOutcome, attempt=attempt())
            if done is not None:
                return done
            actor, definition, arguments = load(session, context)
            if definition.job is None:
                raise DefinitionError(f"{definition!r} has no job any more")
            action = build_action(
                actor, context, arguments, status="performing", can_complete=True, unit="job"
            )
            # Every exception of a job is retried under the definition's retry policy
            # (S6.4); the handled list only applies to steps and hooks.
            refuse_awaitable(definition.job, definition.job(action))
            encoded = encode_arguments(
                action.arguments, culprit=f"arguments of {context.action_id}"
            )
            outcome = JobOutcome(
                status=action.completion,
                arguments=encoded if encoded != context.arguments else None,
            )
            records.record(session, key, context.action_id, outcome)
        if attempt() >= 2:
            crash_point("job-retry")
    except Handled as handled:  # its worker was lost too often (losses.py)
        return JobOutcome(error=error_data(handled.error))
    except PERMANENT as error:
        log.warning("action %s: job cannot run: %s", context.action_id, error)
        return JobOutcome(error=error_data(error))
    return outcome


@activity.defn(name="stepped_job")
async def run_job(input: Json) -> Json:
    """Run a job-backed action's job in its own transaction (S6.4)."""
    await losses.look_back()
    return await json_in_thread(JobInput, input, _job, budgeted=True)
