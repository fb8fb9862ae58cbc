"""A pending action's turn in its lane: it waits for the lane's verdict and acts
on it (S3.5, S4.1-S4.4, S4.6, S4.9).

The lane decides: perform, superseded (final at once), shared (mirror the
action shared with), deadlocked, withdrawn (after our own withdraw, when
the action is cancelled while pending) or refused (its lane policy, S4.10).
While it waits, the action checks that its lane still holds it
(`lane_checks`): a lane that is gone — "lost", or closed — ends it cancelled.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from .action_run import ActionRun
    from .endings import Ending
    from .lane_checks import LANE_GONE, lane_gone, wait_checking
    from .lane_messages import LaneWithdraw, Verdict
    from .messages import ErrorData
    from .workflow_support import now

__all__ = ["take_turn"]

#: what ends an action that shares another's result (S4.3, S4.9, lane_checks)
_ENDS_SHARING = ("resolved", "deadlocked", "lost")


async def take_turn(action: ActionRun, perform: Callable[[], Awaitable[Ending]]) -> Ending | None:
    """Wait in the lane as pending, then `perform` or end as the lane decides.
    Returns how to finish the action, or None when it is final already."""
    withdrawing = False

    # The lane sends its signals concurrently, and Temporal may deliver two to us
    # in either order: a "resolved" can overtake the "shared" it follows, so it
    # stays in the list for `_follow` instead of being taken as a turn.
    def turn() -> Verdict | None:
        return next((v for v in action.verdicts if v.kind != "resolved"), None)

    def awaited() -> bool:  # a verdict, or a cancel the lane has not been told of
        return turn() is not None or (action.cancel_requested and not withdrawing)

    while True:
        if not await wait_checking(action, awaited):
            lane_gone(action)
            return Ending("cancelled", release=False)
        verdict = turn()
        if verdict is None:
            withdrawing = True
            withdrawn = await action.signal_lane("withdraw", LaneWithdraw(action.data.id))
            if not withdrawn and workflow.patched(LANE_GONE):
                return Ending("cancelled", release=False)  # its lane is closed: nobody to tell
            continue
        action.verdicts.remove(verdict)
        if verdict.kind == "perform":
            return await perform()
        if verdict.kind == "superseded":
            _end_superseded(action, verdict.by)
            return None
        if verdict.kind == "withdrawn":
            return Ending("cancelled", release=False)
        if verdict.kind == "refused":  # S4.10: the lane's policy turned us away
            action.data.error = verdict.error
            workflow.logger.warning("action %s refused by its lane: %s", action.data.id, verdict)
            return Ending("cancelled", release=False)
        if verdict.kind == "deadlocked":
            return _deadlocked(action, verdict)
        if verdict.kind == "shared":
            return await _follow(action, verdict.by)
        if verdict.kind == "lost":  # its lane run does not hold it (lane_watch)
            lane_gone(action, verdict.message)
            return Ending("cancelled", release=False)


def _deadlocked(action: ActionRun, verdict: Verdict) -> Ending:
    """Deadlocked (S4.4, S4.9): it never performs; its parent step fails."""
    action.data.error = ErrorData("Deadlock", verdict.message or "deadlock")
    workflow.logger.error("action %s deadlocked: %s", action.data.id, verdict.message)
    return Ending("deadlocked", release=False, callbacks=False)


def _end_superseded(action: ActionRun, by: str | None) -> None:
    """Superseded (S4.2): final at once; the lane moved our dependents to `by`."""
    data = action.data
    data.status = "superseded"
    data.resolved_by = by
    data.completed_at = now()


async def _follow(action: ActionRun, shared_with: str | None) -> Ending | None:
    """Shared (S4.3): mirror the final result of the action we share with."""
    data = action.data
    data.resolved_by = shared_with
    ended = await wait_checking(
        action,
        lambda: action.cancel_requested or any(v.kind in _ENDS_SHARING for v in action.verdicts),
    )
    resolved = next((v for v in action.verdicts if v.kind == "resolved"), None)
    if resolved is None:
        deadlocked = next((v for v in action.verdicts if v.kind == "deadlocked"), None)
        if deadlocked is not None:  # S4.9: sharing closed a cycle of waits
            return _deadlocked(action, deadlocked)
        lost = next((v for v in action.verdicts if v.kind == "lost"), None)
        if not ended or lost is not None:  # its lane is gone (lane_checks)
            lane_gone(action, lost.message if lost else None)
        return Ending("cancelled", release=False, callbacks=False)
    data.status = resolved.status or "failed"
    data.error = resolved.error
    data.resolved_by = resolved.by or shared_with
    data.completed_at = now()
    data.successful = resolved.successful
    return None
