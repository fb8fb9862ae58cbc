"""`StepWaiting`: what a step waits on — the children and waits it asked for, until
every one concluded (S3.7, S3.12) — with a wide step's children read a page at a
time and, in a step too wide for one history, the hand-over to the next run part
way through (S11.1, `continuing`).

Children start through `ChildStarts`; from `REVISION` 6 it asks, before each one,
whether the run should continue as new first (`continuing.due_in_step`). Then no
more start: once every child started has concluded (only the run that started a
child hears its end), the rest of the step — the children not started, the waits
still running, the pages not read — goes to the next run in `StepResume`, and
`resume` takes it up. From `REVISION` 7 the step's unit gives its children in
pages (step_pages.py): each next page is read, by a local activity, once the page
before has been started.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from . import continuing
    from .action_run import ActionRun
    from .child_starts import ChildStarts, new_child_id
    from .dependencies import Dependencies
    from .messages import (
        ChildIntent,
        ErrorData,
        OpenWait,
        StepData,
        StepOutcome,
        StepResume,
    )
    from .unit_messages import PageInput, StepPage
    from .wire import decode, encode
    from .workflow_support import SYSTEM_RETRY, activity_error, run_activity

__all__ = ["StepWaiting"]


class _Pages:
    """Where the pages of a step's children not read yet are (`StepOutcome.pages_key`)."""

    def __init__(self, key: str | None, next: int, count: int) -> None:
        self.key, self.next, self.count = key, next, count

    def left(self) -> bool:
        return self.key is not None and self.next < self.count


class StepWaiting:
    """Starts what one step at a time asked for and waits until all of it concluded."""

    def __init__(self, action: ActionRun, dependencies: Dependencies) -> None:
        self._action = action
        self._dependencies = dependencies
        self._children = ChildStarts(action, dependencies)
        #: when each wait of the current step elapses, by id
        self._until: dict[str, datetime] = {}
        #: the ids of the current step's children this run started, by call number
        self._ids: dict[int, str] = {}

    async def wait(self, step: StepData, outcome: StepOutcome) -> ErrorData | None:
        """Start the children and timers a step asked for; wait until all concluded (S3.7).
        An error when the step's pages of children could not be read."""
        waits = [(f"wait/{step.index}/{n}", seconds) for n, seconds in enumerate(outcome.waits)]
        step.waits.extend(outcome.waits)
        step.pending_actions_count = (outcome.children_count or len(outcome.children)) + len(waits)
        pages = _Pages(outcome.pages_key, 1, outcome.page_count)
        return await self._wait_on(
            step, outcome.children, 0, outcome.join_after, waits, outcome, pages
        )

    async def resume(self, step: StepData, rest: StepResume) -> ErrorData | None:
        """Go on with a step an earlier run began: start the children it had not
        started, wait for them and for what is left of its waits (S11.1). (Its
        pending count came with it.)"""
        now = workflow.now()
        waits = [
            (wait.wait_id, max(0.0, (datetime.fromisoformat(wait.until) - now).total_seconds()))
            for wait in rest.waits
        ]
        pages = _Pages(rest.pages_key, rest.next_page, rest.page_count)
        return await self._wait_on(
            step, rest.children, rest.first_number, rest.join_after, waits, rest, pages
        )

    async def _wait_on(
        self,
        step: StepData,
        intents: list[ChildIntent],
        first_number: int,
        join_after: list[list[int]] | None,
        waits: list[tuple[str, float]],
        asked: StepOutcome | StepResume,
        pages: _Pages,
    ) -> ErrorData | None:
        action = self._action
        dependencies = self._dependencies
        self._ids = {}
        children = self._add(step, intents, first_number)
        self._until = {}
        for wait_id, seconds in waits:
            dependencies.add(wait_id, step.index, child=False)
            self._until[wait_id] = workflow.now() + timedelta(seconds=seconds)
        tasks = [asyncio.ensure_future(self._wait(wait_id, s)) for wait_id, s in waits]
        pause = None
        if action.input.revision >= continuing.STEP_REVISION:

            def pause(unstarted: int) -> bool:
                if action.input.revision >= continuing.PAGED_REVISION:
                    # (the pages not read yet too: whatever has not concluded and
                    # is not open is still to start)
                    unstarted = step.pending_actions_count - dependencies.open
                return continuing.due_in_step(action, dependencies, unstarted)

        number = first_number
        while True:
            after = self._after(number, join_after, len(children))
            # (a child a later one of this page joins after says when it has joined)
            reporting = {i for earlier in join_after or () for i in earlier if i >= 0}
            tasks += await self._children.start(children, after, reporting, pause)
            paused_at = self._children.paused_at
            if paused_at is not None:
                await self._continue(step, intents, number, join_after, paused_at, asked, pages)
            if not pages.left():
                break
            try:
                page = await self._page(pages)
            except ActivityError as error:
                return activity_error(error)
            number += len(intents)
            intents, join_after = page.children, page.join_after
            children = self._add(step, intents, number)
        if step.pending_actions_count:  # nothing to wait for: no pass of the loop either
            await workflow.wait_condition(lambda: step.pending_actions_count == 0)
        for task in tasks:  # children abandoned past this point are not ours to watch
            if not task.done():
                task.cancel()
        return None

    def _add(
        self, step: StepData, intents: list[ChildIntent], first_number: int
    ) -> list[tuple[str, ChildIntent]]:
        """The children of `intents` (from call number `first_number`), with their ids."""
        children: list[tuple[str, ChildIntent]] = []
        for offset, intent in enumerate(intents):
            child_id = new_child_id(intent)
            # listed in `step.actions` once Temporal started it (so it can be described)
            self._dependencies.add(child_id, step.index, first_number + offset)
            self._ids[first_number + offset] = child_id
            children.append((child_id, intent))
        return children

    def _after(
        self, first_number: int, join_after: list[list[int]] | None, count: int
    ) -> list[list[str]] | None:
        """Per child from `first_number`, the ids of the earlier ones it joins after
        (S4.8): those this run started (any other has concluded, so joined)."""
        if not join_after:
            return None
        ids = self._ids
        return [
            [ids[first_number + i] for i in earlier if first_number + i in ids]
            for earlier in join_after[:count]
        ]

    async def _page(self, pages: _Pages) -> StepPage:
        """The next page of the step's children (step_pages.py)."""
        prepared = self._action.prepared
        assert pages.key is not None and prepared is not None
        raw = await run_activity(
            "stepped_step_page",
            encode(PageInput(pages.key, pages.next, pages.count)),
            local=True,
            timeout=timedelta(seconds=prepared.activity_timeout),
            heartbeat_timeout=None,
            retry=SYSTEM_RETRY,
        )
        pages.next += 1
        return decode(StepPage, raw)

    async def _continue(
        self,
        step: StepData,
        intents: list[ChildIntent],
        first_number: int,
        join_after: list[list[int]] | None,
        paused_at: int,
        asked: StepOutcome | StepResume,
        pages: _Pages,
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
            join_after=None if join_after is None else _renumbered(join_after, paused_at),
            waits=[
                OpenWait(wait_id, until.isoformat())
                for wait_id, until in self._until.items()
                if not dependencies.concluded(wait_id)
            ],
            marked_failed=asked.marked_failed,
            pages_key=pages.key,
            next_page=pages.next,
            page_count=pages.count,
        )
        await continuing.continue_as_new(self._action, step.index, rest)

    async def _wait(self, wait_id: str, seconds: float) -> None:
        """A timer dependency (S3.12): concludes successfully when it elapses."""
        await workflow.sleep(timedelta(seconds=seconds))
        self._dependencies.conclude(wait_id, True)


def _renumbered(join_after: list[list[int]], paused_at: int) -> list[list[int]]:
    """`join_after` of the children from `paused_at` on, numbered among them."""
    rest = join_after[paused_at:]
    return [[i - paused_at for i in earlier if i >= paused_at] for earlier in rest]
