"""A lane's answers to the actions that check on it (S4.6, S4.7; issue 27: no action
waits on a lane that is gone), as a mixin of `LaneWorkflow`: state changes and
outgoing messages only, no waiting.

An action waiting in a lane — pending, or shared with another action — and a
parent whose dependency the lane moved to a successor (S4.2) wait for a message
only the lane can send. If the lane run is terminated, fails or is reset, that
message never comes. So they ask now and then (`lane_checks`): a lane that
still holds what they wait for says nothing; one that does not (a new run
started after the old was terminated, a reset to before their join) answers
"lost" to the action, or concludes each such dependency unsuccessfully. A
lane that is closed cannot answer: the asker's signal fails, which tells it
the same. The lane speaks to each recipient in order (`lane_outbox`), so an
answer never overtakes a verdict or conclusion the lane made earlier.

A withdraw (a pending action cancelled) from an action the lane does not hold
is answered "withdrawn" for the same reason. Histories recorded before these
answers carry no `LANE_WATCH` marker and replay without them.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from .lane_messages import Conclusion, LanePing, Verdict
    from .lane_rules import LaneRules

__all__ = ["LANE_WATCH", "LaneWatch"]

#: the patch id of a lane answering checks and withdraws about what it does not hold
LANE_WATCH = "stepped-lane-watch"


class LaneWatch(LaneRules):
    """What a lane answers to checks (the workflow owns the loop)."""

    def _pinged(self, ping: LanePing) -> None:
        """Answer a check about what the lane does not hold (see the module docstring)."""
        if not workflow.patched(LANE_WATCH):
            return  # a history recorded before: nobody answered (the signal had no handler)
        asker = ping.action_id
        if ping.forwards:
            held = self._held_dependencies(asker)
            for forward in ping.forwards:
                if forward.dependency_id not in held:
                    workflow.logger.warning(
                        "lane %s does not hold dependency %s of %s (on %s): concluded "
                        "unsuccessfully",
                        self._state.key,
                        forward.dependency_id,
                        asker,
                        forward.successor,
                    )
                    self._send(asker, Conclusion(forward.dependency_id, forward.successor, False))
            return
        if not self._holds_action(asker):
            self._send(asker, Verdict("lost", message=self._lost(asker)))

    def _withdrawn_elsewhere(self, action_id: str) -> None:
        """A withdraw from an action that is not pending here: if the lane does not hold
        it at all (it was lost with an earlier run), it may leave."""
        if not self._holds_action(action_id) and workflow.patched(LANE_WATCH):
            self._send(action_id, Verdict("withdrawn"))

    def _holds_action(self, action_id: str) -> bool:
        """Whether `action_id` performs here, waits here, or shares an action here."""
        state = self._state
        for entry in [state.performing, *state.pending]:
            if entry is not None and (entry.action_id == action_id or action_id in entry.followers):
                return True
        return False

    def _held_dependencies(self, workflow_id: str) -> set[str]:
        """The dependencies of `workflow_id` the lane still answers for: held by an
        action here, or concluded or forwarded by a message not yet sent."""
        state = self._state
        held: set[str] = set()
        for entry in [state.performing, *state.pending]:
            if entry is None:
                continue
            for dependency in [entry.dependent, *entry.inherited]:
                if dependency is not None and dependency.workflow_id == workflow_id:
                    held.add(dependency.dependency_id)
        for message in state.outbox:
            carried = message.conclusion or message.forward
            if message.workflow_id == workflow_id and carried is not None:
                held.add(carried.dependency_id)
        return held

    def _lost(self, action_id: str) -> str:
        key = self._state.key
        return (
            f"lane {key!r} ({workflow.info().workflow_id}) does not hold action {action_id}: "
            f"the lane run it joined was terminated, failed or reset while it waited "
            f"there; it ends cancelled (start it again if it is still needed)"
        )
