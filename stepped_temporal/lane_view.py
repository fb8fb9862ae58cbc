"""`stepped_temporal.lane(key)`: what a lane is doing (S9.5).

A key nobody contends has no lane workflow: its holder is the row in
`stepped_lane_claims` (store/claims.py). Once contended, the lane workflow
(`stepped-lane/<key>`) owns the key and answers its `state` query — also
after it ended idle, when it reports nothing performing and nothing pending,
with the handovers it made last.

However long the queue (S11.2), the answer is bounded: the lane's `view` query
gives the exact count and the first and latest `SHOWN` ids; `pending_ids` pages
through all of them (`stepped.lane_pending`). A lane run by a release before
these queries answers `state`, the whole queue.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.service import RPCError, RPCStatusCode

from .config import get_client, read_session, settings
from .keys import lane_id
from .lane_messages import LaneState as LaneRun
from .lane_messages import LaneView
from .paging import query_pages
from .store import claims

__all__ = ["LaneHandover", "LaneState", "lane", "lane_workflow_state", "pending_ids"]

#: pending ids a lane's state shows: the first half and the latest half
SHOWN = 100
#: pending ids per page of `pending_ids`
PAGE = 200


@dataclass(frozen=True)
class LaneHandover:
    """A superseded or shared action and the action it was handed to."""

    action_id: str
    to: str
    #: "superseded" (S4.2) or "shared" (S4.3)
    how: str


@dataclass(frozen=True)
class LaneState:
    """A lane: the performing action, the pending ones in order, the latest handovers."""

    key: str
    performing: str | None = None
    #: the pending ids in lane order: all of them, or past `SHOWN` the first and the
    #: latest, with `pending_left_out` between them (`lane_pending` lists them all)
    pending: tuple[str, ...] = ()
    #: the latest superseded and shared actions, oldest first
    recent: tuple[LaneHandover, ...] = ()
    #: pending ids not in `pending` (those between its first and latest halves)
    pending_left_out: int = 0

    @property
    def pending_count(self) -> int:
        """How many actions are pending, exactly."""
        return len(self.pending) + self.pending_left_out

    def position(self, action_id: str) -> int | None:
        """The place of pending `action_id` in the queue (1 = next), None when it is not
        pending or is among those left out."""
        if action_id not in self.pending:
            return None
        return place(self.pending.index(action_id), len(self.pending), self.pending_left_out)


def place(index: int, listed: int, left_out: int) -> int:
    """The queue place (1 = next) of the `index`-th of the `listed` ids a bounded view
    shows (`bounds.halves`): its latest half comes after the `left_out` ones."""
    latest = listed // 2 if left_out else 0
    return index + 1 + (left_out if index >= listed - latest else 0)


def checked_key(key: object, caller: str) -> str:
    """`key` if it is a concurrency key (a non-empty str), else a TypeError naming it."""
    if not isinstance(key, str) or not key:
        raise TypeError(f"{caller}() takes a concurrency key (a non-empty str), got {key!r}")
    return key


def _claim_holder(key: str) -> str | None:
    with read_session() as session:
        return claims.holder(session, key)


async def lane(key: str) -> LaneState:
    """The state of the lane of concurrency key `key` now (S9.5)."""
    checked_key(key, "lane")
    holder = await asyncio.to_thread(_claim_holder, key)
    if holder is not None:
        return LaneState(key, performing=holder)
    found = await lane_workflow_state(await get_client(), key)
    return found or LaneState(key)  # never contended, nothing performing


async def lane_workflow_state(client: Client, key: str) -> LaneState | None:
    """What the lane workflow of `key` says (its `view` query), also after it ended
    idle; None when the key never had one. Reads no database."""
    handle = client.get_workflow_handle(lane_id(key))
    timeout = settings().rpc_timeout
    try:
        try:
            view: LaneView = await handle.query(
                "view", SHOWN, result_type=LaneView, rpc_timeout=timeout
            )
        except WorkflowQueryFailedError as error:
            if "view" not in str(error):
                raise
            run: LaneRun = await handle.query("state", result_type=LaneRun, rpc_timeout=timeout)
            view = _whole(run)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    pending = (*view.pending_first, *view.pending_latest)
    return LaneState(
        key,
        performing=view.performing,
        pending=pending,
        recent=tuple(LaneHandover(h.action_id, h.to, h.how) for h in view.handovers),
        pending_left_out=view.pending_count - len(pending),
    )


def _whole(run: LaneRun) -> LaneView:
    """The view of a lane whose release has no `view` query: all of it."""
    ids = [entry.action_id for entry in run.pending]
    performing = run.performing.action_id if run.performing else None
    return LaneView(performing, len(ids), ids, [], list(run.handovers))


async def pending_ids(client: Client, key: str) -> AsyncIterator[str]:
    """Every pending id of the lane of `key`, in lane order, a page at a time; an id
    is given once even if the queue moves between pages (S11.2)."""
    try:
        handle = client.get_workflow_handle(lane_id(key))
        async for action_id in query_pages(handle, "pending_after", size=PAGE):
            yield action_id
    except WorkflowQueryFailedError as error:
        if "pending_after" not in str(error):
            raise
        found = await lane_workflow_state(client, key)  # a lane of an older release
        for action_id in found.pending if found else ():
            yield action_id
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:
            raise
