"""The job and finish activities' inputs and outcomes (S3.9, S6.4): frozen, JSON-safe
dataclasses beside `messages`, standard library only, fields only ever added
with defaults.
"""

from dataclasses import dataclass, field
from typing import Any

from .messages import ActionContext, ErrorData

__all__ = ["FinishInput", "FinishOutcome", "JobInput", "JobOutcome"]


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
