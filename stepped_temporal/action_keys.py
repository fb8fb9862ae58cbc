"""An action's keys, checksum and timeout, as its definition computes them (S3.3-S3.4, S4.8, S7).

The concurrency key names the lane (S4), the checksum key and checksum the
achievement (S5); blank means the tenancy key (S3.3). The step activity
computes each child's concurrency key ahead of its prepare so the children of
one step join their lanes in call order (S4.8). `achieved_before_start`
decides the skip (S3.4) in the client, before any workflow starts.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from .action import Step
from .checksums import checksum as digest
from .config import get_engine, read_session
from .definitions import Definition
from .errors import DefinitionError
from .keys import tenancy_key
from .messages import ActionContext, Prepared
from .registry import ActorBase
from .store import achievements
from .user_code import call_user, load

__all__ = [
    "achieved_before_start",
    "checksum_of",
    "child_keys",
    "concurrency_key_of",
    "tenancy",
    "timeout_of",
]

log = logging.getLogger("stepped_temporal")


def tenancy(context: ActionContext) -> str:
    return tenancy_key(context.actor_type, context.actor_id, context.name)


def _key(
    definition: Definition,
    fn: Callable[..., Any] | str | None,
    actor: ActorBase,
    arguments: list[Any],
    default: str | None,
) -> Any:
    if fn is None:
        return default
    if isinstance(fn, str):
        method = getattr(actor, fn, None)
        if not callable(method):
            raise DefinitionError(
                f"{definition!r}: {type(actor).__qualname__} has no method {fn!r}"
            )
        return call_user(method)
    return call_user(fn, actor, *arguments)


def _key_text(value: Any, default: str) -> str:
    """S3.3: blank means the default, a list is joined with '/', anything else str()-ed."""
    if value is None or value == "" or value == []:
        return default
    if isinstance(value, (list, tuple)):
        return "/".join(str(part) for part in value)
    return str(value)


def concurrency_key_of(
    definition: Definition, actor: ActorBase, arguments: list[Any], context: ActionContext
) -> str:
    """S3.3: the lane's key (default: the tenancy key)."""
    found = _key(definition, definition.concurrency_key_fn, actor, arguments, None)
    return _key_text(found, tenancy(context))


def checksum_of(
    definition: Definition, actor: ActorBase, arguments: list[Any], context: ActionContext
) -> tuple[str, str | None]:
    """S3.3, S5: the checksum_key (default: the tenancy key) and the checksum, if any."""
    found = _key(definition, definition.checksum_key_fn, actor, arguments, None)
    checksum_key = _key_text(found, tenancy(context))
    if definition.checksum_fn is None:
        return checksum_key, None
    return checksum_key, digest(_key(definition, definition.checksum_fn, actor, arguments, None))


def timeout_of(definition: Definition, actor: ActorBase) -> float | None:
    timeout = definition.timeout
    if isinstance(timeout, str):
        method = getattr(actor, timeout, None)
        if not callable(method):
            raise DefinitionError(f"{definition!r}: timeout method {timeout!r} does not exist")
        timeout = call_user(method)
    if timeout is None:
        return None
    if isinstance(timeout, timedelta):
        return timeout.total_seconds()
    if isinstance(timeout, (int, float)) and not isinstance(timeout, bool):
        return float(timeout)
    raise DefinitionError(
        f"{definition!r}: timeout must be a timedelta or seconds, got {timeout!r}"
    )


def child_keys(step: Step) -> list[str | None]:
    """The concurrency key of each child the step asked for, as its prepare will
    compute it (S3.3) — None where that cannot be known now: a `before` hook may
    change its arguments, or its key function failed here (S4.8)."""
    keys: list[str | None] = []
    for intent, (actor, definition, arguments) in zip(step.children, step.targets, strict=True):
        if definition.before_hooks:
            keys.append(None)
            continue
        try:
            found = _key(definition, definition.concurrency_key_fn, actor, list(arguments), None)
            keys.append(
                _key_text(found, tenancy_key(intent.actor_type, intent.actor_id, intent.name))
            )
        except Exception as error:
            log.debug("key of child %s.%s not known: %r", intent.actor_type, intent.name, error)
            keys.append(None)
    return keys


def achieved_before_start(
    definition: Definition, type_name: str, actor_id: Any, encoded: list[Any]
) -> Prepared | None:
    """S3.4 decided before the workflow starts: what prepare would find, when the
    action's checksum is already achieved; None when it is not, or it cannot tell.

    Only for definitions without `before` (which runs first and may change the
    arguments, or end the action). It reads, as prepare does, an actor loaded
    fresh from the configured database, so it decides as the worker would — and
    an achieved start then costs one workflow task and no activity.
    """
    if definition.checksum_fn is None or definition.before_hooks or not _database_exists():
        return None
    context = ActionContext(
        action_id="",
        actor_type=type_name,
        actor_id=actor_id,
        name=definition.name,
        arguments=encoded,
        root=True,
    )
    try:
        with read_session() as session:
            actor, _, arguments = load(session, context)
            checksum_key, checksum = checksum_of(definition, actor, arguments, context)
            if checksum is None or not achievements.exists(session, checksum_key, checksum):
                return None
            concurrency_key = concurrency_key_of(definition, actor, arguments, context)
            timeout = timeout_of(definition, actor)
    except Exception as error:  # the worker's prepare will meet it and report it properly
        log.debug("achievement not checked before starting %s: %r", definition.name, error)
        return None
    return Prepared(
        outcome="achieved",
        arguments=encoded,
        concurrency_key=concurrency_key,
        checksum_key=checksum_key,
        checksum=checksum,
        outbound=definition.outbound,
        timeout=timeout,
    )


def _database_exists() -> bool:
    """False for a SQLite file that is not there (a client without a database of
    its own must not create one by looking)."""
    url = get_engine().url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return True
    return os.path.exists(url.database)
