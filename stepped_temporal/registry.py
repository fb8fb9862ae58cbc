"""The registry of actor types, actor references and loading actors (S1.1-S1.3).

Only classes registered here can ever be loaded from a workflow input (S1.2):
a payload names a type by its registered name, never by module path. Every
class deriving from `ActorBase` (through the `Actor` mixin) registers itself
when it is defined; the mixin's declaring and starting methods live in
`actors.py`, above the client, so nothing here reaches up.
"""

from __future__ import annotations

import weakref
from typing import Any, ClassVar, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Mapper, Session
from sqlalchemy.orm.util import identity_key

from .errors import ActorNotFound, ArgumentTypeError, DefinitionError, UnknownActorType

__all__ = [
    "ActorBase",
    "actor_class",
    "actor_ref",
    "actor_type_name",
    "is_mapped",
    "load_actor",
    "register_actor",
    "registered_actor_classes",
]

_registry: dict[str, type[ActorBase]] = {}
A = TypeVar("A")


class ActorBase:
    """What makes a class an actor type: registration under its type name (S1.1).

    Applications subclass `stepped_temporal.Actor`, which derives from this.
    A class that sets ``__abstract__`` (or the mixin itself) is not registered.
    """

    __stepped_name__: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("__abstract__") or cls.__dict__.get("_stepped_mixin"):
            return
        register_actor(cls)


def register_actor(cls: type[ActorBase]) -> None:
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


def actor_class(type_name: str) -> type[ActorBase]:
    """The registered class for `type_name`, or `UnknownActorType`."""
    try:
        return _registry[type_name]
    except KeyError:
        raise UnknownActorType(
            f"unknown actor type {type_name!r}: no registered stepped_temporal.Actor subclass has "
            f"that name (is the module that declares it imported by the worker?)"
        ) from None


def registered_actor_classes() -> list[type[ActorBase]]:
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
    if not isinstance(actor, ActorBase):
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


def load_actor(session: Session | None, type_name: str, actor_id: Any) -> ActorBase:
    """Load a registered actor fresh: mapped ones in `session`, plain ones by `stepped_find`."""
    cls = actor_class(type_name)
    if is_mapped(cls):
        if session is None:
            raise DefinitionError(f"{type_name} is a mapped class but no database is configured")
        key = tuple(actor_id) if isinstance(actor_id, list) else actor_id
        found = _get(session, cls, key)
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


#: per mapped class: SELECT by primary key, built once, and its parameter names
_by_key: weakref.WeakKeyDictionary[type[Any], tuple[sa.Select[Any], list[str]]] = (
    weakref.WeakKeyDictionary()
)


def _get(session: Session, cls: type[A], key: Any) -> A | None:
    """`session.get(cls, key)` at about half the CPU: the identity map first, then
    one statement built once per class (Session.get builds and keys its own on
    every call, and every step loads its actor)."""
    values = key if isinstance(key, tuple) else (key,)
    present = session.identity_map.get(identity_key(cls, values))
    if present is not None:
        return present
    found = _by_key.get(cls)
    if found is None:
        columns = sa.inspect(cls).primary_key
        names = [f"pk_{number}" for number in range(len(columns))]
        statement = sa.select(cls).where(
            *(column == sa.bindparam(name) for column, name in zip(columns, names, strict=True))
        )
        found = _by_key[cls] = (statement, names)
    statement, names = found
    if len(values) != len(names):
        # as Session.get would say
        raise sa.exc.InvalidRequestError(
            f"Incorrect number of values in identifier formed from argument {key!r} for "
            f"{cls.__name__}: expected {len(names)}"
        )
    loaded = session.execute(statement, dict(zip(names, values, strict=True)))
    return loaded.scalar_one_or_none()
