"""The step, job and finish activities' inputs and outcomes (S3.6, S3.9, S6.4): frozen, JSON-safe
dataclasses beside `messages`, standard library only, fields only ever added
with defaults.
"""

from dataclasses import dataclass, field, replace
from typing import Any

from .messages import ActionContext, ChildIntent, ErrorData, Prepared

__all__ = [
    "FinishInput",
    "FinishOutcome",
    "JobInput",
    "JobOutcome",
    "PageInput",
    "StepInput",
    "StepPage",
]


@dataclass(frozen=True)
class StepInput:
    """Input of the step activity."""

    action: ActionContext
    index: int
    #: the first step also erases the achievement under the action's checksum_key (S3.5)
    erase_achievement: bool = False
    #: a claimed action's last step: if the step ends the action with one of these
    #: statuses (nothing left to run for it), it gives up the claim itself
    release_on: list[str] = field(default_factory=list)
    #: the last step: if it ends the action successfully, it grants the achievement
    grant_on_success: bool = False
    #: the action's maximum_attempts, counting failures of user code (budgets.py)
    budget: int = 0
    #: give a wide step's children in pages (`StepOutcome.pages_key`, step_pages.py)
    page_children: bool = False

    def as_last(self, prepared: Prepared, claimed: bool) -> "StepInput":
        """This step as the action's last: what it settles itself when it ends the
        action, since nothing is left to run after it at that status (no job,
        outbound wait or after-callback) — giving up a claimed key, and at
        succeeded granting the achievement (S3.9)."""
        if prepared.job or prepared.outbound:
            return self
        statuses = [s for s in ("succeeded", "failed") if s not in prepared.callback_statuses]
        return replace(
            self,
            release_on=statuses if claimed else [],
            grant_on_success=prepared.checksum is not None and "succeeded" in statuses,
        )


@dataclass(frozen=True)
class JobInput:
    """Input of the job activity (S6.4)."""

    action: ActionContext
    #: no step ran before the job: it starts performing (S3.5)
    erase_achievement: bool = False
    #: the action's maximum_attempts, counting failures of user code (budgets.py)
    budget: int = 0


@dataclass(frozen=True)
class JobOutcome:
    """How a job ended: the status it completed the action with, if any."""

    status: str | None = None
    error: ErrorData | None = None
    arguments: list[Any] | None = None
    achieved: bool = False


@dataclass(frozen=True)
class FinishInput:
    """Input of the finish activity: run after-callbacks, grant the achievement."""

    action: ActionContext
    status: str
    grant_achievement: bool
    #: give up the action's claim on its key once callbacks and grant are done
    release_claim: bool = False


@dataclass(frozen=True)
class FinishOutcome:
    """Counts of after-callbacks that returned and that raised (S3.9)."""

    succeeded: int = 0
    failed: int = 0
    errors: list[ErrorData] = field(default_factory=list)
    granted: bool = False
    #: the claim was given up and the lane workflow owns the key: tell it
    lane_owned: bool = False


@dataclass(frozen=True)
class PageInput:
    """Input of the page activity: page `number` of `count` under `key` (step_pages.py)."""

    key: str
    number: int
    count: int


@dataclass(frozen=True)
class StepPage:
    """A page of a wide step's children (step_pages.py): their intents, and their
    `join_after` numbered from the page's first child (earlier pages: below 0)."""

    children: list[ChildIntent] = field(default_factory=list)
    join_after: list[list[int]] | None = None
