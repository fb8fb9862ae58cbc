"""A lane's part in finding deadlocks across trees (S4.9), as a mixin of
`LaneWorkflow`: state changes and outgoing messages only, no waiting.

The protocol and why it is sound are in `wait_for`. A lane starts a probe when
it places a candidate that someone waits on behind a performer, or shares it
with an action; it extends a probe that reached one of its pending actions or
followers with that edge; it checks its pending actions' edges on the confirm
pass (a follower checks its own); and, asked
to break a confirmed cycle, deadlocks the victim if it still waits here — with
everything the lane holds for it concluding unsuccessfully, as for S4.4.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from .lane_messages import LaneEntry, Verdict
    from .lane_watch import LaneWatch
    from .messages import ErrorData
    from .wait_for import BREAK, CONFIRM, PENDING, SHARED, Hop, Probe, stamp

__all__ = ["PROBES", "LaneProbes"]

#: the patch id of the probes a lane starts (histories before it sent none)
PROBES = "stepped-deadlock-probes"


class LaneProbes(LaneWatch):
    """What a lane does with deadlock probes (the workflow owns the loop)."""

    def _stamp(self, entry: LaneEntry) -> None:
        entry.joined_at = stamp(workflow.now())

    def _probe_pending(self, candidate: LaneEntry) -> None:
        """S4.9: a candidate someone waits on now waits for the performer."""
        performing = self._state.performing
        if performing is None or performing is candidate:
            return
        if candidate.dependent is None and not candidate.inherited:
            return  # nobody waits on it: no cycle can run through it
        key = self._state.key
        self._start_probe(
            Hop(candidate.action_id, PENDING, performing.action_id, key, candidate.joined_at)
        )

    def _probe_shared(self, follower: str, shared: LaneEntry, waited_on: bool) -> None:
        """S4.9: a follower someone waits on now waits for the action it shares."""
        joined_at = shared.follower_joined[follower] = stamp(workflow.now())
        if waited_on:
            key = self._state.key
            self._start_probe(Hop(follower, SHARED, shared.action_id, key, joined_at))

    def _start_probe(self, first: Hop) -> None:
        if workflow.patched(PROBES):
            self._send(first.to, Probe(first.action_id, [first]))

    def _probed(self, probe: Probe) -> None:
        """A probe for this lane: extend, confirm or break (see the module docstring)."""
        if not probe.well_formed(self._state.shape.max_hops):
            workflow.logger.warning("lane %s: probe dropped: %r", self._state.key, probe)
        elif probe.phase == CONFIRM:  # (pending hops: the others are their actions')
            if probe.path[probe.at].kind == PENDING and self._holds(probe.path[probe.at]):
                self._send(*probe.next_owner())
        elif probe.phase == BREAK:
            victim = probe.path[probe.at]
            if victim == probe.victim() and self._holds(victim):
                self._break(victim, probe.describe())
        else:
            self._extend(probe)

    def _extend(self, probe: Probe) -> None:
        """SEEK: the probe reached one of our actions; send it on to whom it waits for."""
        state = self._state
        member = probe.path[-1].to
        pending = next((e for e in state.pending if e.action_id == member), None)
        if pending is not None and state.performing is not None:
            to = state.performing.action_id
            hop = Hop(member, PENDING, to, state.key, pending.joined_at)
        else:
            shared = self._sharing(member)
            if shared is None:
                return  # it left meanwhile: that edge is gone
            joined_at = shared.follower_joined.get(member)
            hop = Hop(member, SHARED, shared.action_id, state.key, joined_at)
        if not probe.visits(hop.action_id):
            self._send(hop.to, probe.extended(hop))

    def _holds(self, hop: Hop) -> bool:
        """Whether the edge `hop` is still there, in this lane."""
        state = self._state
        if hop.key != state.key:
            return False
        if hop.kind == PENDING:
            performing = state.performing
            return (
                performing is not None
                and performing.action_id == hop.to
                and any(e.action_id == hop.action_id for e in state.pending)
            )
        shared = self._sharing(hop.action_id)
        return hop.kind == SHARED and shared is not None and shared.action_id == hop.to

    def _sharing(self, follower: str) -> LaneEntry | None:
        for entry in [self._state.performing, *self._state.pending]:
            if entry is not None and follower in entry.followers:
                return entry
        return None

    def _break(self, victim: Hop, cycle: str) -> None:
        """The victim of a confirmed cycle is deadlocked (S4.9); whoever the lane
        holds for it concludes unsuccessfully, as when it leaves by cancel."""
        state = self._state
        workflow.logger.error("Deadlock: %s", cycle)
        self._send(victim.action_id, Verdict("deadlocked", message=cycle))
        if victim.kind == SHARED:
            shared = self._sharing(victim.action_id)
            assert shared is not None
            shared.followers.remove(victim.action_id)
            shared.follower_joined.pop(victim.action_id, None)
            return
        entry = next(e for e in state.pending if e.action_id == victim.action_id)
        state.pending.remove(entry)
        error = ErrorData("Deadlock", cycle)
        self._conclude_entry(
            entry,
            Verdict("resolved", by=entry.action_id, status="deadlocked", error=error),
        )
