"""Waiting with a time limit in workflow code, without cancelling on the test server.

Temporal's Java time-skipping test server wedges a workflow whose task cancels
a timer that has just fired ("invalid history builder state for action") or
an activity that has just completed ("ACTIVITY_UNKNOWN for scheduledEventId"):
it refuses the task's completion — losing an update answered in it — and the
workflow never gets another task. Under time skipping a timer fires the moment
the clock is unlocked, so such races are the rule there, not the exception.
An action or lane started through a time-skipping client (see
`time_skipping.skips_time`) is marked `test_server`; for it, a time limit is a
timer nobody cancels — it fires into nothing once the wait is over — and an
interrupted activity is abandoned instead of cancelled. On every other
server the ordinary cancelling wait is kept, so their histories are
unchanged (S7.1, S10.3).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow

__all__ = ["activity_cancellation", "sleep", "wait_condition"]


async def wait_condition(
    condition: Callable[[], bool], timeout: timedelta, *, test_server: bool
) -> bool:
    """Wait until `condition()` holds (True) or `timeout` passes (False)."""
    if not test_server:
        try:
            await workflow.wait_condition(condition, timeout=timeout)
        except TimeoutError:
            return False
        return True
    alarm = asyncio.ensure_future(workflow.sleep(timeout))
    await workflow.wait_condition(lambda: condition() or alarm.done())
    return condition()


async def sleep(seconds: float, *, test_server: bool) -> None:
    """`workflow.sleep`, whose timer is left to fire when the sleeper is cancelled."""
    if not test_server:
        await workflow.sleep(seconds)
        return
    alarm = asyncio.ensure_future(workflow.sleep(seconds))
    await workflow.wait_condition(alarm.done)


def activity_cancellation(test_server: bool) -> workflow.ActivityCancellationType:
    """How an activity of an interrupted action is given up."""
    if test_server:
        return workflow.ActivityCancellationType.ABANDON
    return workflow.ActivityCancellationType.TRY_CANCEL
