"""An action of any number of steps: it continues as new between steps (S11.1, S11.5).

A performing action's history grows with every step (about six events, two to
five more per wait, about 4.3 per child). Past `ActionShape.continue_events`
(a tenth of the cluster's history limit: well inside Temporal's warning at a
fifth) or when the server suggests it, the action continues as new before its
next step begins. Nothing is open then — every child and wait of the step
before has concluded — so the next run needs only what `Resume` carries: the
state `describe()` shows (each step's ids bounded, S11.2), the step to begin
with, when it began performing (its timeout counts from there) and how it
holds its key. Its input keeps what prepare found, so it never prepares again.

Everything outside addresses the action by workflow id, which the next run
keeps: the lane's verdicts, a parent's child handle (it follows the chain to
the last run's result), `describe()`, `complete()`, `cancel()`, `result()`.

A behaviour of `REVISION` 5 (`CONTINUING_REVISION`): inputs written before
never continue (their histories hold no continue-as-new), and a worker of an
older release refuses such inputs.
"""

from __future__ import annotations

from dataclasses import replace
from typing import NoReturn

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from .action_run import ActionRun
    from .bounds import bounded
    from .messages import Resume
    from .wire import encode

__all__ = ["CONTINUING_REVISION", "continue_as_new", "due"]

#: the first `ActionInput.revision` that continues as new between steps
CONTINUING_REVISION = 5


def due(action: ActionRun) -> bool:
    """The action's run should hand over to a new one before its next step."""
    if action.input.revision < CONTINUING_REVISION:
        return False
    info = workflow.info()
    return (
        info.get_current_history_length() >= action.input.shape.continue_events
        or info.is_continue_as_new_suggested()
    )


async def continue_as_new(action: ActionRun, next_step: int) -> NoReturn:
    """End this run; a new one performs on from step `next_step` (raises Temporal's
    `ContinueAsNewError`, which ends the workflow's run)."""
    await workflow.wait_condition(workflow.all_handlers_finished)
    prepared = action.prepared
    assert prepared is not None and action.performing_since is not None
    previous = action.input.resume
    resume = Resume(
        data=bounded(action.data),
        next_step=next_step,
        performing_since=action.performing_since.isoformat(),
        claimed=action.claimed,
        claim_released=action.claim_released,
        lane_owned=action.lane_owned,
        granted=action.granted,
        released_at=action.released_at,
        runs=(previous.runs if previous else 0) + 1,
    )
    workflow.logger.info(
        "action %s continues as new before step %s (run %s, %s history events)",
        action.data.id,
        next_step,
        resume.runs + 1,
        workflow.info().get_current_history_length(),
    )
    input = replace(
        action.input,
        # (its first step's outcome, children and all, is long settled)
        prepared=replace(prepared, first_step=None),
        resume=resume,
        report_joined=False,
    )
    # the attributes as upserted so far (the status, the key): Temporal's servers
    # differ in what they carry over when a continue-as-new names none
    attributes = workflow.info().typed_search_attributes
    workflow.continue_as_new(encode(input), search_attributes=attributes or None)
