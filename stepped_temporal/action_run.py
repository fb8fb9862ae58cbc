"""`ActionRun`: one action as its workflow holds it while it runs (S3.1, S6.1, S9.2).

`ActionData` is what `describe()` reports (S9.2); an `ActionRun` adds what
only the workflow needs: its input, what prepare found, the messages it was
sent (lane verdicts, cancel, an outside completion) and how it holds its key.
The workflow's handlers write it; the modules that perform, wait in the lane
and finish read it — one state, the way a lane keeps its state in `LaneState`.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate

with workflow.unsafe.imports_passed_through():
    from .lane_messages import LaneRelease, Verdict
    from .messages import ActionContext, ActionData, ActionInput, ErrorData, Prepared
    from .wait_for import Probe
    from .workflow_support import signal

__all__ = ["COMPLETED_FROM_OUTSIDE", "ActionRun", "initial_data"]

#: the error type of an action completed from outside with a reason (S9.6)
COMPLETED_FROM_OUTSIDE = "CompletedFromOutside"


def initial_data(input: ActionInput) -> ActionData:
    """The action as it starts: pending, as its input gave it."""
    return ActionData(
        id=input.action_id,
        actor_type=input.actor_type,
        actor_id=input.actor_id,
        name=input.name,
        arguments=list(input.arguments),
        root=input.parent is None,
        parent_id=input.parent.workflow_id if input.parent else None,
    )


class ActionRun:
    """The state of one action workflow: its `ActionData` and what only the workflow knows."""

    def __init__(self, input: ActionInput) -> None:
        self.input = input
        resume = input.resume  # an earlier run continued as new (continuing.py)
        self.data = resume.data if resume else initial_data(input)
        #: what prepare found (None until it ran)
        self.prepared: Prepared | None = input.prepared if resume else None
        #: when it began performing, on the workflow's clock (its timeout counts from it)
        self.performing_since = datetime.fromisoformat(resume.performing_since) if resume else None
        #: the lane's verdicts not acted on yet, in the order they came
        self.verdicts: list[Verdict] = []
        self.cancel_requested = False
        #: `_perform` is stopping the work (cancelled, completed from outside, timed out)
        self.interrupting = False
        #: the status an outside `complete()` asked for (S6), and why (S9.6)
        self.completion: str | None = None
        self.completion_reason: str | None = None
        #: it holds its key by claim (store/claims.py), not through the lane workflow
        self.claimed = bool(resume and resume.claimed)
        self.claim_released = bool(resume and resume.claim_released)
        #: the lane workflow counts this claimed action as performing: release to it
        self.lane_owned = bool(resume and resume.lane_owned)
        #: the last step granted the achievement (S3.9) itself
        self.granted = bool(resume and resume.granted)
        #: it was skipped as achieved (S3.4), at prepare or when its turn came
        self.achieved = False
        #: when the last step gave up the claim (its end, as the next holder sees it)
        self.released_at: str | None = resume.released_at if resume else None
        #: the release it sent its lane as it ended (`endings.finish`)
        self.release: LaneRelease | None = None
        #: the deadlock probes it passed on, by origin, oldest first (S4.9)
        self.probed: dict[str, Probe] = {}
        #: probes under way to a successor, kept referenced until sent
        self.sending: set[asyncio.Future[bool]] = set()
        #: probes it may have under way at once, once `BOUNDED_PROBES` holds (action_probes)
        self.probe_window: asyncio.Semaphore | None = None
        #: the timer of the action's next check on its lane (lane_checks.py), and the
        #: task checking the lanes its forwarded dependencies wait in
        self.check_alarm: asyncio.Future[None] | None = None
        self.check_every = 0.0
        self.forwards_check: asyncio.Future[None] | None = None
        #: search-attribute updates waiting for the next upsert (`upsert`)
        self._pending_upserts: list[SearchAttributeUpdate[str]] = []
        self._shown: dict[str, object] = {}

    def context(self) -> ActionContext:
        """What an activity serving this action needs to know about it, as of now."""
        data = self.data
        return ActionContext(
            action_id=data.id,
            actor_type=data.actor_type,
            actor_id=data.actor_id,
            name=data.name,
            arguments=data.arguments,
            root=data.root,
            outbound=data.outbound,
            checksum=data.checksum,
            checksum_key=data.checksum_key,
            concurrency_key=data.concurrency_key,
            status=data.status,
        )

    def now(self) -> str:
        """The time to give `ActionData` (deterministic): the workflow's, but never
        before what prepare stamped. A local prepare runs inside the workflow task,
        whose clock stands still meanwhile, so a step that ran there ended after
        the time the workflow sees until its next task."""
        current = workflow.now()
        prepared = self.prepared
        stamped = prepared and (prepared.first_step_completed_at or prepared.first_step_started_at)
        if stamped:
            current = max(current, datetime.fromisoformat(stamped))
        return current.isoformat()

    def upsert(self, update: SearchAttributeUpdate[str], *, later: bool = False) -> None:
        """Update one of Stepped's search attributes, when the action keeps them (S9.3).

        Each upsert is a command and a history event. With `revision` 1
        (every input written now), an update marked `later` waits for the next
        upsert and travels with it: a leaf whose first step ran in prepare
        upserts once, at its end, as a hand-written workflow would. Inputs
        written before keep one upsert per call, as their histories recorded.
        """
        if not self.input.search_attributes:
            return
        if self.input.revision >= 1:
            if later:
                self._pending_upserts.append(update)
                return
            if not self._pending_upserts and self._shown.get(update.key.name) == update.value:
                return  # shown already (a final status set as the action finished)
            self._shown[update.key.name] = update.value
        workflow.upsert_search_attributes([*self._pending_upserts, update])
        self._pending_upserts.clear()

    async def signal_lane(self, name: str, payload: Any) -> bool:
        """Send the action's lane workflow a message (a withdraw, a check, a release);
        False when the lane workflow is closed."""
        prepared = self.prepared
        assert prepared is not None and prepared.lane_id is not None
        return await signal(prepared.lane_id, name, payload)

    def adopted(self) -> bool:
        """The lane workflow took this action over: it said so when a claimed action's
        release found the key contended (`lane_owned`), or sent a perform verdict."""
        return self.lane_owned or any(v.kind == "perform" for v in self.verdicts)

    def completion_error(self) -> ErrorData | None:
        """The error of an action completed from outside with an unsuccessful status
        and a reason (S9.6)."""
        if self.completion in (None, "succeeded") or not self.completion_reason:
            return None
        return ErrorData(COMPLETED_FROM_OUTSIDE, self.completion_reason)

    def interruption(self, timed_out: bool) -> str:
        """The status of a performance interrupted from outside: completed (S6.1),
        cancelled (S4.6) or timed out (S7.1)."""
        if self.completion is not None:
            return self.completion
        if self.cancel_requested:
            return "cancelled"
        assert timed_out
        workflow.logger.warning("action %s timed out", self.data.id)
        return "timed_out"
