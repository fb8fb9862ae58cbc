"""Action trees for people: collect an action and its descendants, print them (S9.2)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from temporalio.client import Client

from .client import ActionHandle
from .results import ActionState


@dataclass
class TreeNode:
    """One action with the actions its steps waited on."""

    state: ActionState
    children: list[TreeNode] = field(default_factory=list)


async def collect_tree(client: Client, action_id: str, *, limit: int = 500) -> TreeNode:
    """Describe `action_id` and, recursively, every action its steps waited on."""
    seen: set[str] = set()

    async def visit(current: str) -> TreeNode:
        seen.add(current)
        node = TreeNode(await ActionHandle(client, current).describe())
        for step in node.state.steps:
            for child in step.actions:
                if child not in seen and len(seen) < limit:
                    node.children.append(await visit(child))
        return node

    return await visit(action_id)


def format_tree(node: TreeNode) -> str:
    """The tree as indented lines: status, action, duration, step, error, successor."""
    lines: list[str] = []

    def walk(current: TreeNode, prefix: str, last: bool, top: bool) -> None:
        branch = "" if top else ("└─ " if last else "├─ ")
        lines.append(prefix + branch + describe_line(current.state))
        deeper = prefix + ("" if top else ("   " if last else "│  "))
        for index, child in enumerate(current.children):
            walk(child, deeper, index == len(current.children) - 1, False)

    walk(node, "", True, True)
    return "\n".join(lines)


def describe_line(state: ActionState) -> str:
    """One line for one action."""
    parts = [f"{state.status.value:<10}", f"{state.actor_type}/{state.actor_id} {state.name}"]
    if state.arguments:
        parts.append("(" + ", ".join(_short(a) for a in state.arguments) + ")")
    if state.started_at and state.completed_at:
        seconds = (state.completed_at - state.started_at).total_seconds()
        parts.append(f"{seconds:.2f}s")
    if state.steps:
        parts.append(f"steps {len(state.steps)}")
    if state.status == "performing" and state.current_step_index is not None:
        parts.append(f"at step {state.current_step_index}")
    if state.resolved_by:
        parts.append(f"→ {state.resolved_by}")
    if state.error:
        parts.append(f"! {state.error.type}: {state.error.message}")
    return "  ".join(parts)


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
        "children": [tree_json(child) for child in node.children],
    }


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 30 else text[:27] + "..."
