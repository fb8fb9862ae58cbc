"""`Action` and `Step`: what user code holds while an activity runs it.

Neither touches Temporal. A step only records *intents* (children, waits,
status); the workflow acts on them once the body has returned (S3.6).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from .arguments import encode_arguments
from .definitions import Definition, resolve_definition
from .errors import ArgumentTypeError, ArgumentValueError, SteppedError
from .messages import ChildIntent
from .registry import ActorBase, actor_ref
from .status import completion_status


class Action:
    """One action, as seen by `before`, steps (``step.action``), callbacks and jobs."""

    def __init__(
        self,
        *,
        id: str,
        actor: ActorBase,
        name: str,
        arguments: list[Any],
        status: str = "pending",
        root: bool = True,
        outbound: bool = False,
        checksum: str | None = None,
        checksum_key: str | None = None,
        concurrency_key: str | None = None,
        can_complete: bool = False,
        unit: str = "",
    ) -> None:
        self.id = id
        self.actor = actor
        self.name = name
        self._arguments = list(arguments)
        self.status = status
        self.root = root
        self.outbound = outbound
        self.checksum = checksum
        self.checksum_key = checksum_key
        self.concurrency_key = concurrency_key
        self._can_complete = can_complete
        #: set by cancel() / complete(): the status asked for
        self.completion: str | None = None
        self._unit = unit

    @property
    def idempotency_key(self) -> str:
        """A key unique to this action and the hook, callback or job now running, the
        same on every retry of it: pass it to outside systems so a retried call is
        recognised (Stepped makes only database effects exactly-once)."""
        return f"{self.id}/{self._unit}" if self._unit else self.id

    def __repr__(self) -> str:
        return f"<Action {self.id} {self.status}>"

    @property
    def arguments(self) -> list[Any]:
        """The action's arguments; assign a new list or change this one (S3.10)."""
        return self._arguments

    @arguments.setter
    def arguments(self, value: list[Any]) -> None:
        encode_arguments(value, culprit=f"assigning arguments of action {self.id}")
        self._arguments = list(value)

    def cancel(self) -> None:
        """Cancel the action (in `before` and jobs)."""
        self.complete("cancelled")

    def complete(self, status: str = "succeeded") -> None:
        """Complete the action with `status` (in `before` and jobs)."""
        name = completion_status(status, what=f"complete() of action {self.id}")
        if not self._can_complete:
            raise SteppedError(
                f"action {self.id}: cancel()/complete() work in before hooks and jobs only; "
                f"a step fails its action with step.status = 'failed'"
            )
        self.completion = name


class Step:
    """The step being run; ``step.do``/``step.on``/``step.wait`` record dependencies."""

    def __init__(self, action: Action, index: int) -> None:
        self.action = action
        self.index = index
        self._status = "performing"
        self._open = True
        self.children: list[ChildIntent] = []
        #: per child: the actor, its definition and the arguments as given (for its keys)
        self.targets: list[tuple[ActorBase, Definition, tuple[Any, ...]]] = []
        self.waits: list[float] = []

    def __repr__(self) -> str:
        return f"<Step {self.index} of {self.action.id}>"

    @property
    def idempotency_key(self) -> str:
        """A key unique to this action and step, the same on every retry of the step:
        pass it to outside systems so a retried call is recognised (Stepped makes
        only database effects exactly-once)."""
        return f"{self.action.id}/step/{self.index}"

    @property
    def status(self) -> str:
        """ "performing" while the body runs; assign "failed" to fail the step (S3.7)."""
        return self._status

    @status.setter
    def status(self, value: str) -> None:
        if value != "failed":
            raise ValueError(f"step.status can only be set to 'failed', not {value!r}")
        self._status = "failed"

    def do(self, name: str, *arguments: Any) -> None:
        """Add a child action `name` on this step's actor."""
        self._check_open("do")
        self.on(self.action.actor, name, *arguments)

    def on(
        self, actors: ActorBase | Iterable[ActorBase | None] | None, name: str, *arguments: Any
    ) -> None:
        """Add one child action `name` per actor; None actors are skipped (S3.11)."""
        self._check_open("on")
        if actors is None:
            return
        if isinstance(actors, ActorBase):
            chosen: list[ActorBase | None] = [actors]
        elif isinstance(actors, Iterable) and not isinstance(actors, (str, bytes, dict)):
            chosen = list(actors)
        else:
            raise ArgumentTypeError(
                f"step.on takes an actor, None or an iterable of actors, got "
                f"{type(actors).__qualname__} {actors!r} (not a stepped_temporal.Actor)"
            )
        intents = []
        targets: list[tuple[ActorBase, Definition, tuple[Any, ...]]] = []
        for actor in chosen:
            if actor is None:
                continue
            type_name, actor_id = actor_ref(actor)
            definition = resolve_definition(type(actor), name)
            encoded = encode_arguments(
                arguments, culprit=f"step {self.index} of {self.action.id}: {type_name}.{name}"
            )
            intents.append(
                ChildIntent(type_name, actor_id, name, encoded, retry=definition.retry_data())
            )
            targets.append((actor, definition, arguments))
        self.children.extend(intents)
        self.targets.extend(targets)

    def wait(self, duration: timedelta | float | int) -> None:
        """Add a durable timer that concludes successfully when it elapses (S3.12)."""
        self._check_open("wait")
        if isinstance(duration, timedelta):
            seconds = duration.total_seconds()
        elif isinstance(duration, (int, float)) and not isinstance(duration, bool):
            seconds = float(duration)
        else:
            raise ArgumentTypeError(f"step.wait takes a timedelta or seconds, got {duration!r}")
        if seconds < 0:
            raise ArgumentValueError(
                f"step.wait duration must not be negative, got {duration!r} ({seconds} seconds)"
            )
        self.waits.append(seconds)

    def close(self) -> None:
        """Called when the body returned: later calls are mistakes."""
        self._open = False

    def _check_open(self, what: str) -> None:
        if not self._open:
            raise SteppedError(
                f"step.{what} called after step {self.index} of {self.action.id} returned; "
                f"dependencies can only be added while the step body runs"
            )
