"""Completing an outbound action from outside (S6.1-S6.3, S9.6): `complete`.

The action's id comes from `stepped_outbound_performances` (the row its first
unit wrote when it began performing outbound), and the completion goes to its
workflow as the `complete` update, which answers whether this call completed
it. A reason travels with an unsuccessful status and becomes the action's
error (``CompletedFromOutside``).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.service import RPCError, RPCStatusCode

from .config import get_client, read_session
from .keys import tenancy_key
from .registry import ActorBase, actor_ref
from .status import completion_status
from .store import outbound

__all__ = ["MAX_REASON", "complete"]

#: how long `complete()` waits for the action's workflow to answer
COMPLETE_PATIENCE = timedelta(seconds=60)


async def complete(
    actor: ActorBase, name: str, status: str = "succeeded", reason: str | None = None
) -> bool:
    """Complete the performing outbound action `name` of `actor` (S6.1-S6.3); with an
    unsuccessful status, `reason` becomes its error's message (S9.6: the error's
    type is ``CompletedFromOutside``).

    Returns True when this call completed it; False when there is none — also
    when one is only pending, or another action performs in the same lane — and
    for every call after the first. An invalid status raises `InvalidStatus`, and
    a reason that is not text, too long or given with ``"succeeded"`` raises
    `ValueError`, before anything is sent.
    """
    status = completion_status(status, what=f"complete({name!r})")
    _check_reason(reason, status, name)
    type_name, actor_id = actor_ref(actor)
    tenancy = tenancy_key(type_name, actor_id, name)
    with read_session() as session:
        action_id = outbound.find(session, tenancy)
    if action_id is None:
        return False
    client = await get_client()
    try:
        # (a reason goes as a second argument only when there is one: workers of a
        # release before reasons take the status alone)
        completed: bool = await client.get_workflow_handle(action_id).execute_update(
            "complete",
            args=[status] if reason is None else [status, reason],
            result_type=bool,
            rpc_timeout=COMPLETE_PATIENCE,
        )
    except RPCError as error:
        if error.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
            return False  # the action's workflow has closed
        raise
    return completed


#: the longest reason `complete()` takes (characters): an error message, not a payload
MAX_REASON = 4096


def _check_reason(reason: object, status: str, name: str) -> None:
    if reason is None:
        return
    if not isinstance(reason, str):
        raise ValueError(f"complete({name!r}): reason must be a str, got {reason!r}")
    if status == "succeeded":
        raise ValueError(
            f"complete({name!r}, 'succeeded', reason=...): a reason goes with an "
            "unsuccessful status (failed, cancelled, timed_out); it becomes the error"
        )
    if len(reason) > MAX_REASON:
        raise ValueError(
            f"complete({name!r}): reason of {len(reason):,} characters, longer than {MAX_REASON:,}"
        )
