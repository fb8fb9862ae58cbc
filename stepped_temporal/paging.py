"""Listing everything a page at a time (S11.2): a workflow's query answers a bounded
page of ids after the last one given, so no answer grows with the size of the work.

Client side: used by `ActionHandle.step_actions` (through every run of an action
that continued as new, `step_ids`) and `lane_view.pending_ids`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from temporalio.client import Client, WorkflowHandle

from .config import settings

__all__ = ["pages", "query_pages", "step_ids"]


async def pages(
    fetch: Callable[[str | None, int], Awaitable[list[str]]], size: int
) -> AsyncIterator[str]:
    """Every id `fetch(after, size)` pages through, in order, each once — also when
    the list moves between pages (an id that left makes the next page start over)."""
    given: set[str] = set()
    after: str | None = None
    while True:
        page = await fetch(after, size)
        for action_id in page:
            if action_id not in given:
                given.add(action_id)
                yield action_id
        if len(page) < size:
            return
        after = page[-1]


def query_pages(
    handle: WorkflowHandle[Any, Any], query: str, *leading: Any, size: int
) -> AsyncIterator[str]:
    """`pages` over the workflow query `query(*leading, after, size)`."""

    async def fetch(after: str | None, count: int) -> list[str]:
        ids: list[str] = await handle.query(
            query,
            args=[*leading, after, count],
            result_type=list,
            rpc_timeout=settings().rpc_timeout,
        )
        return ids

    return pages(fetch, size)


async def step_ids(client: Client, workflow_id: str, index: int, size: int) -> AsyncIterator[str]:
    """Every id step `index` of action `workflow_id` waited on, in call order, each
    once — across the runs it continued as new through (S11.1): each run lists the
    ids it started itself in full, and only the first and latest of those before it
    (`bounds.bounded`), so each run holding part of the step is asked in turn,
    oldest first. (A closed run answers a query too: a worker replays it.)"""
    given: set[str] = set()
    for run_id in await _runs_holding(client, workflow_id, index):
        handle = client.get_workflow_handle(workflow_id, run_id=run_id)
        async for action_id in query_pages(handle, "step_actions_after", index, size=size):
            if action_id not in given:
                given.add(action_id)
                yield action_id


async def _runs_holding(client: Client, workflow_id: str, index: int) -> list[str]:
    """The runs of `workflow_id` that performed part of step `index`, oldest first,
    found from each run's input (`Resume`: the step it began with, and whether it
    began inside it) following the chain back from the latest."""
    latest = await client.get_workflow_handle(workflow_id).describe(
        rpc_timeout=settings().rpc_timeout
    )
    run_id: str | None = latest.run_id
    holding: list[str] = []
    after: tuple[int, bool] | None = None  # where the run after began, and if inside
    while run_id:
        begin, inside, previous = await _began(client, workflow_id, run_id)
        ends_after = after is None or index < after[0] or (index == after[0] and after[1])
        if begin <= index and ends_after:
            holding.append(run_id)
        if begin < index or (begin == index and not inside):
            break  # the runs before it ended before the step began
        after, run_id = (begin, inside), previous
    return holding[::-1]


async def _began(client: Client, workflow_id: str, run_id: str) -> tuple[int, bool, str | None]:
    """The step run `run_id` began with, whether it began inside it, and the run
    before it (None: it is the first)."""
    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    async for event in handle.fetch_history_events(page_size=1):
        started = event.workflow_execution_started_event_attributes
        resume: dict[str, Any] = {}
        if started.input.payloads:
            (decoded,) = await client.data_converter.decode(started.input.payloads)
            if isinstance(decoded, dict):
                resume = decoded.get("resume") or {}
        step = resume.get("step") or {}
        return (
            int(resume.get("next_step", 0)),
            step.get("index") is not None,
            started.continued_execution_run_id or None,
        )
    return 0, False, None
