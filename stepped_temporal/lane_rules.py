"""The rules a lane applies to its candidates (S4.2-S4.4, S4.6, S4.10), as a mixin
of `LaneWorkflow`: state changes and outgoing messages only, no waiting.

Where a candidate goes is its own definition's lane policy (`LaneJoin.policy`,
S4.10): "supersede" (the gem's rule, S4.2) replaces every pending action with
the newest; "queue" appends, refusing a join beyond `max_pending`;
"cancel_in_progress" supersedes like "supersede" and also cancels the
performing action (S4.6: it ends cancelled and releases, so the newest performs
next); "skip_if_busy" refuses a join while anything performs or waits. A
refused candidate ends `cancelled` with the reason (`Verdict("refused")`);
the lane remembers it, so a retried join is ignored too.
"""

from __future__ import annotations

from collections import Counter

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from .faults import crash_point
    from .lane_messages import (
        Conclusion,
        Forward,
        Handover,
        LaneEntry,
        LaneJoin,
        LaneState,
        Outgoing,
        Verdict,
    )
    from .messages import Dependency, ErrorData
    from .wait_for import Probe

__all__ = ["COALESCED_FORWARDS", "EARLY_RELEASES", "HANDOVERS", "LaneRules"]

#: the patch id of `LaneRules._forward` merging forwards (histories before it sent each)
COALESCED_FORWARDS = "stepped-coalesced-forwards"
#: the patch id of `LaneRules._released_early` (histories before it ignored such releases)
EARLY_RELEASES = "stepped-early-releases"

#: how many superseded and shared actions a lane lists (`stepped.lane()`)
HANDOVERS = 50


class LaneRules:
    """What a lane does with joins, handovers and endings (the workflow owns the loop)."""

    _state: LaneState
    #: `state.recent` as counts, for a join's "seen it?" in constant time
    _recent: Counter[str]
    #: the forwards in the outbox, by (workflow id, dependency id): see `_forward`
    _unsent_forwards: dict[tuple[str, str], Outgoing]

    def _place(self, join: LaneJoin, candidate: LaneEntry) -> None:
        """S4.10: the candidate's place in the lane, by its definition's policy."""
        state = self._state
        if join.policy == "skip_if_busy" and (state.performing or state.pending):
            busy = state.performing.action_id if state.performing else state.pending[0].action_id
            self._refuse(
                join,
                "LaneBusy",
                f"lane {state.key!r} is busy with {busy}: action {join.action_id} "
                f"(lane='skip_if_busy') does not wait",
            )
            return
        if join.policy == "queue":
            if join.max_pending is not None and len(state.pending) >= join.max_pending:
                self._refuse(
                    join,
                    "LaneFull",
                    f"lane {state.key!r} is full: {len(state.pending)} pending "
                    f"(max_pending={join.max_pending}), action {join.action_id} refused",
                )
                return
            state.pending.append(candidate)
            return
        for superseded in state.pending:
            self._supersede(superseded, candidate)
        state.pending = [candidate]
        performing = state.performing
        if join.policy == "cancel_in_progress" and performing and not performing.cancelling:
            performing.cancelling = True
            self._state.outbox.append(Outgoing(performing.action_id, cancel=True))
            self._hand_over(performing.action_id, candidate.action_id, "cancelled")

    def _refuse(self, join: LaneJoin, error_type: str, message: str) -> None:
        workflow.logger.warning("lane %s: %s", self._state.key, message)
        self._send(join.action_id, Verdict("refused", error=ErrorData(error_type, message)))
        self._remember(join.action_id)

    def _known(self, action_id: str) -> bool:
        state = self._state
        if state.performing is not None and state.performing.action_id == action_id:
            return True
        return self._recent[action_id] > 0 or any(e.action_id == action_id for e in state.pending)

    def _shareable(self, join: LaneJoin) -> LaneEntry | None:
        """S4.3: the performing or a pending action with the same checksum_key and checksum."""
        if join.checksum is None:
            return None
        for entry in [self._state.performing, *self._state.pending]:
            if (
                entry is not None
                and entry.checksum == join.checksum
                and entry.checksum_key == join.checksum_key
            ):
                return entry
        return None

    def _supersede(self, superseded: LaneEntry, candidate: LaneEntry) -> None:
        """S4.2: the candidate takes over every dependency of the superseded action."""
        self._send(superseded.action_id, Verdict("superseded", by=candidate.action_id))
        crash_point("supersede-handover")  # tests only (faults.py): ends the process
        moved = ([superseded.dependent] if superseded.dependent else []) + superseded.inherited
        for dependency in moved:
            self._forward(dependency, candidate.action_id)
        candidate.inherited.extend(moved)
        candidate.followers.extend(superseded.followers)
        candidate.follower_joined.update(superseded.follower_joined)
        self._remember(superseded.action_id)
        self._hand_over(superseded.action_id, candidate.action_id, "superseded")

    def _forward(self, dependency: Dependency, successor: str) -> None:
        """S4.2: the dependency's step now waits on `successor`. Every supersede
        moves every dependency the lane holds, so a lane with n waiting parents
        owes n forwards per join: one still unsent to the same dependency takes
        the new successor instead (`via` keeps the ones in between, for the
        step's list), so a burst costs one signal per dependency, not n²/2."""
        key = (dependency.workflow_id, dependency.dependency_id)
        unsent = self._unsent_forwards.get(key)
        lane = workflow.info().workflow_id  # the parent checks on us (lane_checks.py)
        if not workflow.patched(COALESCED_FORWARDS):  # as histories before it recorded
            message = Outgoing.of(key[0], Forward(key[1], successor, lane=lane))
            self._state.outbox.append(message)
            self._unsent_forwards[key] = message
            return
        if unsent is not None and unsent.forward:
            before = unsent.forward
            via = [*before.via, before.successor]
            unsent.forward = Forward(key[1], successor, via, lane=lane)
            return
        message = Outgoing.of(key[0], Forward(key[1], successor, lane=lane))
        self._state.outbox.append(message)
        self._unsent_forwards[key] = message

    def _sent(self, message: Outgoing) -> None:
        """`message` left the outbox: a later forward to its dependency is a new one."""
        forward = message.forward
        if forward is not None:
            key = (message.workflow_id, forward.dependency_id)
            if self._unsent_forwards.get(key) is message:
                del self._unsent_forwards[key]

    def _hand_over(self, action_id: str, to: str, how: str) -> None:
        """Keep the latest handovers for `stepped.lane()` (S9.5)."""
        self._state.handovers.append(Handover(action_id, to, how))
        del self._state.handovers[:-HANDOVERS]

    def _deadlock(self, join: LaneJoin, performing: LaneEntry) -> None:
        """S4.4: a descendant of the performing action can never perform here."""
        message = (
            f"action {join.action_id} joined lane {self._state.key!r}, where its ancestor "
            f"{performing.action_id} is performing: it would wait for itself"
        )
        workflow.logger.error("Deadlock: %s", message)
        self._send(join.action_id, Verdict("deadlocked", message=message))

    def _conclude_entry(self, entry: LaneEntry, outcome: Verdict) -> None:
        """Tell everyone the lane holds for `entry` how it ended."""
        for dependency in entry.inherited:
            self._send(
                dependency.workflow_id,
                Conclusion(dependency.dependency_id, entry.action_id, outcome.successful),
            )
        for follower in entry.followers:
            self._send(follower, outcome)
        self._remember(entry.action_id)

    def _released_early(self, action_id: str) -> None:
        """A release from an action the lane does not hold as performing: a key's
        claim holder that ended before a join told the lane of it (the join is
        sent after its transaction commits, store/claims.py). Remembered, so that
        join does not adopt it as performing — it would wait for it for ever."""
        if not self._known(action_id) and workflow.patched(EARLY_RELEASES):
            self._remember(action_id)

    def _remember(self, action_id: str) -> None:
        recent = self._state.recent
        recent.append(action_id)
        self._recent[action_id] += 1
        if len(recent) > self._state.shape.recent:
            self._recent[recent.pop(0)] -= 1

    def _send(
        self,
        workflow_id: str,
        payload: Verdict | Forward | Conclusion | Probe,
        *,
        grant: bool = False,
    ) -> None:
        self._state.outbox.append(Outgoing.of(workflow_id, payload, grant=grant))
