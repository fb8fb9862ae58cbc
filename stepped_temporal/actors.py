"""The `Actor` mixin, the registry of actor types, and loading actors (S1).

Only classes registered here can ever be loaded from a workflow input (S1.2):
a payload names a type by its registered name, never by module path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Mapper, Session

from .errors import ActorNotFound, ArgumentTypeError, DefinitionError, UnknownActorType

if TYPE_CHECKING:
    from .client import ActionHandle
    from .definitions import Definition
    from .results import ActionResult

F = TypeVar("F", bound=Callable[..., Any])

_registry: dict[str, type[Actor]] = {}


class Actor:
    """Mixin that makes a class (a SQLAlchemy model or a plain class) an actor.

    A mapped actor is loaded by primary key from the configured database; a
    plain class provides ``stepped_find(cls, id)`` and an ``id`` attribute.
    The type name is the class ``__name__`` unless ``__stepped_name__`` is set.
    """

    __stepped_name__: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("__abstract__"):
            return
        register_actor(cls)

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
    ) -> Definition:
        """Declare action `name` on this class and return its `Definition` (S2.1)."""
        from .definitions import Definition

        definition = Definition(name, cls, outbound=outbound, timeout=timeout, job=job, retry=retry)
        _own_definitions(cls)[name] = definition
        _add_generated_methods(cls, name)
        return definition

    @classmethod
    def stepped_definition(cls, name: str) -> Definition | None:
        """The definition of `name` that applies to this class, own or inherited."""
        for klass in cls.__mro__:
            found = klass.__dict__.get("_stepped_definitions", {}).get(name)
            if found is not None:
                return found  # type: ignore[no-any-return]
        return None

    @classmethod
    def after_stepped_action(cls, name: str, *statuses: str) -> Callable[[F], F]:
        """Decorator adding an after-callback to `name` on this class only (S2.4, S2.5)."""
        from .status import completion_status

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
        from .definitions import Definition

        own = _own_definitions(cls)
        if name not in own:
            inherited = cls.stepped_definition(name)
            own[name] = inherited.copy_for(cls) if inherited else Definition(name, cls)
            _add_generated_methods(cls, name)
        return own[name]

    # -- completing outbound actions (S6) ---------------------------------
    async def complete_stepped_action(self, name: str, status: str = "succeeded") -> bool:
        """Complete this actor's performing outbound action `name` (S6.1-S6.3)."""
        from .client import complete

        return await complete(self, name, status)


def _own_definitions(cls: type[Actor]) -> dict[str, Definition]:
    if "_stepped_definitions" not in cls.__dict__:
        cls._stepped_definitions = {}  # type: ignore[attr-defined]
    return cls.__dict__["_stepped_definitions"]  # type: ignore[no-any-return]


def _add_generated_methods(cls: type[Actor], name: str) -> None:
    """Add ``<name>_later`` and ``<name>_now`` unless the class defines them itself."""

    async def later(self: Actor, *arguments: Any) -> ActionHandle:
        from .client import start

        return await start(self, name, *arguments)

    async def now(self: Actor, *arguments: Any) -> ActionResult:
        from .client import run

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


def register_actor(cls: type[Actor]) -> None:
    """Register `cls` under its type name (S1.1).

    A class with the same module and qualified name replaces the older one (a
    reload, or a test that rebuilds its models); any other clash raises.
    """
    type_name = actor_type_name(cls)
    taken = _registry.get(type_name)
    if taken is not None and taken is not cls:
        same = (taken.__module__, taken.__qualname__) == (cls.__module__, cls.__qualname__)
        if not same:
            raise DefinitionError(
                f"actor type name {type_name!r} is taken by "
                f"{taken.__module__}.{taken.__qualname__}; "
                f"set __stepped_name__ on {cls.__module__}.{cls.__qualname__} to another name"
            )
    _registry[type_name] = cls


def actor_type_name(cls: type[Any]) -> str:
    """The registered name of an actor class."""
    return cls.__dict__.get("__stepped_name__", cls.__name__)  # type: ignore[no-any-return]


def actor_class(type_name: str) -> type[Actor]:
    """The registered class for `type_name`, or `UnknownActorType`."""
    try:
        return _registry[type_name]
    except KeyError:
        raise UnknownActorType(
            f"unknown actor type {type_name!r}: no registered stepped_temporal.Actor subclass has "
            f"that name (is the module that declares it imported by the worker?)"
        ) from None


def registered_actor_classes() -> list[type[Actor]]:
    """Every registered actor class, in registration order."""
    return list(_registry.values())


def _mapper(cls: type[Any]) -> Mapper[Any] | None:
    mapper = sa.inspect(cls, raiseerr=False)
    return mapper if isinstance(mapper, Mapper) else None


def is_mapped(cls: type[Any]) -> bool:
    """Whether `cls` is a SQLAlchemy-mapped class."""
    return _mapper(cls) is not None


def actor_ref(actor: Any) -> tuple[str, Any]:
    """(type name, id) of an actor instance; the id must be set and JSON-able."""
    if not isinstance(actor, Actor):
        raise ArgumentTypeError(
            f"{actor!r} is not an actor: its class {type(actor).__qualname__} does not "
            f"subclass stepped_temporal.Actor"
        )
    cls = type(actor)
    type_name = actor_type_name(cls)
    if _registry.get(type_name) is not cls:
        raise UnknownActorType(
            f"actor class {cls.__module__}.{cls.__qualname__} is not the registered class for "
            f"type {type_name!r}"
        )
    mapper = _mapper(cls)
    if mapper is not None:
        values = mapper.primary_key_from_instance(actor)
        actor_id: Any = values[0] if len(values) == 1 else list(values)
        missing = any(v is None for v in values)
    else:
        actor_id = getattr(actor, "id", None)
        missing = actor_id is None
    if missing:
        raise ArgumentTypeError(
            f"{type_name} actor {actor!r} has no id yet: persist it before starting actions on it"
        )
    if not _is_json_id(actor_id):
        raise ArgumentTypeError(
            f"{type_name} actor id {actor_id!r} has type {type(actor_id).__name__}; "
            f"actor ids must be int or str"
        )
    return type_name, actor_id


def _is_json_id(actor_id: Any) -> bool:
    if isinstance(actor_id, list):
        return all(_is_json_id(part) for part in actor_id)
    return isinstance(actor_id, (int, str)) and not isinstance(actor_id, bool)


def load_actor(session: Session | None, type_name: str, actor_id: Any) -> Actor:
    """Load a registered actor fresh: mapped ones in `session`, plain ones by `stepped_find`."""
    cls = actor_class(type_name)
    if is_mapped(cls):
        if session is None:
            raise DefinitionError(f"{type_name} is a mapped class but no database is configured")
        key = tuple(actor_id) if isinstance(actor_id, list) else actor_id
        found = session.get(cls, key)
    else:
        finder = getattr(cls, "stepped_find", None)
        if finder is None:
            raise DefinitionError(
                f"{type_name} is neither a SQLAlchemy model nor defines stepped_find(cls, id)"
            )
        found = finder(actor_id)
    if found is None:
        raise ActorNotFound(f"{type_name} with id {actor_id!r} does not exist (was it deleted?)")
    return found
