"""`Definition`: the decorator DSL that declares an action (S2)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio.common import RetryPolicy

from .errors import ActionNotFound, DefinitionError
from .messages import RetryData
from .registry import ActorBase
from .status import COMPLETION_STATUSES, LANE_POLICIES, completion_status

F = TypeVar("F", bound=Callable[..., Any])

#: Methods of the Actor mixin that are never actions.
_FRAMEWORK_NAMES = frozenset(
    {
        "stepped_action",
        "stepped_definition",
        "after_stepped_action",
        "prepend_stepped_action_step",
        "complete_stepped_action",
        "stepped_find",
    }
)


class Definition:
    """How an action of one actor class runs: steps, hooks, keys and callbacks.

    Every decorator method returns the function it decorates, so several
    definitions can reuse one function and ``@definition.step`` can be stacked.
    """

    def __init__(
        self,
        name: str,
        actor_class: type[ActorBase],
        *,
        outbound: bool = False,
        timeout: timedelta | float | int | str | None = None,
        job: Callable[..., Any] | None = None,
        retry: RetryPolicy | None = None,
        lane: str | None = None,
        max_pending: int | None = None,
    ) -> None:
        if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
            raise DefinitionError(
                f"{actor_class.__qualname__}: action name {name!r} must be a public identifier"
            )
        if timeout is not None and not isinstance(timeout, (timedelta, int, float, str)):
            raise DefinitionError(
                f"{actor_class.__qualname__}.{name}: timeout must be a timedelta, seconds or a "
                f"method name, got {type(timeout).__name__}"
            )
        if job is not None and not callable(job):
            raise DefinitionError(f"{actor_class.__qualname__}.{name}: job must be callable")
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise DefinitionError(
                f"{actor_class.__qualname__}.{name}: retry must be a stepped_temporal.RetryPolicy"
            )
        where = f"{actor_class.__qualname__}.{name}"
        if lane is not None and lane not in LANE_POLICIES:
            raise DefinitionError(f"{where}: lane must be one of {LANE_POLICIES}, got {lane!r}")
        if max_pending is not None:
            if lane != "queue":
                raise DefinitionError(f"{where}: max_pending needs lane='queue', got {lane!r}")
            if isinstance(max_pending, bool) or not isinstance(max_pending, int) or max_pending < 1:
                raise DefinitionError(
                    f"{where}: max_pending must be a positive int, got {max_pending!r}"
                )
        #: the lane policy (S4.10); None: the configured default
        self.lane = lane
        self.max_pending = max_pending
        self.name = name
        self.actor_class = actor_class
        self.outbound = outbound or job is not None
        self.timeout = timeout
        self.job = job
        self.retry = retry
        self.before_hooks: list[Callable[..., Any]] = []
        self._prepended: list[Callable[..., Any]] = []
        self._steps: list[Callable[..., Any]] = []
        self.concurrency_key_fn: Callable[..., Any] | str | None = None
        self.checksum_fn: Callable[..., Any] | str | None = None
        self.checksum_key_fn: Callable[..., Any] | str | None = None
        self.after_callbacks: list[tuple[str, Callable[..., Any]]] = []

    def __repr__(self) -> str:
        return f"<Definition {self.actor_class.__qualname__}.{self.name}>"

    @property
    def steps(self) -> list[Callable[..., Any]]:
        """The declared steps, prepended ones first (generated steps are not listed)."""
        return [*self._prepended, *self._steps]

    def copy_for(self, actor_class: type[ActorBase]) -> Definition:
        """A copy owned by `actor_class` (a subclass), so changing it leaves this one alone."""
        twin = Definition(
            self.name,
            actor_class,
            outbound=self.outbound,
            timeout=self.timeout,
            job=self.job,
            retry=self.retry,
        )
        twin.before_hooks = list(self.before_hooks)
        twin._prepended = list(self._prepended)
        twin._steps = list(self._steps)
        twin.concurrency_key_fn = self.concurrency_key_fn
        twin.checksum_fn = self.checksum_fn
        twin.checksum_key_fn = self.checksum_key_fn
        twin.after_callbacks = list(self.after_callbacks)
        return twin

    # -- decorators ---------------------------------------------------
    def step(self, fn: F) -> F:
        """Add a step, called as ``fn(actor, step, *arguments)`` (S3.6)."""
        self._steps.append(_callable(fn, self, "step"))
        return fn

    def prepend_step(self, fn: F) -> F:
        """Add a step that runs before every other step (and before a job)."""
        self._prepended.insert(0, _callable(fn, self, "prepend_step"))
        return fn

    def before(self, fn: F) -> F:
        """Add a hook called as ``fn(actor, action, *arguments)`` before anything else (S3.2)."""
        self.before_hooks.append(_callable(fn, self, "before"))
        return fn

    def concurrency_key(self, fn: F) -> F:
        """Set the lane key: ``fn(actor, *arguments)`` or an actor method name (S2.6)."""
        self.concurrency_key_fn = _key_callable(fn, self, "concurrency_key")
        return fn

    def checksum(self, fn: F) -> F:
        """Set the checksum source: ``fn(actor, *arguments)`` or an actor method name."""
        self.checksum_fn = _key_callable(fn, self, "checksum")
        return fn

    def checksum_key(self, fn: F) -> F:
        """Set the achievement key: ``fn(actor, *arguments)`` or an actor method name."""
        self.checksum_key_fn = _key_callable(fn, self, "checksum_key")
        return fn

    def after(self, *statuses: str) -> Callable[[F], F]:
        """Decorator for a callback run on the given final statuses; none means all four (S2.5)."""
        names = [completion_status(s, what=f"{self!r}.after") for s in statuses]
        if not names:
            names = list(COMPLETION_STATUSES)

        def decorate(fn: F) -> F:
            checked = _callable(fn, self, "after")
            self.after_callbacks.extend((status, checked) for status in names)
            return fn

        return decorate

    def succeeded(self, fn: F) -> F:
        """Callback run when the action succeeded."""
        return self.after("succeeded")(fn)

    def failed(self, fn: F) -> F:
        """Callback run when the action failed."""
        return self.after("failed")(fn)

    def cancelled(self, fn: F) -> F:
        """Callback run when the action was cancelled."""
        return self.after("cancelled")(fn)

    def timed_out(self, fn: F) -> F:
        """Callback run when the action timed out."""
        return self.after("timed_out")(fn)

    # -- interpretation (used by activities) -----------------------------
    def runnable_steps(self) -> list[Callable[..., Any]]:
        """Steps as they run: prepended, then the declared ones or a generated one (S2.2).

        A job-backed action's job is not a step here: it runs in its own activity.
        """
        if self._steps or self.job is not None:
            return self.steps
        return [*self._prepended, _method_step(self.name)]

    def retry_data(self) -> RetryData | None:
        """The retry policy as it travels to the workflow, or None for the default."""
        policy = self.retry
        if policy is None:
            return None
        return RetryData(
            initial_interval=policy.initial_interval.total_seconds(),
            backoff_coefficient=policy.backoff_coefficient,
            maximum_interval=(
                policy.maximum_interval.total_seconds() if policy.maximum_interval else None
            ),
            maximum_attempts=policy.maximum_attempts,
            non_retryable_error_types=list(policy.non_retryable_error_types or []),
        )

    def callbacks_for(self, status: str) -> list[Callable[..., Any]]:
        """The after-callbacks registered for `status`, in registration order."""
        return [fn for s, fn in self.after_callbacks if s == status]


def _callable(fn: Any, definition: Definition, decorator: str) -> Callable[..., Any]:
    if not callable(fn):
        raise DefinitionError(f"{definition!r}.{decorator} takes a function, got {fn!r}")
    return fn  # type: ignore[no-any-return]


def _key_callable(fn: Any, definition: Definition, decorator: str) -> Callable[..., Any] | str:
    if isinstance(fn, str):
        return fn
    return _callable(fn, definition, decorator)


def _method_step(name: str) -> Callable[..., Any]:
    def generated_step(actor: Any, step: Any, *arguments: Any) -> Any:
        if not is_public_method(type(actor), name):
            raise ActionNotFound(
                f"action {name!r} of {type(actor).__qualname__} has no steps and no job, and "
                f"there is no public method {name!r} for its generated step to call"
            )
        return getattr(actor, name)(*arguments)

    generated_step.__qualname__ = f"generated step calling {name}()"
    return generated_step


def is_public_method(actor_class: type[Any], name: str) -> bool:
    """Whether `name` is a public method an undeclared action may call (S2.3)."""
    if not isinstance(name, str) or name.startswith("_") or name in _FRAMEWORK_NAMES:
        return False
    attribute = inspect.getattr_static(actor_class, name, None)
    if isinstance(attribute, (staticmethod, classmethod)):
        return False
    return inspect.isfunction(attribute) and not getattr(attribute, "__stepped_generated__", False)


def declared_definition(actor_class: type[ActorBase], name: str) -> Definition | None:
    """The definition of `name` declared on `actor_class` or inherited from a base (S2.4)."""
    for klass in actor_class.__mro__:
        found = klass.__dict__.get("_stepped_definitions", {}).get(name)
        if found is not None:
            return found  # type: ignore[no-any-return]
    return None


def resolve_definition(
    actor_class: type[ActorBase], name: str, *, strict: bool = False
) -> Definition:
    """The definition to run for `name`: declared, or implied by a public method (S2.3)."""
    definition = declared_definition(actor_class, name)
    if definition is not None:
        return definition
    type_name = actor_class.__dict__.get("__stepped_name__", actor_class.__name__)
    if strict:
        raise ActionNotFound(
            f"{type_name} declares no action {name!r} (strict mode requires stepped_action)"
        )
    if not is_public_method(actor_class, name):
        raise ActionNotFound(
            f"{type_name} has no action {name!r}: it is neither declared with stepped_action "
            f"nor a public method of {actor_class.__qualname__}"
        )
    return Definition(name, actor_class)
