"""The outcome of a finished service tree, by place, and how two outcomes compare
(tests/reliability/test_production.py, scripts/soak.py)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from stepped_temporal.results import ActionState
from stepped_temporal.trees import TreeNode


def flatten(node: TreeNode) -> list[ActionState]:
    found = [node.state]
    for child in node.children:
        found.extend(flatten(child))
    return found


@dataclass
class Outcome:
    """A finished tree, by place: statuses, effects, and what the checks found.

    A place is the path of (car relative to its fleet, action name, arguments) from
    the root. Two siblings with the same place (fuel 7 asked for twice) cannot be
    told apart, so a place holds a multiset of statuses and of effects."""

    root: ActionState
    states: list[ActionState]
    #: (place, status) -> how many actions
    statuses: Counter[tuple[str, str]]
    #: (place, unit) -> how many effect rows
    effects: Counter[tuple[str, str]]
    #: (action id, unit) -> effect rows, where more than one (exactly-once broken)
    twice: dict[tuple[str, str], int]


def places(node: TreeNode, base: int, fleet_type: str = "ProdFleet") -> dict[str, str]:
    """Action id -> its place in the tree, the same in every run of the same shapes
    (a car's id less `base`, the id before its fleet's first car; the actor of type
    `fleet_type` is "fleet")."""
    places: dict[str, str] = {}

    def walk(current: TreeNode, parent: str) -> None:
        state = current.state
        actor = "fleet" if state.actor_type == fleet_type else str(int(state.actor_id) - base)
        places[state.id] = f"{parent}>{actor}/{state.name}/{state.arguments}"
        for child in current.children:
            walk(child, places[state.id])

    walk(node, "")
    return places


def compare(reference: Outcome, disturbed: Outcome, expected_actions: int) -> list[str]:
    """Every difference between the undisturbed and the disturbed tree."""
    problems = []
    for name, run in (("reference", reference), ("disturbed", disturbed)):
        if len(run.states) != expected_actions:
            problems.append(f"{name}: {len(run.states)} actions, expected {expected_actions}")
        waiting = [
            f"{s.id} {s.status} step={s.current_step_index}"
            for s in run.states
            if not s.final or any(step.pending_actions_count for step in s.steps)
        ]
        if waiting:
            problems.append(
                f"{name}: {len(waiting)} action(s) not final or waiting: {waiting[:10]}"
            )
    if disturbed.statuses != reference.statuses:
        missing = reference.statuses - disturbed.statuses
        extra = disturbed.statuses - reference.statuses
        problems.append(
            f"statuses differ from the undisturbed run: (place, status) only there "
            f"{sorted(missing.items())[:10]}; only in the disturbed run "
            f"{sorted(extra.items())[:10]}"
        )
    for name, run in (("reference", reference), ("disturbed", disturbed)):
        if run.twice:
            problems.append(
                f"{name}: {len(run.twice)} effect(s) applied more than once: "
                f"{sorted(run.twice.items())[:10]}"
            )
    if disturbed.effects != reference.effects:
        missing = reference.effects - disturbed.effects
        extra = disturbed.effects - reference.effects
        problems.append(
            f"effects differ: only undisturbed {sorted(missing.items())[:10]}; only "
            f"disturbed {sorted(extra.items())[:10]}"
        )
    return problems


def status_counts(run: Outcome) -> str:
    counts = Counter(s.status for s in run.states)
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
