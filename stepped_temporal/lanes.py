"""`LaneWorkflow`: one per concurrency key; owns queueing, superseding, sharing
and deadlock detection (S4), by each candidate's lane policy (S4.10, the rules
in `lane_rules.py`), its part in finding deadlocks across trees (S4.9,
`lane_probes.py`) and its answers to the actions that check on it
(`lane_watch.py`). How long a run grows and how many messages it has under way
are recorded in its state (`shapes.LaneShape`), never read from a constant.

Modelled on the resource-pool sample: signal handlers only change state and
queue outgoing messages; the main loop sends them, grants the next action, and
continues-as-new (carrying the state, restored in ``@workflow.init``) when the
history grows, so a lane serves any number of actions (S4.7). It ends once it
has been idle for a while; a join racing that end is not lost, because the
server refuses to complete a run while a signal is unhandled, and the loop
re-checks after ``all_handlers_finished``.

The lane is the authority on who waits for whom: it moves a superseded
action's dependents to the successor and, when an action releases the lane,
tells everyone it holds for that action (inherited dependents, followers
sharing it) in the same step — so a late follower is never missed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from . import timers
    from .bounds import halves, ids_after
    from .lane_messages import (
        LANE_REVISION,
        LaneEntry,
        LaneJoin,
        LanePing,
        LaneRelease,
        LaneState,
        LaneView,
        LaneWithdraw,
        Verdict,
    )
    from .lane_outbox import LaneOutbox
    from .shapes import CURRENT_LANE_SHAPE
    from .versioning import legacy_lane_limit, refuse_unknown
    from .wait_for import Probe
    from .wire import Json, decode, encode
    from .workflow_support import received

LANE_WORKFLOW = "SteppedLane"


@workflow.defn(name=LANE_WORKFLOW)
class LaneWorkflow(LaneOutbox):
    """The lane of one concurrency key."""

    @workflow.init
    def __init__(self, state: Json) -> None:
        # JSON in and out (wire.py): a continued lane may carry thousands of messages
        self._state = decode(LaneState, state)
        info = workflow.info()
        #: continue-as-new past this many history events, as recorded when the run
        #: was created (versioning.py: runs recorded before that)
        self._history_limit = self._state.shape.history_limit or legacy_lane_limit(info.run_id)
        #: `state.recent` as counts, for a join's "seen it?" in constant time
        self._recent = Counter(self._state.recent)
        self._unsent_forwards = {
            (message.workflow_id, message.forward.dependency_id): message
            for message in self._state.outbox
            if message.forward is not None
        }
        self._init_outbox()

    # -- messages (state changes only) ---------------------------------------
    @workflow.signal(name="join")
    def join_signal(self, raw: Json) -> None:
        """A candidate arrives (S4.1-S4.4). Thousands may come in one task (a burst
        before the lane's first task): each is decoded by `wire`, in constant time."""
        join = received(LaneJoin, raw, "join")
        if join is not None:
            self._join(join)

    def _join(self, join: LaneJoin) -> None:
        state = self._state
        if self._known(join.action_id):
            return  # a retried join activity delivers the same candidate again
        holder = join.holder
        if holder is not None and state.performing is None and not self._known(holder.action_id):
            # The key's claim holder performs without us (store/claims.py): it is the
            # performing action from now on, and releases to us. The verdict tells
            # it so — and if it already closed, the failed send frees the lane.
            state.performing = LaneEntry(
                action_id=holder.action_id,
                checksum_key=holder.checksum_key,
                checksum=holder.checksum,
            )
            self._send(holder.action_id, Verdict("perform"), grant=True)
        performing = state.performing
        if performing is not None and performing.action_id in join.ancestry:
            self._deadlock(join, performing)
            return
        shared = self._shareable(join)
        if shared is not None:
            shared.followers.append(join.action_id)
            self._send(join.action_id, Verdict("shared", by=shared.action_id))
            self._hand_over(join.action_id, shared.action_id, "shared")
            self._probe_shared(join.action_id, shared, join.dependent is not None)  # S4.9
            return
        candidate = LaneEntry(
            action_id=join.action_id,
            checksum_key=join.checksum_key,
            checksum=join.checksum,
            ancestry=list(join.ancestry),
            dependent=join.dependent,
        )
        self._stamp(candidate)
        self._place(join, candidate)  # by its lane policy (S4.10; lane_rules.py)
        # An idle lane lets its first candidate perform at once: a second join in
        # the same workflow task must queue behind it, not supersede it.
        self._grant_next()
        if self._state.pending and self._state.pending[-1] is candidate:
            self._probe_pending(candidate)  # S4.9: did this join close a cycle?

    @workflow.signal(name="release")
    def release_signal(self, raw: Json) -> None:
        """The performing action reached a final status (S4.5)."""
        release = received(LaneRelease, raw, "release")
        performing = self._state.performing
        if release is None:
            return
        if performing is None or performing.action_id != release.action_id:
            self._released_early(release.action_id)
            return
        self._state.performing = None
        self._conclude_entry(
            performing,
            Verdict(
                "resolved",
                by=release.action_id,
                status=release.status,
                successful=release.successful,
                error=release.error,
                completed_at=release.completed_at,
            ),
        )

    @workflow.signal(name="withdraw")
    def withdraw_signal(self, raw: Json) -> None:
        """A pending action was cancelled: it leaves the queue (S4.6)."""
        withdraw = received(LaneWithdraw, raw, "withdraw")
        if withdraw is None:
            return
        for entry in self._state.pending:
            if entry.action_id == withdraw.action_id:
                self._state.pending.remove(entry)
                self._send(entry.action_id, Verdict("withdrawn"))
                # its own parent is told by the action; the inherited ones by us
                self._conclude_entry(
                    entry,
                    Verdict("resolved", by=entry.action_id, status="cancelled", successful=False),
                )
                return
        self._withdrawn_elsewhere(withdraw.action_id)

    @workflow.signal(name="ping")
    def ping_signal(self, raw: Json) -> None:
        """An action checks the lane still holds what it waits for (lane_watch.py)."""
        ping = received(LanePing, raw, "ping")
        if ping is not None:
            self._pinged(ping)

    @workflow.signal(name="probe")
    def probe_signal(self, raw: Json) -> None:
        """A deadlock probe about one of our actions (S4.9, lane_probes.py)."""
        probe = received(Probe, raw, "probe")
        if probe is not None:
            self._probed(probe)

    @workflow.query
    def state(self) -> LaneState:
        """The lane's state: performing, pending, recently departed — without the
        messages still to send: after a burst of joins they run to megabytes, and
        a query answer past Temporal's payload limit fails the workflow task."""
        return replace(self._state, outbox=[])

    @workflow.query
    def view(self, shown: int) -> LaneView:
        """What `stepped.lane()` shows (S11.2): every count exact, at most `shown` ids
        — the first half and the latest half of the pending ones."""
        state = self._state
        ids = [entry.action_id for entry in state.pending]
        first, latest = halves(ids, shown)
        return LaneView(
            performing=state.performing.action_id if state.performing else None,
            pending_count=len(ids),
            pending_first=first,
            pending_latest=latest,
            handovers=list(state.handovers),
        )

    @workflow.query
    def pending_after(self, after: str | None, count: int) -> list[str]:
        """Up to `count` pending ids after `after` in lane order (all from the front
        when `after` is None or no longer pending): `stepped.lane_pending()` pages."""
        return ids_after([entry.action_id for entry in self._state.pending], after, count)

    # -- the loop ------------------------------------------------------------
    @workflow.run
    async def run(self, state: Json) -> Json:
        # a newer release's lane: leave it to a newer worker (fails the task only)
        refuse_unknown("lane", workflow.info().workflow_id, self._state.revision, LANE_REVISION)
        while True:
            self._grant_next()
            if self._history_is_long():
                # Unsent messages travel in the state, so a lane under a flood of
                # joins continues-as-new without first draining its outbox; only
                # the sends already under way must land first.
                await workflow.wait_condition(
                    lambda: self._in_flight == 0 and workflow.all_handlers_finished()
                )
                self._state.runs += 1
                # the next run is this release's: it keeps this run's numbers, and
                # one recorded before shapes takes this release's
                if self._state.shape.history_limit is None:
                    self._state.shape = CURRENT_LANE_SHAPE
                self._state.revision = LANE_REVISION
                workflow.continue_as_new(encode(self._state))
            self._dispatch()
            if self._quiet():
                if self._state.idle_seconds > 0:
                    await timers.wait_condition(
                        lambda: not self._idle() or bool(self._state.outbox),
                        timedelta(seconds=self._state.idle_seconds),
                        test_server=self._state.test_server,
                    )
                await workflow.wait_condition(workflow.all_handlers_finished)
                if self._quiet():
                    return encode(self._state)  # type: ignore[no-any-return]
                continue
            await workflow.wait_condition(
                lambda: (
                    self._sendable()
                    or (self._state.performing is None and bool(self._state.pending))
                    or self._history_is_long()
                    or self._quiet()
                )
            )

    def _grant_next(self) -> None:
        state = self._state
        if state.performing is None and state.pending:
            entry = state.pending.pop(0)
            state.performing = entry
            state.granted += 1
            self._send(entry.action_id, Verdict("perform"), grant=True)

    # -- the lane's own state --------------------------------------------------
    def _quiet(self) -> bool:
        """Idle, with nothing left to send."""
        return self._idle() and not self._state.outbox and self._in_flight == 0

    def _idle(self) -> bool:
        return self._state.performing is None and not self._state.pending

    def _history_is_long(self) -> bool:
        info = workflow.info()
        return (
            info.get_current_history_length() > self._history_limit
            or info.is_continue_as_new_suggested()
        )


__all__ = ["LANE_WORKFLOW", "LaneWorkflow"]
