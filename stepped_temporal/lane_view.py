"""`stepped_temporal.lane(key)`: what a lane is doing (S9.5).

A key nobody contends has no lane workflow: its holder is the row in
`stepped_lane_claims` (store/claims.py). Once contended, the lane workflow
(`stepped-lane/<key>`) owns the key and answers its `state` query — also
after it ended idle, when it reports nothing performing and nothing pending,
with the handovers it made last.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from .config import get_client, read_session, settings
from .keys import lane_id
from .lane_messages import LaneState as LaneRun
from .store import claims

__all__ = ["LaneHandover", "LaneState", "lane", "lane_workflow_state"]


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
    pending: tuple[str, ...] = ()
    #: the latest superseded and shared actions, oldest first
    recent: tuple[LaneHandover, ...] = ()


def _claim_holder(key: str) -> str | None:
    with read_session() as session:
        return claims.holder(session, key)


async def lane(key: str) -> LaneState:
    """The state of the lane of concurrency key `key` now (S9.5)."""
    if not isinstance(key, str) or not key:
        raise TypeError(f"lane() takes a concurrency key (a non-empty str), got {key!r}")
    holder = await asyncio.to_thread(_claim_holder, key)
    if holder is not None:
        return LaneState(key, performing=holder)
    found = await lane_workflow_state(await get_client(), key)
    return found or LaneState(key)  # never contended, nothing performing


async def lane_workflow_state(client: Client, key: str) -> LaneState | None:
    """What the lane workflow of `key` says (its `state` query), also after it ended
    idle; None when the key never had one. Reads no database."""
    try:
        run: LaneRun = await client.get_workflow_handle(lane_id(key)).query(
            "state", result_type=LaneRun, rpc_timeout=settings().rpc_timeout
        )
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    return LaneState(
        key,
        performing=run.performing.action_id if run.performing else None,
        pending=tuple(entry.action_id for entry in run.pending),
        recent=tuple(LaneHandover(h.action_id, h.to, h.how) for h in run.handovers),
    )
