"""Workflow and activity inputs, outputs and signals: frozen, JSON-safe dataclasses (S1.5, S9.2).

This module imports nothing but the standard library (and `shapes`), so workflow
code can use it freely. Fields are only ever added with defaults, so payloads written by an
older version still decode. `PAYLOAD_VERSION` is checked at the boundary.
"""

from dataclasses import dataclass, field, replace
from typing import Any

from .shapes import ActionShape

PAYLOAD_VERSION = 1
#: the workflow behaviour inputs written now ask for (`ActionInput.revision`); a
#: worker refuses a newer one (versioning.py)
REVISION = 7


@dataclass(frozen=True)
class ErrorData:
    """An error's type name and message."""

    type: str
    message: str


@dataclass(frozen=True)
class RetryData:
    """A retry policy as plain numbers (seconds)."""

    initial_interval: float = 1.0
    backoff_coefficient: float = 2.0
    maximum_interval: float | None = None
    maximum_attempts: int = 0
    non_retryable_error_types: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Dependency:
    """One dependency a parent step waits on: the parent's workflow id and the dependency id."""

    workflow_id: str
    dependency_id: str


@dataclass(frozen=True)
class ActionContext:
    """What an activity needs to know about the action it serves."""

    action_id: str
    actor_type: str
    actor_id: Any
    name: str
    arguments: list[Any]
    root: bool
    outbound: bool = False
    checksum: str | None = None
    checksum_key: str | None = None
    concurrency_key: str | None = None
    status: str = "pending"


@dataclass(frozen=True)
class ChildIntent:
    """A child action a step body asked for."""

    actor_type: str
    actor_id: Any
    name: str
    arguments: list[Any]
    #: the child definition's retry policy, for its prepare activity (S8.2)
    retry: RetryData | None = None


@dataclass(frozen=True)
class StepOutcome:
    """What a step body did: the dependencies it asked for and how it ended."""

    children: list[ChildIntent] = field(default_factory=list)
    #: per child, the earlier children that must join their lanes first (S4.8,
    #: `keys.join_order`); None when they may join in any order
    join_after: list[list[int]] | None = None
    waits: list[float] = field(default_factory=list)
    #: the body assigned step.status = "failed" (S3.7)
    marked_failed: bool = False
    #: a handled exception: the step failed and asked for nothing (S3.6)
    error: ErrorData | None = None
    #: the first step found the checksum achieved meanwhile: skip the action (S3.4)
    achieved: bool = False
    #: the arguments, when the body changed them (S3.10)
    arguments: list[Any] | None = None
    #: the step gave up the action's claim on its key (see `StepInput.release_on`)
    released: bool = False
    #: ... at this time (just before its commit; see `activities.stamp`)
    released_at: str | None = None
    #: the step ended the action successfully and granted its achievement
    granted: bool = False
    #: ... and the lane workflow owns the key now, so it must be told
    lane_owned: bool = False
    #: children in pages (step_pages.py): `children` is the first page, and pages 1
    #: to `page_count` - 1 are read under `pages_key`; `children_count` counts all
    children_count: int = 0
    pages_key: str | None = None
    page_count: int = 0


@dataclass(frozen=True)
class PrepareInput:
    """Input of the prepare activity."""

    action: ActionContext
    task_queue: str
    parent: Dependency | None = None
    ancestry: list[str] = field(default_factory=list)
    #: the workflow takes a first step run by prepare (`Prepared.first_step`)
    perform_first_step: bool = False
    #: the namespace has Stepped's search attributes: a lane it starts carries one
    search_attributes: bool = False
    #: the action's maximum_attempts, counting failures of user code (budgets.py)
    budget: int = 0
    #: run in the workflow's first task, nothing before it: no earlier run committed
    first_task: bool = False
    #: a first step run here gives a wide step's children in pages (step_pages.py)
    page_children: bool = False


@dataclass(frozen=True)
class Prepared:
    """What prepare found: how the action goes on (S3.2-S3.4)."""

    #: "claimed" (holds its key, performs at once, no lane workflow), "joined" (it
    #: joined its lane), "achieved", "deadlocked", "cancelled", "completed", "failed"
    outcome: str
    arguments: list[Any]
    concurrency_key: str | None = None
    checksum_key: str | None = None
    checksum: str | None = None
    outbound: bool = False
    timeout: float | None = None
    step_count: int = 0
    job: bool = False
    callback_statuses: list[str] = field(default_factory=list)
    retry: RetryData | None = None
    lane_id: str | None = None
    error: ErrorData | None = None
    #: start-to-close timeout (seconds) of the activities that run user code
    activity_timeout: float = 600.0
    #: their heartbeat timeout (seconds), None for none
    heartbeat_timeout: float | None = None
    #: a claimed action's first step, run by prepare right after the claim committed
    #: (one activity and one workflow task less): what it did
    first_step: StepOutcome | None = None
    #: ... or the error it raised that is retried: its first attempt failed
    first_step_failure: ErrorData | None = None
    #: when the claim let it perform and the first step started (`activities.stamp`)
    first_step_started_at: str | None = None
    #: ... and when that step ended (in a local prepare, after the workflow's time)
    first_step_completed_at: str | None = None
    #: how often (seconds) the action checks that a lane it waits on still holds
    #: what it waits for (lane_checks.py); None: none (0, or an older release)
    lane_check: float | None = None


@dataclass(frozen=True)
class ActionInput:
    """Input of `ActionWorkflow`: one action to interpret."""

    action_id: str
    actor_type: str
    actor_id: Any
    name: str
    arguments: list[Any]
    task_queue: str
    parent: Dependency | None = None
    #: ids of the actions this one descends from, nearest last (S4.4)
    ancestry: list[str] = field(default_factory=list)
    version: int = PAYLOAD_VERSION
    #: keep Stepped's search attributes up to date (they are registered) (S9.3)
    search_attributes: bool = False
    #: the workflow behaviour its history is written with (`REVISION` now; 0 in older
    #: inputs, which replay as recorded): from 1, search attributes are upserted as
    #: few times as the run allows (action_run.py) and a finish that only keeps books
    #: is a local activity; from 2, prepare is one too (prepare_view.py); from 3, its
    #: behaviours are recorded as deprecated patch markers (versioning.marked); from
    #: 4 it stops short of the history limits (history_limits.py); from 5 it continues
    #: as new between steps, from 6 inside a wide step too (continuing.py); from 7 a
    #: wide step's children come a page at a time (step_pages.py)
    revision: int = 0
    #: the definition's retry policy, known before prepare runs `before` (S8.2)
    retry: RetryData | None = None
    #: what `start()` already found: the checksum achieved (S3.4), so no prepare runs
    prepared: Prepared | None = None
    #: timeouts (seconds) of the prepare activity: the starter's settings
    activity_timeout: float | None = None
    heartbeat_timeout: float | None = None
    #: started through a time-skipping test server: cancel nothing in flight (timers.py)
    test_server: bool = False
    #: a later sibling joins its lane after this one: signal `joined` to the parent
    #: once prepare has claimed, joined or ended (S4.8)
    report_joined: bool = False
    #: the numbers that shape its commands, set by whoever started it (shapes.py)
    shape: ActionShape = field(default_factory=ActionShape)
    #: set by a run continuing as new between steps: perform on from there (S11.1)
    resume: "Resume | None" = None


# -- describe --------------------------------------------------------------


@dataclass
class StepData:
    """One step as the workflow sees it."""

    index: int
    status: str = "pending"
    pending_actions_count: int = 0
    unsuccessful_actions_count: int = 0
    started_at: str | None = None
    completed_at: str | None = None
    actions: list[str] = field(default_factory=list)
    waits: list[float] = field(default_factory=list)
    #: ids between the first and latest ones `actions` shows (`bounded`, S11.2)
    actions_left_out: int = 0


@dataclass
class ActionData:
    """The state of one action, as `describe()` and `result()` report it (S9.2)."""

    id: str
    actor_type: str
    actor_id: Any
    name: str
    arguments: list[Any]
    status: str = "pending"
    root: bool = True
    outbound: bool = False
    checksum: str | None = None
    checksum_key: str | None = None
    concurrency_key: str | None = None
    timeout: float | None = None
    started_at: str | None = None
    completed_at: str | None = None
    current_step_index: int | None = None
    after_callbacks_succeeded_count: int | None = None
    after_callbacks_failed_count: int | None = None
    error: ErrorData | None = None
    resolved_by: str | None = None
    parent_id: str | None = None
    steps: list[StepData] = field(default_factory=list)
    #: final and successful for whoever depends on it: succeeded, no callback failed
    successful: bool = False
    #: steps between the first and latest ones `steps` shows (`bounded`, S11.2)
    steps_left_out: int = 0

    def take(self, prepared: Prepared) -> None:
        """What prepare found: the arguments (as `before` left them), keys, timeout."""
        self.arguments = list(prepared.arguments)
        self.outbound = prepared.outbound
        self.concurrency_key = prepared.concurrency_key
        self.checksum_key = prepared.checksum_key
        self.checksum = prepared.checksum
        self.timeout = prepared.timeout

    def performing_in_prepare(self, prepared: Prepared) -> "ActionData":
        """This (pending) state as it is while prepare, having claimed the key, still
        runs — it performs, and its first step runs (or is about to)."""
        started_at = prepared.first_step_started_at
        data = replace(self, steps=[], status="performing", started_at=started_at)
        data.take(prepared)
        if prepared.step_count or prepared.job:
            data.current_step_index = 0
            data.steps.append(StepData(index=0, status="performing", started_at=started_at))
        return data

    def achieve(self, completed_at: str) -> None:
        """S3.4: succeeded at once, nothing run."""
        self.status = "succeeded"
        self.successful = True
        self.completed_at = completed_at


@dataclass(frozen=True)
class Resume:
    """What an action's run hands the next when it continues as new between steps
    (S11.1, `continuing`): its state, and how it holds its key."""

    #: its state as `describe()` gave it then (each step's ids bounded, `bounded`)
    data: ActionData
    #: the step the next run begins with
    next_step: int
    #: when it began performing (the workflow's clock): its timeout counts from here
    performing_since: str
    claimed: bool = False
    claim_released: bool = False
    lane_owned: bool = False
    granted: bool = False
    released_at: str | None = None
    #: the runs it had before this one
    runs: int = 1
    #: set when it continued as new inside a step (from `REVISION` 6): the rest of it
    step: "StepResume | None" = None


@dataclass(frozen=True)
class OpenWait:
    """A step's wait still running as its action continued as new, and when it elapses
    (the workflow's clock): re-armed."""

    wait_id: str
    until: str


@dataclass(frozen=True)
class StepResume:
    """The rest of a step whose action continued as new inside it (S11.1): every child
    started had concluded, so the rest is the children not started, the open waits."""

    index: int
    #: the children not started yet, in call order; the first one's call number
    children: list[ChildIntent]
    first_number: int
    #: `StepOutcome.join_after` of those children, numbered among them
    join_after: list[list[int]] | None = None
    waits: list[OpenWait] = field(default_factory=list)
    marked_failed: bool = False  # (the body assigned step.status = "failed", S3.7)
    #: the pages of children to read from `next_page` on (`StepOutcome.pages_key`)
    pages_key: str | None = None
    next_page: int = 0
    page_count: int = 0
