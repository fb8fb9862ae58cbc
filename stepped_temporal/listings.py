"""Listings over everything, however much (S9.6, S11.2): the outbound actions now
performing, the ids a step waits on, the pending actions of a lane.

Each is an async iterator, so a caller can stop early and nothing needs to hold
a whole list at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from temporalio.service import RPCError, RPCStatusCode

from .client import action_handle
from .config import get_client, read_session
from .keys import tenancy_key
from .lane_view import checked_key, pending_ids
from .registry import ActorBase, actor_ref
from .results import ActionState
from .status import Status
from .store import outbound

__all__ = ["lane_pending", "performing_outbound"]


def _outbound_ids(prefix: str) -> list[str]:
    with read_session() as session:
        return outbound.listed(session, prefix)


async def performing_outbound(
    actor: ActorBase | None = None, *, name: str | None = None
) -> AsyncIterator[ActionState]:
    """The outbound actions performing now (S9.6) — of `actor` and/or of action
    `name` when given — each as its `ActionState`, by tenancy key. Outside tests
    too: it reads where `complete()` looks (`stepped_outbound_performances`) and
    asks each action, so one that ended meanwhile is left out."""
    if actor is None:
        prefix = ""
    else:
        type_name, actor_id = actor_ref(actor)
        prefix = tenancy_key(type_name, actor_id, name) if name else f"{type_name}/{actor_id}/"
    for action_id in await asyncio.to_thread(_outbound_ids, prefix):
        if name is not None and action_id.split("/")[2:3] != [name]:
            continue
        try:
            state = await action_handle(action_id).describe()
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                continue  # its workflow's retention passed
            raise
        if state.status == Status.PERFORMING and state.outbound:
            yield state


async def lane_pending(key: str) -> AsyncIterator[str]:
    """Every action pending in the lane of concurrency key `key`, in the order they
    will perform (S11.2), however many: the lane answers a page at a time."""
    checked_key(key, "lane_pending")
    async for action_id in pending_ids(await get_client(), key):
        yield action_id
