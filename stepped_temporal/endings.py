"""How an action ends: `Ending` and `finish`, in the workflow (S3.1, S3.9, S4.5, S4.6).

The finish activity (`finishing.py`) runs the after-callbacks, grants the
achievement and gives up a claimed key — only what the last step did not
settle already, and as a local activity when no callback runs (`revision` 1);
then the lane hears the action is done, so the next pending action performs.
Parents are told by the lane or by the child's own end (`ChildStarts`), not here.
"""

from __future__ import annotations

import asyncio
from dataclasses import KW_ONLY, dataclass
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from .action_run import ActionRun
    from .lane_messages import LaneRelease
    from .search_attributes import STATUS
    from .unit_messages import FinishInput, FinishOutcome
    from .wire import decode, encode
    from .workflow_support import SYSTEM_RETRY, run_activity

__all__ = ["LATE_ADOPTION", "Ending", "answer_late_adoption", "finish"]

#: the patch id of `answer_late_adoption` (histories before it ignored such verdicts)
LATE_ADOPTION = "stepped-late-adoption"


@dataclass(frozen=True)
class Ending:
    """How an action ends: its final status and what finishing it involves."""

    status: str
    _: KW_ONLY
    #: tell the lane (or give up the claim): the action held its key
    release: bool
    #: run the after-callbacks of `status` (S3.9)
    callbacks: bool = True
    #: grant the achievement on success (S3.9)
    grant: bool = True


async def finish(action: ActionRun, ending: Ending) -> None:
    """Complete with a final status (S3.9): callbacks, achievement, lane."""
    data = action.data
    status = ending.status
    data.status = status
    if action.input.revision >= 1:  # the status describe() gives from now on
        action.upsert(STATUS.value_set(status))
    data.completed_at = action.released_at or action.now()
    prepared = action.prepared
    run_callbacks = (
        ending.callbacks and prepared is not None and status in prepared.callback_statuses
    )
    grant = (
        ending.grant and status == "succeeded" and data.checksum is not None and not action.granted
    )
    release_claim = ending.release and action.claimed and not action.claim_released
    failed_callbacks = 0
    if run_callbacks or grant or release_claim:
        finishing = encode(
            FinishInput(
                action.context(), status, grant_achievement=grant, release_claim=release_claim
            )
        )
        timeout = timedelta(seconds=prepared.activity_timeout if prepared else 600.0)
        # Only books to keep (give the key up, grant; idempotent statements): a
        # local activity — a marker in this task, not three events and another
        # task — as a parent whose children ended needs (a chain of actions pays
        # this at every level).
        raw = await run_activity(
            "stepped_finish",
            finishing,
            local=action.input.revision >= 1 and not run_callbacks,
            timeout=timeout,
            heartbeat_timeout=prepared.heartbeat_timeout if prepared else None,
            retry=SYSTEM_RETRY,
        )
        outcome = decode(FinishOutcome, raw)
        failed_callbacks = outcome.failed
        action.lane_owned = action.lane_owned or outcome.lane_owned
        if run_callbacks:
            # like the gem's counters: None until something is counted (S3.9)
            data.after_callbacks_succeeded_count = outcome.succeeded or None
            data.after_callbacks_failed_count = outcome.failed or None
    data.successful = status == "succeeded" and failed_callbacks == 0
    # A claimed action tells the lane only if the lane took it over (the
    # release found the key contended, or the lane's perform verdict came).
    if ending.release and (not action.claimed or action.adopted()):
        action.release = LaneRelease(
            data.id, status, data.successful, data.error, data.completed_at
        )
        await action.signal_lane("release", action.release)


def answer_late_adoption(action: ActionRun) -> None:
    """A lane's perform verdict reached an action that has released its key already:
    a claim holder whose release beat the join that told the lane about it (and
    found no lane run, or one that missed it: store/claims.py). Release again, or
    the lane would wait for it for ever."""
    if action.release is not None and workflow.patched(LATE_ADOPTION):
        task = asyncio.ensure_future(action.signal_lane("release", action.release))
        action.sending.add(task)
        task.add_done_callback(action.sending.discard)
