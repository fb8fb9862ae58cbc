"""What finishes an action: after-callbacks, grant, release (S3.9, S2.5, S5.3).

One `finish` activity once the action has its final status: each
after-callback of that status runs in its own transaction and record (a
failing one is counted, never retried into the others); on a clean success the
achievement is granted; a claimed key is given up (`store/claims.py`), telling
the workflow whether a lane workflow must hear of it.
"""

from __future__ import annotations

import logging

from temporalio import activity

from . import losses, tracing
from .definitions import resolve_definition
from .execution import attempt, error_data, json_in_thread, unit_key
from .faults import crash_point
from .messages import ErrorData
from .registry import actor_class
from .stepping import release_claim
from .store import achievements, records, transaction
from .unit_messages import FinishInput, FinishOutcome
from .user_code import PERMANENT, Handled, build_action, call_user, load
from .wire import Json

__all__ = ["finish"]

log = logging.getLogger("stepped_temporal")


def _finish(data: FinishInput) -> FinishOutcome:
    context = data.action
    succeeded = failed = 0
    errors: list[ErrorData] = []
    definition = resolve_definition(actor_class(context.actor_type), context.name)
    for number, callback in enumerate(definition.callbacks_for(data.status)):
        unit = f"after/{data.status}/{number}"
        try:
            # a worker lost running it too often: failed, and recorded so (False)
            losses.settle(unit, verdict=False)
            with (
                tracing.span("stepped.after", context, **{"stepped.status": data.status}),
                transaction() as session,
            ):
                done = records.find(session, unit_key(unit), bool, attempt=attempt())
                if done is False:
                    raise Handled(losses.lost(unit))
                if done is None:
                    actor, _, arguments = load(session, context)
                    action = build_action(actor, context, arguments, status=data.status, unit=unit)
                    call_user(callback, actor, action, *arguments)
                    records.record(session, unit_key(unit), context.action_id, True)
            succeeded += 1
        except (Handled, *PERMANENT) as error:
            cause = error.error if isinstance(error, Handled) else error
            log.warning(
                "action %s: after-callback %s failed: %r",
                context.action_id,
                getattr(callback, "__qualname__", callback),
                cause,
            )
            failed += 1
            errors.append(error_data(cause))
    granted = lane_owned = False
    grant = data.grant_achievement and failed == 0 and context.checksum is not None
    if grant and succeeded:
        crash_point("callbacks-done")
    if grant or data.release_claim:
        with transaction() as session:
            if grant:
                assert context.checksum_key is not None and context.checksum is not None
                achievements.grant(session, context.checksum_key, context.checksum)
                granted = True
            if data.release_claim:
                lane_owned = release_claim(session, context)
    return FinishOutcome(
        succeeded=succeeded, failed=failed, errors=errors, granted=granted, lane_owned=lane_owned
    )


@activity.defn(name="stepped_finish")
async def finish(input: Json) -> Json:
    """Run the after-callbacks for a final status, then grant the achievement (S3.9)."""
    if not activity.info().is_local:  # (a local finish runs no callback)
        await losses.look_back()
    return await json_in_thread(FinishInput, input, _finish)
