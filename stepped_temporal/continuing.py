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

Inside a wide step (from `REVISION` 6, `STEP_REVISION`) it continues as new
too, when its history has passed `continue_events` and what the rest of the step
would add (about 4.5 events a child not started, two for each still open) would
take it past `ActionShape.step_events` (a fifth of the limit, where Temporal
warns). It stops starting children, waits until every child it started has
concluded — a child can only report its end to the run that started it — and
hands the rest of the step over in `StepResume`: the children not started yet
and the waits still running, re-armed for what is left of them. A step that fits
never pays for this.

A behaviour of `REVISION` 5 (`CONTINUING_REVISION`): inputs written before
never continue (their histories hold no continue-as-new), and a worker of an
older release refuses such inputs. From `REVISION` 6 a run also carries a
perform verdict it had (the lane adopted its claim) and never continues once
cancelled or completed from outside: it ends as that says.
"""

from __future__ import annotations

from dataclasses import replace
from typing import NoReturn

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from .action_run import ActionRun
    from .bounds import bounded
    from .dependencies import Dependencies
    from .messages import Resume, StepResume
    from .wire import encode

__all__ = [
    "CONTINUING_REVISION",
    "PAGED_REVISION",
    "STEP_REVISION",
    "continue_as_new",
    "due",
    "due_in_step",
]

#: the first `ActionInput.revision` that continues as new between steps
CONTINUING_REVISION = 5
#: the first that continues as new inside a step too
STEP_REVISION = 6
#: the first whose wide steps give their children in pages (step_pages.py)
PAGED_REVISION = 7


def due(action: ActionRun) -> bool:
    """The action's run should hand over to a new one before its next step."""
    if action.input.revision < CONTINUING_REVISION:
        return False
    info = workflow.info()
    return (
        info.get_current_history_length() >= action.input.shape.continue_events
        or info.is_continue_as_new_suggested()
    )


def due_in_step(action: ActionRun, dependencies: Dependencies, unstarted: int) -> bool:
    """The action's run should hand over to a new one before it starts the rest of
    the current step: `unstarted` children (see the module's docstring)."""
    if action.input.revision < STEP_REVISION:
        return False
    shape = action.input.shape
    info = workflow.info()
    events = info.get_current_history_length()
    if events < shape.continue_events:
        return False  # (a new run always gets this far: each run gets on with the step)
    ahead = (shape.child_events_x10 * unstarted + shape.open_events_x10 * dependencies.open) // 10
    return (
        events + ahead >= shape.step_events
        or info.get_current_history_size() >= shape.stop_bytes // 4
    )


async def continue_as_new(
    action: ActionRun, next_step: int, step: StepResume | None = None
) -> NoReturn:
    """End this run; a new one performs on from step `next_step` — from the middle
    of it with `step` (raises Temporal's `ContinueAsNewError`, which ends the run)."""
    await workflow.wait_condition(workflow.all_handlers_finished)
    if action.input.revision >= STEP_REVISION:
        # probes on their way to a successor (action_probes.forwarded) go first
        await workflow.wait_condition(lambda: not action.sending)
        if action.cancel_requested or action.completion is not None:
            # the next run would not know: stay, and let the action end as asked
            # (`ActionWorkflow._perform` stops this work)
            await workflow.wait_condition(lambda: False)
    prepared = action.prepared
    assert prepared is not None and action.performing_since is not None
    previous = action.input.resume
    resume = Resume(
        data=bounded(action.data),
        next_step=next_step,
        performing_since=action.performing_since.isoformat(),
        claimed=action.claimed,
        claim_released=action.claim_released,
        # (a lane that adopted the claim sent a perform verdict: the next run
        # must release to it as this one would)
        lane_owned=(
            action.adopted() if action.input.revision >= STEP_REVISION else action.lane_owned
        ),
        granted=action.granted,
        released_at=action.released_at,
        runs=(previous.runs if previous else 0) + 1,
        step=step,
    )
    workflow.logger.info(
        "action %s continues as new %s step %s (run %s, %s history events)",
        action.data.id,
        "inside" if step else "before",
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
