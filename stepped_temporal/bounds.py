"""Bounded views and the pages behind them (S11.2): a query answer or a result never
grows with the size of the work — a step or a lane lists at most `SHOWN_IDS` ids,
the first half and the latest half, counting the rest; `ids_after` serves the
pages that list them all.

Standard library and `messages` only: workflow code uses it (queries and the
final result, never a command).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TypeVar

from .messages import ActionData, StepData

T = TypeVar("T")

__all__ = ["SHOWN_IDS", "SHOWN_STEPS", "bounded", "halves", "ids_after", "step_at"]


#: ids a step shows in query answers and results (S11.2): the first half and the
#: latest half; the rest are counted (`StepData.actions_left_out`) and listed by the
#: `step_actions_after` query. Never a command: a result's content is not replayed.
SHOWN_IDS = 100
#: steps an action shows, the same way (`ActionData.steps_left_out`): an action that
#: continued as new carries no more of them into its next run (continuing.py)
SHOWN_STEPS = 100


def halves(ids: list[T], shown: int) -> tuple[list[T], list[T]]:
    """The ids a bounded view lists (S11.2): all of them when they fit in `shown`,
    else the first `shown - shown // 2` and the latest `shown // 2`."""
    shown = max(0, shown)
    if len(ids) <= shown:
        return list(ids), []
    latest = shown // 2
    return ids[: shown - latest], ids[len(ids) - latest :]


def bounded(data: ActionData, shown: int = SHOWN_IDS) -> ActionData:
    """`data` as queries and results give it: each step's ids bounded to `shown`, and
    its steps to `SHOWN_STEPS` (S11.2); `data` itself when nothing has more."""
    first_steps, latest_steps = halves(data.steps, SHOWN_STEPS)
    if not latest_steps and all(len(step.actions) <= shown for step in data.steps):
        return data
    steps = []
    for step in first_steps + latest_steps:
        first, latest = halves(step.actions, shown)
        # (plus what an earlier bounding left out: a step carried across continue-as-new)
        left_out = step.actions_left_out + len(step.actions) - len(first) - len(latest)
        steps.append(replace(step, actions=first + latest, actions_left_out=left_out))
    left_out_steps = data.steps_left_out + len(data.steps) - len(steps)
    return replace(data, steps=steps, steps_left_out=left_out_steps)


def step_at(data: ActionData, index: int) -> StepData | None:
    """Step `index` of `data`, if it lists it (the latest are last; `bounded` may have
    left earlier ones out)."""
    for step in reversed(data.steps):
        if step.index == index:
            return step
    return None


def ids_after(ids: list[str], after: str | None, count: int) -> list[str]:
    """Up to `count` of `ids` following `after` (from the first when None or gone):
    one page of a listing (S11.2)."""
    start = ids.index(after) + 1 if after in ids else 0
    return ids[start : start + max(0, count)]
