"""An action nearing its cluster's history limits fails; the server never terminates
it (S11.4).

Temporal terminates a run whose history passes 51,200 events or 50 MB: the
workflow gets no say, `result()` would raise, the key's claim and the lane's
turn would never be given back and no after-callback would run. So a performing
action watches its own history (`workflow.info()`, the same in replay) and,
past the stop its shape recorded (`ActionShape.stop_events`, `stop_bytes`: the
limits declared when the root started, S11.5, less the room to finish — a
fifth of them, or more where many children may still be open), stops its work
the way a timeout stops it and ends `failed` with an error naming the limit.
What it records after — its release, its callbacks, the ends of the children
still open — fits in that room.

A behaviour of `REVISION` 4: inputs written before never stop (their histories
recorded none of it), and a worker of an older release refuses such inputs.
From `REVISION` 5 the stop also counts, ahead, two events for every child and
wait the current step still waits on (each adds events as it ends or is given
up), so a step of many open waits or children stops in time.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from .action_run import ActionRun
    from .dependencies import Dependencies
    from .messages import ErrorData

__all__ = ["AHEAD_REVISION", "HISTORY_LIMIT_REACHED", "STOPPING_REVISION", "reached"]

#: the error type of an action stopped at its history limit
HISTORY_LIMIT_REACHED = "HistoryLimitReached"
#: the first `ActionInput.revision` that stops
STOPPING_REVISION = 4
#: the first that counts the events still to come from what the step waits on
AHEAD_REVISION = 5


def reached(action: ActionRun, dependencies: Dependencies) -> ErrorData | None:
    """The error to end `action` with when its history has reached its stop, else None.
    (A `wait_condition` predicate: it reads, never changes anything.)"""
    if action.input.revision < STOPPING_REVISION:
        return None
    shape = action.input.shape
    info = workflow.info()
    events = info.get_current_history_length()
    # what the step waits on still adds events as it ends or is given up — a
    # child's end, a wait's timer fired or cancelled: from revision 5, count them now
    open = dependencies.open if action.input.revision >= AHEAD_REVISION else 0
    if events + 2 * open >= shape.stop_events:
        reached = f"{events:,} history events"
        if open:
            reached += f" with {open:,} children and waits still open (two events each ahead)"
        return _error(action, reached, f"{shape.stop_events:,} events")
    size = info.get_current_history_size()
    if size >= shape.stop_bytes:
        return _error(action, f"{size:,} bytes of history", f"{shape.stop_bytes:,} bytes")
    return None


def _error(action: ActionRun, reached: str, stop: str) -> ErrorData:
    return ErrorData(
        HISTORY_LIMIT_REACHED,
        f"action {action.data.id} stopped at {reached}: its stop is {stop}, short of its "
        "Temporal cluster's history limit (ServerLimits, S11.4) by the room it needs to "
        "finish; past the limit the server would terminate it. Nest its work in child "
        "actions (each has a history of its own)",
    )
