"""The action's retry policy counts failures of user code, not lost workers (S8.2, S1.4).

Temporal counts every attempt of an activity against its retry policy: one
lost with a killed worker (a heartbeat timeout) as much as one whose step raised.
An action's `retry` is about its code, so Stepped schedules its units with the
action's intervals but no limit on attempts (`workflow_support.unit_policy`) and
counts here, in the database, the attempts whose user code failed: one record
per failed attempt, under the activity's key in `stepped_step_records`. When
they reach the action's `maximum_attempts` (the unit's *budget*), the error goes
back to Temporal as non-retryable, and the action fails as before. A worker that
dies records nothing; neither does a database outage (that is not the code's
fault either). A unit still running at 90% of its start-to-close timeout counts
as failed too, so a step that always runs too long still ends the action.

Nothing is written on the hot path: only a failing attempt records.
"""

from __future__ import annotations

import asyncio
import logging

from temporalio import activity
from temporalio.exceptions import ApplicationError

from .store import is_transient, records, transaction

__all__ = ["LATE", "count_failure", "exhausted", "late"]

log = logging.getLogger("stepped_temporal")

#: the share of the start-to-close timeout after which a running unit counts as failed
LATE = 0.9


def _record() -> int:
    info = activity.info()
    with transaction() as session:
        return records.count_failure(
            session,
            info.workflow_run_id or "",
            info.activity_id,
            info.attempt,
            info.workflow_id or "",
        )


async def count_failure() -> int | None:
    """Record that this attempt failed in user code; how many attempts did so far
    (None when the database could not be reached: then it is not counted)."""
    try:
        return await asyncio.to_thread(_record)
    except Exception as error:
        log.warning(
            "could not count a failed attempt of %s: %r", activity.info().activity_type, error
        )
        return None


async def exhausted(error: Exception, budget: int) -> Exception:
    """`error`, or a non-retryable copy of it once the unit's budget is used up."""
    if is_transient(error) or (isinstance(error, ApplicationError) and error.non_retryable):
        return error
    failures = await count_failure()
    if failures is None or failures < budget:
        return error
    final = ApplicationError(str(error), type=type(error).__name__, non_retryable=True)
    final.__cause__ = error
    return final


async def late(budget: int, seconds: float) -> Exception | None:
    """Count a unit still running after `seconds`; the error that ends it when that
    used up its budget."""
    failures = await count_failure()
    if failures is None or failures < budget:
        return None
    return ApplicationError(
        f"{activity.info().activity_type} still ran after {seconds:.0f}s, "
        f"{LATE:.0%} of its start-to-close timeout, in {failures} attempt(s)",
        type="TimeoutError",
        non_retryable=True,
    )
