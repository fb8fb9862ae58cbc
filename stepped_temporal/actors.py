"""The `Actor` mixin: declaring actions on a class and starting them on an instance (S1, S2, S6).

Registration, references and loading are the registry's (`registry.py`);
this module is the user's surface on top of it: `stepped_action` and the
decorators declare (S2), ``<name>_later`` / ``<name>_now`` and
`complete_stepped_action` call the client (S9, S6).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from .client import ActionHandle, run, start
from .completing import complete
from .definitions import Definition, declared_definition
from .registry import ActorBase
from .results import ActionResult
from .status import completion_status

__all__ = ["Actor"]

F = TypeVar("F", bound=Callable[..., Any])


class Actor(ActorBase):
    """Mixin that makes a class (a SQLAlchemy model or a plain class) an actor.

    A mapped actor is loaded by primary key from the configured database; a
    plain class provides ``stepped_find(cls, id)`` and an ``id`` attribute.
    The type name is the class ``__name__`` unless ``__stepped_name__`` is set.
    """

    #: the mixin itself is no actor type (see `ActorBase`)
    _stepped_mixin = True

    # -- declaring (S2) -------------------------------------------------
    @classmethod
    def stepped_action(
        cls,
        name: str,
        *,
        outbound: bool = False,
        timeout: Any = None,
        job: Callable[..., Any] | None = None,
        retry: Any = None,
        lane: str | None = None,
        max_pending: int | None = None,
    ) -> Definition:
        """Declare action `name` on this class and return its `Definition` (S2.1);
        `lane` picks its lane policy (S4.10), `max_pending` bounds a "queue" lane."""
        definition = Definition(
            name,
            cls,
            outbound=outbound,
            timeout=timeout,
            job=job,
            retry=retry,
            lane=lane,
            max_pending=max_pending,
        )
        _own_definitions(cls)[name] = definition
        _add_generated_methods(cls, name)
        return definition

    @classmethod
    def stepped_definition(cls, name: str) -> Definition | None:
        """The definition of `name` that applies to this class, own or inherited."""
        return declared_definition(cls, name)

    @classmethod
    def after_stepped_action(cls, name: str, *statuses: str) -> Callable[[F], F]:
        """Decorator adding an after-callback to `name` on this class only (S2.4, S2.5)."""
        for status in statuses:  # before declaring anything: a mistake leaves the class as it was
            completion_status(status, what=f"{cls.__qualname__}.after_stepped_action({name!r})")
        return cls._own_definition(name).after(*statuses)

    @classmethod
    def prepend_stepped_action_step(cls, name: str) -> Callable[[F], F]:
        """Decorator adding a step that runs before the others of `name` (S2.4)."""
        return cls._own_definition(name).prepend_step

    @classmethod
    def _own_definition(cls, name: str) -> Definition:
        """This class's own definition of `name`, copied from the inherited one if needed."""
        own = _own_definitions(cls)
        if name not in own:
            inherited = cls.stepped_definition(name)
            own[name] = inherited.copy_for(cls) if inherited else Definition(name, cls)
            _add_generated_methods(cls, name)
        return own[name]

    # -- completing outbound actions (S6) ---------------------------------
    async def complete_stepped_action(
        self, name: str, status: str = "succeeded", reason: str | None = None
    ) -> bool:
        """Complete this actor's performing outbound action `name` (S6.1-S6.3), an
        unsuccessful status with `reason` as its error's message (S9.6)."""
        return await complete(self, name, status, reason)


def _own_definitions(cls: type[Actor]) -> dict[str, Definition]:
    if "_stepped_definitions" not in cls.__dict__:
        cls._stepped_definitions = {}  # type: ignore[attr-defined]
    return cls.__dict__["_stepped_definitions"]  # type: ignore[no-any-return]


def _add_generated_methods(cls: type[Actor], name: str) -> None:
    """Add ``<name>_later`` and ``<name>_now`` unless the class defines them itself."""

    async def later(self: Actor, *arguments: Any) -> ActionHandle:
        return await start(self, name, *arguments)

    async def now(self: Actor, *arguments: Any) -> ActionResult:
        return await run(self, name, *arguments)

    for suffix, method in (("later", later), ("now", now)):
        attribute = f"{name}_{suffix}"
        existing = getattr(cls, attribute, None)
        if existing is not None and not getattr(existing, "__stepped_generated__", False):
            continue
        method.__name__ = method.__qualname__ = attribute
        method.__doc__ = f"{'Start' if suffix == 'later' else 'Run'} the {name!r} action."
        setattr(method, "__stepped_generated__", True)  # noqa: B010
        setattr(cls, attribute, method)
