"""`StepWaiting`: what a step waits on — the children and waits it asked for, until
every one concluded (S3.7, S3.12) — and, in a step too wide for one history, the
hand-over to the next run part way through (S11.1, `continuing`).

Children start through `ChildStarts`; from `REVISION` 6 it asks, before each one,
whether the run should continue as new first (`continuing.due_in_step`). Then no
more start: once every child started has concluded (only the run that started a
child hears its end), the rest of the step — the children not started, the waits
still running — goes to the next run in `StepResume`, and `resume` takes it up.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from . import continuing
    from .action_run import ActionRun
    from .child_starts import ChildStarts, new_child_id
    from .dependencies import Dependencies
    from .messages import ChildIntent, OpenWait, StepData, StepOutcome, StepResume

__all__ = ["StepWaiting"]


class StepWaiting:
    """Starts what one step at a time asked for and waits until all of it concluded."""

    def __init__(self, action: ActionRun, dependencies: Dependencies) -> None:
        self._action = action
        self._dependencies = dependencies
        self._children = ChildStarts(action, dependencies)
        #: when each wait of the current step elapses, by id
        self._until: dict[str, datetime] = {}

    async def wait(self, step: StepData, outcome: StepOutcome) -> None:
        """Start the children and timers a step asked for; wait until all concluded (S3.7)."""
        waits = [(f"wait/{step.index}/{n}", seconds) for n, seconds in enumerate(outcome.waits)]
        step.waits.extend(outcome.waits)
        await self._wait_on(step, outcome.children, 0, outcome.join_after, waits, outcome)

    async def resume(self, step: StepData, rest: StepResume) -> None:
        """Go on with a step an earlier run began: start the children it had not
        started, wait for them and for what is left of its waits (S11.1)."""
        now = workflow.now()
        waits = [
            (wait.wait_id, max(0.0, (datetime.fromisoformat(wait.until) - now).total_seconds()))
            for wait in rest.waits
        ]
        await self._wait_on(step, rest.children, rest.first_number, rest.join_after, waits, rest)

    async def _wait_on(
        self,
        step: StepData,
        intents: list[ChildIntent],
        first_number: int,
        join_after: list[list[int]] | None,
        waits: list[tuple[str, float]],
        asked: StepOutcome | StepResume,
    ) -> None:
        action = self._action
        dependencies = self._dependencies
        children: list[tuple[str, ChildIntent]] = []
        for offset, intent in enumerate(intents):
            child_id = new_child_id(intent)
            # listed in `step.actions` once Temporal started it (so it can be described)
            dependencies.add(child_id, step.index, first_number + offset)
            children.append((child_id, intent))
        self._until = {}
        for wait_id, seconds in waits:
            dependencies.add(wait_id, step.index, child=False)
            self._until[wait_id] = workflow.now() + timedelta(seconds=seconds)
        step.pending_actions_count = len(children) + len(waits)
        tasks = [asyncio.ensure_future(self._wait(wait_id, s)) for wait_id, s in waits]
        pause = None
        if action.input.revision >= continuing.STEP_REVISION:

            def pause(unstarted: int) -> bool:
                return continuing.due_in_step(action, dependencies, unstarted)

        tasks += await self._children.start(children, join_after, pause)
        paused_at = self._children.paused_at
        if paused_at is not None:
            await self._continue(step, intents, first_number, join_after, paused_at, asked)
        if step.pending_actions_count:  # nothing to wait for: no pass of the loop either
            await workflow.wait_condition(lambda: step.pending_actions_count == 0)
        for task in tasks:  # children abandoned past this point are not ours to watch
            if not task.done():
                task.cancel()

    async def _continue(
        self,
        step: StepData,
        intents: list[ChildIntent],
        first_number: int,
        join_after: list[list[int]] | None,
        paused_at: int,
        asked: StepOutcome | StepResume,
    ) -> None:
        """Continue as new once every child started has concluded; the next run
        starts the children from `paused_at` on (never returns)."""
        dependencies = self._dependencies
        await workflow.wait_condition(
            lambda: self._children.drained() and dependencies.open == dependencies.timers
        )
        rest = StepResume(
            index=step.index,
            children=intents[paused_at:],
            first_number=first_number + paused_at,
            # (the earlier ones all concluded, so all joined their lanes: S4.8)
            join_after=None if join_after is None else _after(join_after, paused_at),
            waits=[
                OpenWait(wait_id, until.isoformat())
                for wait_id, until in self._until.items()
                if not dependencies.concluded(wait_id)
            ],
            marked_failed=asked.marked_failed,
        )
        await continuing.continue_as_new(self._action, step.index, rest)

    async def _wait(self, wait_id: str, seconds: float) -> None:
        """A timer dependency (S3.12): concludes successfully when it elapses."""
        await workflow.sleep(timedelta(seconds=seconds))
        self._dependencies.conclude(wait_id, True)


def _after(join_after: list[list[int]], paused_at: int) -> list[list[int]]:
    """`join_after` of the children from `paused_at` on, numbered among them."""
    rest = join_after[paused_at:]
    return [[i - paused_at for i in earlier if i >= paused_at] for earlier in rest]
