"""Calling user code from an activity: fresh actors, handled and unhandled errors (S1.4, S8).

Each user callable runs against an actor loaded fresh in the unit's own
transaction. A *handled* exception (S8.1) becomes `Handled`, carried out of the
transaction so it rolls back, and fails the action without a retry; an
unhandled one propagates, so Temporal retries the activity under the action's
retry policy (S8.2). Errors of the input itself (unknown type, deleted actor,
unknown action: `PERMANENT`) are reported, never retried.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from .action import Action
from .arguments import decode_arguments
from .config import is_handled, settings
from .definitions import Definition, resolve_definition
from .errors import (
    ActionNotFound,
    ActorNotFound,
    ArgumentTypeError,
    ArgumentValueError,
    DefinitionError,
    SteppedError,
    UnknownActorType,
)
from .messages import ActionContext
from .registry import ActorBase, actor_class, is_mapped, load_actor
from .store import is_transient

__all__ = ["PERMANENT", "Handled", "build_action", "call_user", "load", "refuse_awaitable"]


#: Errors of the input, not of the moment: retrying cannot help.
PERMANENT = (
    UnknownActorType,
    ActorNotFound,
    ActionNotFound,
    DefinitionError,
    ArgumentTypeError,
    ArgumentValueError,
)


class Handled(Exception):
    """A handled user exception, carried out of the transaction so it rolls back."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def call_user(fn: Callable[..., Any], *args: Any) -> Any:
    """Call user code; handled exceptions become `Handled`, others propagate (retry)."""
    try:
        result = fn(*args)
    except SteppedError as error:
        raise Handled(error) from error
    except Exception as error:
        if is_handled(error) and not is_transient(error):
            raise Handled(error) from error
        raise
    try:
        refuse_awaitable(fn, result)
    except DefinitionError as error:
        raise Handled(error) from None
    return result


def refuse_awaitable(fn: Callable[..., Any], result: Any) -> None:
    """User code runs in a thread with a sync session: an async function is a mistake."""
    if inspect.isawaitable(result):
        if inspect.iscoroutine(result):
            result.close()  # never awaited: close it so Python does not warn
        raise DefinitionError(
            f"{getattr(fn, '__qualname__', fn)!r} returned an awaitable: step bodies, hooks, "
            f"callbacks and jobs must be plain (sync) functions"
        )


def load(session: Session, context: ActionContext) -> tuple[ActorBase, Definition, list[Any]]:
    actor = load_actor(
        session if is_mapped(actor_class(context.actor_type)) else None,
        context.actor_type,
        context.actor_id,
    )
    definition = resolve_definition(type(actor), context.name, strict=settings().strict)
    arguments = decode_arguments(
        context.arguments, lambda type_name, actor_id: load_actor(session, type_name, actor_id)
    )
    return actor, definition, arguments


def build_action(
    actor: ActorBase,
    context: ActionContext,
    arguments: list[Any],
    *,
    status: str,
    can_complete: bool = False,
    unit: str = "",
) -> Action:
    return Action(
        id=context.action_id,
        actor=actor,
        name=context.name,
        arguments=arguments,
        status=status,
        root=context.root,
        outbound=context.outbound,
        checksum=context.checksum,
        checksum_key=context.checksum_key,
        concurrency_key=context.concurrency_key,
        can_complete=can_complete,
        unit=unit,
    )
