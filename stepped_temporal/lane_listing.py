"""`stepped-temporal lanes [KEY]`: the contended lanes, and one lane in detail (S9.5).

A key only one action wants has no lane workflow, just its claim row. Once
contended, the lane workflow `stepped-lane/<key>` (search attribute
`SteppedLane`) owns it: listing the running ones is a visibility query
(Temporal and its dev server answer it; the time-skipping test server cannot),
then each lane's `state` query and its performing action's `describe()`.
One lane in detail is `stepped.lane(key)`, which also sees an uncontended claim.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from temporalio.client import Client
from temporalio.service import RPCError

from .client import ActionHandle
from .config import settings
from .keys import LANE_PREFIX
from .lane_view import LaneState, lane, lane_workflow_state, place
from .trees import span

__all__ = ["LaneSummary", "contended_lanes", "format_lane", "format_lanes", "lane_detail"]

#: the visibility query listing lanes that hold a key now
RUNNING_LANES = 'WorkflowType="SteppedLane" AND ExecutionStatus="Running"'


@dataclass(frozen=True)
class LaneSummary:
    """A lane as the `lanes` command shows it."""

    key: str
    performing: str | None
    #: when the performing action started performing (None: nothing performs)
    performing_since: datetime | None
    pending: tuple[str, ...]
    #: the latest superseded and shared actions: (action id, how, handed to)
    recent: tuple[tuple[str, str, str], ...] = ()
    #: pending ids between the first and the latest ones shown (S11.2)
    pending_left_out: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "performing": self.performing,
            "performing_since": self.performing_since.isoformat()
            if self.performing_since
            else None,
            "pending": list(self.pending),
            "pending_count": len(self.pending) + self.pending_left_out,
            "pending_left_out": self.pending_left_out,
            "recent": [{"action_id": a, "how": how, "to": to} for a, how, to in self.recent],
        }


async def _since(client: Client, action_id: str | None) -> datetime | None:
    if action_id is None:
        return None
    try:
        return (await ActionHandle(client, action_id).describe()).started_at
    except RPCError:  # it ended and was deleted meanwhile
        return None


def _summary(state: LaneState, since: datetime | None) -> LaneSummary:
    recent = tuple((h.action_id, h.how, h.to) for h in state.recent)
    return LaneSummary(
        state.key, state.performing, since, state.pending, recent, state.pending_left_out
    )


async def _listed(client: Client, workflow_id: str) -> LaneSummary | None:
    try:
        state = await lane_workflow_state(client, workflow_id.removeprefix(LANE_PREFIX))
    except RPCError:  # it went idle and ended between the list and the query
        return None
    if state is None:
        return None
    return _summary(state, await _since(client, state.performing))


async def contended_lanes(client: Client) -> list[LaneSummary]:
    """Every lane workflow running now, by key."""
    listed = client.list_workflows(RUNNING_LANES, rpc_timeout=settings().rpc_timeout)
    ids = [execution.id async for execution in listed]
    found = await asyncio.gather(*(_listed(client, workflow_id) for workflow_id in ids))
    return sorted((lane for lane in found if lane is not None), key=lambda lane: lane.key)


async def lane_detail(client: Client, key: str) -> LaneSummary:
    """One lane (contended or not) with its performing action's start."""
    state = await lane(key)
    return _summary(state, await _since(client, state.performing))


def _age(since: datetime | None, now: datetime) -> str:
    return "-" if since is None else span(max(0.0, (now - since).total_seconds()))


def format_lanes(lanes: list[LaneSummary], now: datetime | None = None) -> str:
    """A table: key, performing action, for how long, how many pending."""
    if not lanes:
        return "no contended lanes (a key only one action wants needs no lane)"
    now = now or datetime.now(UTC)
    rows = [("KEY", "PERFORMING", "FOR", "PENDING")]
    rows += [
        (
            lane.key,
            lane.performing or "-",
            _age(lane.performing_since, now),
            str(len(lane.pending) + lane.pending_left_out),
        )
        for lane in lanes
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    return "\n".join(
        f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:>{widths[2]}}  {row[3]}"
        for row in rows
    )


def format_lane(lane: LaneSummary, now: datetime | None = None) -> str:
    """One lane: performing (since when), pending in order, recent handovers."""
    now = now or datetime.now(UTC)
    lines = [f"lane {lane.key}"]
    if lane.performing:
        lines.append(f"  performing  {lane.performing} (for {_age(lane.performing_since, now)})")
    else:
        lines.append("  performing  -")
    if lane.pending:
        gap_shown = False
        for index, action_id in enumerate(lane.pending):
            number = place(index, len(lane.pending), lane.pending_left_out)
            if number > index + 1 and not gap_shown:  # the first after those left out
                gap_shown = True
                lines.append(
                    f"  {'':<10}  … {lane.pending_left_out} more (lane_pending() lists all)"
                )
            lines.append(f"  {'pending' if index == 0 else '':<10}  {number}. {action_id}")
    else:
        lines.append("  pending     -")
    for number, (action_id, how, to) in enumerate(lane.recent):
        lines.append(f"  {'recent' if number == 0 else '':<10}  {action_id} {how} → {to}")
    return "\n".join(lines)
