"""Starting a lane workflow and joining it in one call (S4.1, S9.5).

A workflow cannot signal-with-start, so the prepare activity does it: the lane
`stepped-lane/<key>` starts if it is not running and gets the join either way.
Where the namespace has Stepped's search attributes, a lane it starts carries
`SteppedLane=<key>` so the Web UI lists it — unless the namespace lacks that one
attribute (registered before it existed, with `configure(search_attributes=True)`):
then the lane starts without it and the worker says how to register it.
"""

from __future__ import annotations

import logging

from temporalio.client import Client
from temporalio.common import TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from . import time_skipping
from .config import settings
from .keys import lane_id
from .lane_messages import LANE_REVISION, LaneJoin, LaneState
from .search_attributes import lane_search_attributes
from .shapes import lane_shape

__all__ = ["join_lane"]

log = logging.getLogger("stepped_temporal")


async def join_lane(
    client: Client, key: str, join: LaneJoin, *, task_queue: str, search_attributes: bool = False
) -> None:
    """Signal-with-start the lane of `key` with `join` (see the module's docstring)."""
    idle = settings().lane_idle.total_seconds()
    state = LaneState(
        key=key,
        idle_seconds=idle,
        test_server=time_skipping.skips_time(client),
        # a run created now: this release's numbers for this cluster (shapes.py)
        shape=lane_shape(settings().server_limits),
        revision=LANE_REVISION,
    )
    attributes = lane_search_attributes(key) if search_attributes else None
    try:
        await _start_lane(client, key, join, state, task_queue, attributes)
    except RPCError as error:
        if attributes is None or error.status != RPCStatusCode.INVALID_ARGUMENT:
            raise
        if "search attribute" not in str(error).lower():
            raise
        log.warning(
            "lane %r starts without its SteppedLane search attribute: %s (register it: "
            "temporal operator search-attribute create --name SteppedLane --type Keyword)",
            key,
            error,
        )
        await _start_lane(client, key, join, state, task_queue, None)


async def _start_lane(
    client: Client,
    key: str,
    join: LaneJoin,
    state: LaneState,
    task_queue: str,
    attributes: TypedSearchAttributes | None,
) -> None:
    await client.start_workflow(
        "SteppedLane",
        state,
        id=lane_id(key),
        task_queue=task_queue,
        search_attributes=attributes,
        start_signal="join",
        start_signal_args=[join],
        # never under a database lock (preparing.py), and never for ever
        rpc_timeout=settings().rpc_timeout,
    )
