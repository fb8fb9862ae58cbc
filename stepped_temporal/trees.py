"""Action trees for people: collect an action and its descendants, print them (S9.2, S9.5).

Under each action, in step order: its steps' timed waits (with the time left
while the step runs) and the actions they waited on. A pending action in a
contended lane shows its place in the queue (the lane's `state` query).
`watch_tree` redraws the tree until its root is final.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from temporalio.client import Client
from temporalio.service import RPCError

from .client import ActionHandle
from .lane_view import lane_workflow_state
from .results import ActionState, StepState

__all__ = [
    "TreeNode",
    "collect_tree",
    "describe_line",
    "format_tree",
    "span",
    "tree_json",
    "watch_tree",
]


@dataclass
class TreeNode:
    """One action with the actions its steps waited on."""

    state: ActionState
    children: list[TreeNode] = field(default_factory=list)
    #: a pending action's place in its lane's queue (1 = next), when it waits in one
    lane_position: int | None = None


async def _lane_position(client: Client, state: ActionState) -> int | None:
    if state.status != "pending" or state.concurrency_key is None:
        return None
    try:
        lane = await lane_workflow_state(client, state.concurrency_key)
    except RPCError:
        return None
    return None if lane is None else lane.position(state.id)


async def collect_tree(client: Client, action_id: str, *, limit: int = 500) -> TreeNode:
    """Describe `action_id` and, recursively, every action its steps waited on."""
    seen: set[str] = set()

    async def visit(current: str) -> TreeNode:
        seen.add(current)
        state = await ActionHandle(client, current).describe()
        node = TreeNode(state, lane_position=await _lane_position(client, state))
        for step in node.state.steps:
            for child in step.actions:
                if child not in seen and len(seen) < limit:
                    node.children.append(await visit(child))
        return node

    return await visit(action_id)


def span(seconds: float) -> str:
    """A duration for people: 42s, 3m07s, 2h05m, 1d03h."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def wait_line(step: StepState, seconds: float, now: datetime) -> str:
    """One timed wait of a step: its length, and what is left of it while the step runs."""
    line = f"wait {span(seconds)}  (step {step.index})"
    if step.status == "performing" and step.started_at is not None:
        left = step.started_at + timedelta(seconds=seconds) - now
        line += f"  {span(max(0.0, left.total_seconds()))} left"
    return line


def describe_line(state: ActionState, lane_position: int | None = None) -> str:
    """One line for one action."""
    parts = [f"{state.status.value:<10}", f"{state.actor_type}/{state.actor_id} {state.name}"]
    if state.arguments:
        parts.append("(" + ", ".join(_short(a) for a in state.arguments) + ")")
    if state.started_at and state.completed_at:
        seconds = (state.completed_at - state.started_at).total_seconds()
        parts.append(f"{seconds:.2f}s")
    if state.steps:
        parts.append(f"steps {state.steps_count}")
    if state.status == "performing" and state.current_step_index is not None:
        parts.append(f"at step {state.current_step_index}")
    if lane_position is not None:
        parts.append(f"#{lane_position} in lane {state.concurrency_key}")
    if state.resolved_by:
        parts.append(f"→ {state.resolved_by}")
    if state.error:
        parts.append(f"! {state.error.type}: {state.error.message}")
    return "  ".join(parts)


def _items(node: TreeNode, now: datetime) -> list[str | TreeNode]:
    """What hangs under an action, in step order: waits, then the step's actions."""
    by_id = {child.state.id: child for child in node.children}
    items: list[str | TreeNode] = []
    for step in node.state.steps:
        items += [wait_line(step, seconds, now) for seconds in step.waits]
        items += [by_id.pop(action_id) for action_id in step.actions if action_id in by_id]
        if step.actions_left_out:
            items.append(f"… {step.actions_left_out} more actions of step {step.index}")
    return items + list(by_id.values())


def format_tree(node: TreeNode, now: datetime | None = None) -> str:
    """The tree as indented lines: status, action, duration, step, error, successor;
    timed waits with the time left."""
    now = now or datetime.now(UTC)
    lines: list[str] = []

    def walk(current: str | TreeNode, prefix: str, last: bool, top: bool) -> None:
        branch = "" if top else ("└─ " if last else "├─ ")
        if isinstance(current, str):
            lines.append(prefix + branch + current)
            return
        lines.append(prefix + branch + describe_line(current.state, current.lane_position))
        deeper = prefix + ("" if top else ("   " if last else "│  "))
        items = _items(current, now)
        for index, item in enumerate(items):
            walk(item, deeper, index == len(items) - 1, False)

    walk(node, "", True, True)
    return "\n".join(lines)


def tree_json(node: TreeNode) -> dict[str, Any]:
    """The tree as JSON-able dicts."""
    state = node.state
    return {
        "id": state.id,
        "actor": f"{state.actor_type}/{state.actor_id}",
        "name": state.name,
        "status": state.status.value,
        "started_at": state.started_at.isoformat() if state.started_at else None,
        "completed_at": state.completed_at.isoformat() if state.completed_at else None,
        "current_step_index": state.current_step_index,
        "error": (
            {"type": state.error.type, "message": state.error.message} if state.error else None
        ),
        "resolved_by": state.resolved_by,
        "lane_position": node.lane_position,
        "waits": [
            {"step": step.index, "seconds": seconds}
            for step in state.steps
            for seconds in step.waits
        ],
        "children": [tree_json(child) for child in node.children],
    }


#: ANSI: cursor home, clear the screen
CLEAR = "\x1b[H\x1b[2J"


async def watch_tree(
    client: Client,
    action_id: str,
    *,
    interval: float = 1.0,
    out: TextIO | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> TreeNode:
    """Redraw the tree every `interval` seconds until its root is final; the last tree.
    On a terminal the screen is cleared between frames; piped, frames are separated
    by a blank line."""
    stream = out or sys.stdout
    clear = stream.isatty()
    while True:
        tree = await collect_tree(client, action_id)
        frame = format_tree(tree, clock())
        stream.write((CLEAR if clear else "") + frame + "\n" + ("" if clear else "\n"))
        stream.flush()
        if tree.state.status.final:
            return tree
        await asyncio.sleep(interval)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 30 else text[:27] + "..."
