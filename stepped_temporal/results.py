"""What `result()` and `describe()` return (S9.2)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Self

from .arguments import decode_value
from .keys import tenancy_key
from .messages import ActionData, ErrorData, StepData
from .status import Status


@dataclass(frozen=True)
class ActorRef:
    """An actor named in arguments or results, without loading it."""

    type: str
    id: Any


@dataclass(frozen=True)
class ActionError:
    """An error that ended an action: its type name and message."""

    type: str
    message: str

    def __str__(self) -> str:
        return f"{self.type}: {self.message}"


@dataclass(frozen=True)
class StepState:
    """One step of an action."""

    index: int
    status: str
    pending_actions_count: int
    unsuccessful_actions_count: int
    started_at: datetime | None
    completed_at: datetime | None
    #: ids of the actions the step waited on, successors of superseded ones included
    actions: tuple[str, ...]
    #: durations (seconds) of the step's timed waits
    waits: tuple[float, ...] = ()
    #: ids not in `actions`: past 100, `actions` holds the first 50 and the latest
    #: 50 (S11.2); `ActionHandle.step_actions(index)` lists every one
    actions_left_out: int = 0

    @property
    def actions_count(self) -> int:
        """How many actions the step waited on, exactly."""
        return len(self.actions) + self.actions_left_out


@dataclass(frozen=True)
class ActionState:
    """An action at one moment: every field of S9.2."""

    id: str
    actor_type: str
    actor_id: Any
    name: str
    arguments: list[Any]
    status: Status
    root: bool
    outbound: bool
    checksum: str | None
    checksum_key: str | None
    concurrency_key: str | None
    timeout: float | None
    started_at: datetime | None
    completed_at: datetime | None
    current_step_index: int | None
    after_callbacks_succeeded_count: int | None
    after_callbacks_failed_count: int | None
    error: ActionError | None
    resolved_by: str | None
    steps: tuple[StepState, ...]
    #: the id of the action whose step started this one, None for roots
    parent_id: str | None = None
    #: steps not in `steps`: past 100, `steps` holds the first 50 and the latest 50
    #: (S11.2; the ones left out all succeeded: the action went on past them)
    steps_left_out: int = 0

    @property
    def steps_count(self) -> int:
        """How many steps the action has begun, exactly."""
        return len(self.steps) + self.steps_left_out

    def step(self, index: int) -> StepState | None:
        """Step `index`, if `steps` lists it."""
        return next((step for step in self.steps if step.index == index), None)

    @property
    def final(self) -> bool:
        """Whether the status is final."""
        return self.status.final

    @property
    def tenancy_key(self) -> str:
        """``"<TypeName>/<id>/<action name>"`` (S1.3)."""
        return tenancy_key(self.actor_type, self.actor_id, self.name)

    @classmethod
    def from_data(cls, data: ActionData) -> Self:
        """Build from the workflow's wire form."""
        return cls(
            id=data.id,
            actor_type=data.actor_type,
            actor_id=data.actor_id,
            name=data.name,
            arguments=[decode_value(a, ActorRef) for a in data.arguments],
            status=Status(data.status),
            root=data.root,
            outbound=data.outbound,
            checksum=data.checksum,
            checksum_key=data.checksum_key,
            concurrency_key=data.concurrency_key,
            timeout=data.timeout,
            started_at=_time(data.started_at),
            completed_at=_time(data.completed_at),
            current_step_index=data.current_step_index,
            after_callbacks_succeeded_count=data.after_callbacks_succeeded_count,
            after_callbacks_failed_count=data.after_callbacks_failed_count,
            error=_error(data.error),
            resolved_by=data.resolved_by,
            steps=tuple(_step(s) for s in data.steps),
            steps_left_out=data.steps_left_out,
            parent_id=data.parent_id,
        )


@dataclass(frozen=True)
class ActionResult(ActionState):
    """An action once final: the same fields as `ActionState`."""

    @property
    def succeeded(self) -> bool:
        """Whether the action succeeded."""
        return self.status is Status.SUCCEEDED


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _error(error: ErrorData | None) -> ActionError | None:
    return ActionError(error.type, error.message) if error else None


def _step(step: StepData) -> StepState:
    return StepState(
        index=step.index,
        status=step.status,
        pending_actions_count=step.pending_actions_count,
        unsuccessful_actions_count=step.unsuccessful_actions_count,
        started_at=_time(step.started_at),
        completed_at=_time(step.completed_at),
        actions=tuple(step.actions),
        waits=tuple(step.waits),
        actions_left_out=step.actions_left_out,
    )
