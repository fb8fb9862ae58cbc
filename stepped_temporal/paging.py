"""Listing everything a page at a time (S11.2): a workflow's query answers a bounded
page of ids after the last one given, so no answer grows with the size of the work.

Client side: used by `ActionHandle.step_actions` and `lane_view.pending_ids`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from temporalio.client import WorkflowHandle

from .config import settings

__all__ = ["pages", "query_pages"]


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
