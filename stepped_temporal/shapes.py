"""The numbers that decide which commands Stepped's workflows issue, recorded per run
(the versioning rule of docs/architecture.md; S3.7, S4.7, S4.9, S11.5).

Workflows in flight outlive every release, and Temporal replays a run's history
against today's code: a workflow that read a window, a batch size or a
continue-as-new threshold from a module constant would issue different commands
for the same history the day the constant changed — a non-determinism error,
and a run that never moves again. (It happened once: the lane's threshold went
from 3,000 to 2,000 events.) So every such number travels in the run's input,
written once by whoever creates the run — `client.start`, a parent starting a
child (`child_starts`), a prepare starting a lane (`lane_starts`), a lane
continuing as new — and the workflow reads it from there, never from a
constant.

A shape's defaults are what the releases before shapes existed used, and they
never change: an input without a shape decodes to them. `CURRENT_*` is what new
runs get; changing it changes new runs only. `wire.encode` leaves a field at
its default out, so a shape costs nothing while the numbers are the old ones.

What a new run gets is also bounded by the limits of the cluster it runs on
(`ServerLimits`, S11.5: `configure(server_limits=…)`): a lowered pending-
operations limit narrows the windows, a lowered history limit makes lanes
continue as new sooner. Temporal's defaults give `CURRENT_*`. Roots and lanes
get theirs from the settings of the process that starts them (`action_shape`,
`lane_shape`); children inherit their parent's, and a lane's next run its own.

Standard library only: workflow code and activities both use it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

__all__ = [
    "CURRENT_ACTION_SHAPE",
    "CURRENT_LANE_SHAPE",
    "LEGACY_LANE_HISTORY_LIMITS",
    "ActionShape",
    "LaneShape",
    "ServerLimits",
    "action_shape",
    "lane_shape",
]

#: The continue-as-new thresholds of lane runs that recorded none, newest first:
#: 2,000 from 0013fc8 on, 3,000 before — a change shipped without a marker, so a
#: run cannot say which it was written with (see `versioning.legacy_lane_limit`).
LEGACY_LANE_HISTORY_LIMITS = (2000, 3000)


@dataclass(frozen=True)
class ActionShape:
    """The numbers that shape an action workflow's commands (its input's `shape`)."""

    #: children open at once (Temporal refuses more than 2,000 pending children)
    child_window: int = 1000
    #: child starts issued per workflow task (where `BATCHED_STARTS` is recorded):
    #: each start's input travels in the parent's history and the server reads the
    #: start from there, so hundreds in one task make one large batch it reads per child
    start_batch: int = 50
    #: deadlock probes whose origins it remembers, to pass each on once (S4.9)
    probes_remembered: int = 256
    #: a probe whose path grows past this is dropped (S4.9)
    max_hops: int = 64
    #: checks on a lane back off to this many times their first interval (lane_checks)
    check_backoff: int = 60
    #: past this many history events, or bytes, a performing action stops and fails
    #: rather than be terminated by the server (S11.4, `history_limits`; from
    #: `REVISION` 4): the cluster's limits less the room to finish (`action_shape`)
    stop_events: int = 51_200 * 4 // 5
    stop_bytes: int = 50 * 1024 * 1024 * 4 // 5
    #: past this many history events a performing action continues as new before
    #: its next step (S11.1, `continuing`; from `REVISION` 5): a tenth of the limit
    continue_events: int = 51_200 // 10
    #: inside a wide step it continues as new too — past `continue_events`, when what
    #: the rest of the step will add would take its history past this (S11.1; from
    #: `REVISION` 6): a fifth of the limit, where Temporal warns, less the room to finish
    step_events: int = 51_200 // 5 - 100
    #: what the rest of a step will add, in tenths of an event: per child not started
    #: (measured: 42-44 on the dev server) and per child or wait still open (its end)
    child_events_x10: int = 45
    open_events_x10: int = 20


@dataclass(frozen=True)
class LaneShape:
    """The numbers that shape a lane workflow's commands (its state's `shape`)."""

    #: continue-as-new past this many history events; None: recorded before
    #: shapes existed (`LEGACY_LANE_HISTORY_LIMITS`)
    history_limit: int | None = None
    #: outgoing signals under way at once (Temporal allows 2,000 pending per run)
    window: int = 200
    #: ids of departed actions remembered, so a repeated join is ignored
    recent: int = 1000
    #: a probe whose path grows past this is dropped (S4.9)
    max_hops: int = 64


#: the events an action may need to finish once stopped (S11.4): its release, its
#: callbacks, upserts, the lane's last messages
FINISH_EVENTS = 100
#: the history bytes one child's end may add to its parent (its start and its result)
CHILD_END_BYTES = 8 * 1024
#: what new actions get (equal to the defaults: nothing travels)
CURRENT_ACTION_SHAPE = ActionShape()
#: what new lane runs get: a burst of joins taken in one task can add about a
#: thousand events before the lane can continue, so 2,000 keeps runs near 3,000
CURRENT_LANE_SHAPE = LaneShape(history_limit=2000)


@dataclass(frozen=True)
class ServerLimits:
    """The per-execution limits of the Temporal cluster Stepped runs on (S11.5), as its
    dynamic config sets them; the defaults are Temporal's own."""

    #: events in one run's history (Temporal warns at a fifth of it)
    history_events: int = 51_200
    #: bytes of one run's history
    history_bytes: int = 50 * 1024 * 1024
    #: bytes of one payload (an input, a result, a signal's argument)
    payload_bytes: int = 2 * 1024 * 1024
    #: pending child workflows, activities, signals or cancels of one run
    pending_operations: int = 2_000
    #: signals one run accepts
    signals_per_run: int = 10_000

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if type(value) is not int or value < 1:
                raise ValueError(f"ServerLimits.{name} must be a positive int, got {value!r}")


def action_shape(limits: ServerLimits) -> ActionShape:
    """The shape of an action started now on a cluster with `limits`: at most half
    its pending operations as open children, the other half left for its signals
    (and no more than half its history can take the ends of);
    it stops short of the history limits by the room it needs to finish (S11.4)."""
    batch = CURRENT_ACTION_SHAPE.start_batch
    # open children: at most half the pending operations, and few enough that their
    # ends (two events each) and a batch of starts fit in half the history
    fit = (limits.history_events // 2 - batch - FINISH_EVENTS) // 2
    window = max(1, min(CURRENT_ACTION_SHAPE.child_window, limits.pending_operations // 2, fit))
    # the room kept for finishing: a fifth of the limit, or what the children still
    # open record as they end (their start and end events and results) and a batch
    # of starts under way, whichever is more
    room_events = max(limits.history_events // 5, 2 * window + batch + FINISH_EVENTS)
    room_bytes = max(limits.history_bytes // 5, (window + batch) * CHILD_END_BYTES)
    return replace(
        CURRENT_ACTION_SHAPE,
        child_window=window,
        stop_events=max(1, limits.history_events - room_events),
        stop_bytes=max(1, limits.history_bytes - room_bytes),
        continue_events=max(1, limits.history_events // 10),
        step_events=max(1, limits.history_events // 5 - FINISH_EVENTS),
    )


def lane_shape(limits: ServerLimits) -> LaneShape:
    """The shape of a lane run created now on a cluster with `limits`: it continues as
    new past a 25th of the history limit (a burst of joins can add as many events
    again before it can: well inside the warning at a fifth) or a fifth of the
    signals a run accepts, with a tenth of the pending operations as signals
    under way."""
    current = CURRENT_LANE_SHAPE.history_limit or 0
    bound = min(limits.history_events // 25, limits.signals_per_run // 5)
    # the departed ids it carries across continue-as-new (about 60 bytes each) take
    # at most a sixteenth of a payload
    carried = limits.payload_bytes // 16
    return replace(
        CURRENT_LANE_SHAPE,
        history_limit=max(100, min(current, bound)),
        window=max(1, min(CURRENT_LANE_SHAPE.window, limits.pending_operations // 10)),
        recent=max(10, min(CURRENT_LANE_SHAPE.recent, carried // 64)),
    )
