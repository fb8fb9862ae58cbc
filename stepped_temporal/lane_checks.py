"""An action's checks on the lanes it waits on (S4.6, S4.7; issue 27: no action waits
on a lane that is gone).

What an action waiting in a lane — pending, or shared with another — and a
parent whose dependency a lane moved to a successor (S4.2) wait for can only
come from that lane. A lane workflow that an operator terminated, that failed
or that was reset will never send it. So, every `Prepared.lane_check` seconds
(`configure(lane_check=…)`), then twice as long after each check up to
`shape.check_backoff` times that (an action may wait in a lane for days: its history must
not grow a check a minute), such an action asks the lane (`LanePing`): a lane
that holds it stays silent; one that does not answers (lane_watch.py); a closed
one cannot be signalled, which says the same. Then a pending or sharing action
ends `cancelled` with a `LaneGone` error, and a forwarded dependency concludes
unsuccessfully — within about one interval, and its parent's step fails as for
any unsuccessful dependency (S3.14). A cancel of a pending action whose lane is
closed ends it at once (there is nobody to withdraw from).

Versioning: the interval comes from prepare's recorded result, so an action
whose first task an older release ran (no interval recorded) never checks —
for inputs of revision 2, whose prepare runs inside that same task; and the
first check's timer is started in the activation that takes prepare's result
(`arm`), before anything else is awaited, so that task records it: an older
worker of a mixed fleet that takes a later task of the run then fails that
task (it cannot replay the timer) instead of writing a history without
checks that this release would replay with one. A parent
starts checking in a later task, so it records `FORWARDS_CHECKED` first, and a
cancel that finds the lane closed records `LANE_GONE`: histories recorded
before these behave as they did. The check's timer is never cancelled (it
fires into nothing once the wait is over), so a wait that ends costs no event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from .action_run import ActionRun
    from .dependencies import Dependencies
    from .lane_messages import LanePing
    from .messages import ErrorData
    from .workflow_support import signal

__all__ = [
    "FORWARDS_CHECKED",
    "LANE_GONE",
    "arm",
    "check_forwards",
    "lane_gone",
    "wait_checking",
]

#: the patch id of a parent checking the lanes that hold its forwarded dependencies
FORWARDS_CHECKED = "stepped-forwards-checked"
#: the patch id of a cancel ending a pending action whose lane workflow is closed
LANE_GONE = "stepped-lane-gone"


def arm(action: ActionRun) -> None:
    """Start a joined action's first check now, in the task that took prepare's
    result (see the module's docstring)."""
    prepared = action.prepared
    seconds = interval(action)
    if prepared is not None and prepared.outcome == "joined" and seconds is not None:
        action.check_every = seconds
        action.check_alarm = asyncio.ensure_future(workflow.sleep(seconds))


def interval(action: ActionRun) -> float | None:
    """Seconds between checks; None when this action never checks (see above)."""
    prepared = action.prepared
    if prepared is None or action.input.revision < 2:
        return None
    return prepared.lane_check


async def wait_checking(action: ActionRun, condition: Callable[[], bool]) -> bool:
    """Wait until `condition()` holds (True), checking meanwhile that the action's
    lane still holds it; False as soon as it is known not to (lost or closed)."""
    seconds = interval(action)
    if seconds is None:
        await workflow.wait_condition(condition)
        return True
    while not await _until_alarm(action, seconds, condition):
        if not await action.signal_lane("ping", LanePing(action.data.id)):
            return False  # the lane workflow is closed
    return True


def _later(action: ActionRun, seconds: float, first: float) -> float:
    """The interval after a check of `seconds` (see the module's docstring)."""
    return min(seconds * 2, first * action.input.shape.check_backoff)


async def _until_alarm(action: ActionRun, first: float, condition: Callable[[], bool]) -> bool:
    """Wait until `condition()` (True) or the action's check alarm rings (False)."""
    alarm = action.check_alarm
    if alarm is None or alarm.done():
        seconds = action.check_every = _later(action, action.check_every, first) if alarm else first
        alarm = action.check_alarm = asyncio.ensure_future(workflow.sleep(seconds))
    await workflow.wait_condition(lambda: condition() or alarm.done())
    return condition()


def lane_gone(action: ActionRun, message: str | None = None) -> None:
    """The action's lane no longer holds it: it ends cancelled, saying why."""
    data = action.data
    prepared = action.prepared
    lane = prepared.lane_id if prepared else None
    data.error = ErrorData(
        "LaneGone",
        message
        or (
            f"lane {data.concurrency_key!r} ({lane}) is closed: its workflow was terminated, "
            f"failed or reset while action {data.id} waited in it; it ends cancelled "
            f"(start it again if it is still needed)"
        ),
    )
    workflow.logger.error("action %s: %s", data.id, data.error.message)


def check_forwards(action: ActionRun, dependencies: Dependencies) -> None:
    """A lane moved one of the action's dependencies to a successor: check on that
    lane from now on, until nothing forwarded is left waiting (see above)."""
    if action.forwards_check is None and interval(action) is not None:
        action.forwards_check = asyncio.ensure_future(_check_forwards(action, dependencies))


async def _check_forwards(action: ActionRun, dependencies: Dependencies) -> None:
    first = interval(action)
    assert first is not None
    seconds = first
    try:
        if not workflow.patched(FORWARDS_CHECKED):
            return  # recorded before checks existed: as it was
        while True:
            await workflow.sleep(seconds)
            seconds = _later(action, seconds, first)
            waiting = dependencies.forwarded()
            if not waiting:
                return
            for lane in sorted(waiting):
                forwards = waiting[lane]
                if await signal(lane, "ping", LanePing(action.data.id, forwards)):
                    continue  # the lane concludes what it does not hold
                for forward in forwards:
                    workflow.logger.error(
                        "action %s: lane %s is closed: dependency %s (waiting on %s) "
                        "concludes unsuccessfully",
                        action.data.id,
                        lane,
                        forward.dependency_id,
                        forward.successor,
                    )
                    dependencies.conclude(forward.dependency_id, False)
    finally:
        action.forwards_check = None
