"""What runs a step: its body, its intents, the start of performing (S3.5-S3.7, S1.4).

One `run_step` activity per step: the body runs against a fresh actor in its
own transaction and its outcome — the children and waits it asked for (with
the order they join their lanes in, S4.8), a status it set, new arguments —
is recorded there, so a retried activity returns it instead of running the
body twice. The first unit of an action that waited in its lane starts it
performing (S3.5): the achievement checked again, then erased, and an
outbound action recorded as the one `complete()` reaches (S6.2). The step
that ends the action gives up its claim and grants the achievement in the
same transaction.
"""

from __future__ import annotations

import logging
from typing import TypeVar

from sqlalchemy.orm import Session
from temporalio import activity

from . import losses, tracing
from .action import Step
from .action_keys import child_keys, tenancy
from .arguments import encode_arguments
from .errors import DefinitionError
from .execution import attempt, error_data, json_in_thread, stamp, unit_key
from .faults import crash_point
from .keys import join_order
from .messages import ActionContext, ErrorData, StepOutcome
from .step_pages import paged
from .store import achievements, claims, outbound, records, transaction
from .unit_messages import StepInput
from .user_code import PERMANENT, Handled, build_action, call_user, load
from .wire import Json

__all__ = ["begin_performing", "perform_step", "recorded_or_started", "release_claim", "run_step"]

log = logging.getLogger("stepped_temporal")
T = TypeVar("T")


def begin_performing(
    session: Session, context: ActionContext, checksum_key: str | None, outbound_action: bool
) -> None:
    """Starting to perform (S3.5): erase the achievement; an outbound action records
    itself as the one `complete()` reaches."""
    if checksum_key is not None:
        achievements.erase(session, checksum_key)
    if outbound_action:
        outbound.record(session, tenancy(context), context.action_id)


def _start_performing(context: ActionContext) -> bool:
    """The lane let the action perform (S3.5): True if its work is achieved after all.

    Otherwise erase the achievement under its checksum_key and, for an outbound
    action, record it as the one `complete()` reaches — in one transaction.
    """
    with transaction() as session:
        # Checked again now the lane lets it perform: the same work may have
        # been achieved since prepare looked (the gem checks inside its lock).
        if (
            context.checksum is not None
            and context.checksum_key is not None
            and achievements.exists(session, context.checksum_key, context.checksum)
        ):
            return True
        begin_performing(session, context, context.checksum_key, context.outbound)
    return False


def recorded_or_started(
    context: ActionContext, key: str, result_type: type[T], achieved: T
) -> T | None:
    """Before the unit that starts the action performing: a retry's recorded outcome
    (store/records.py), `achieved` when the work was achieved meanwhile, else None — the
    action now performs (the achievement erased, an outbound one recorded)."""
    with transaction() as session:
        done = records.find(session, key, result_type, attempt=attempt())
    if done is not None:
        return done
    if _start_performing(context):
        return achieved
    crash_point("lane-granted")
    return None


def perform_step(data: StepInput) -> StepOutcome:
    """Run step `data.index` (traced as ``stepped.step`` when tracing is on)."""
    with tracing.span("stepped.step", data.action, **{"stepped.step": data.index}) as made:
        outcome = _perform_step(data)
        if made is not None:
            failed = outcome.error is not None or outcome.marked_failed
            made.set_attribute("stepped.status", "failed" if failed else "succeeded")
        return outcome


def _perform_step(data: StepInput) -> StepOutcome:
    context = data.action
    key = unit_key(f"step/{data.index}")
    if data.erase_achievement:
        early = recorded_or_started(context, key, StepOutcome, StepOutcome(achieved=True))
        if early is not None:
            return early
    try:
        losses.settle(f"step/{data.index}")  # a worker lost running it (only when recovering)
        with transaction() as session:
            done = records.find(session, key, StepOutcome, attempt=attempt())
            if done is not None:
                return done  # a retry: the step committed (store/records.py)
            actor, definition, arguments = load(session, context)
            steps = definition.runnable_steps()
            if data.index >= len(steps):
                raise DefinitionError(
                    f"{definition!r} has {len(steps)} step(s) now, but action {context.action_id} "
                    f"was started when it had more: step {data.index} no longer exists"
                )
            step = Step(build_action(actor, context, arguments, status="performing"), data.index)
            try:
                call_user(steps[data.index], actor, step, *step.action.arguments)
            finally:
                step.close()
            encoded = encode_arguments(
                step.action.arguments, culprit=f"arguments of {context.action_id}"
            )
            final = "failed" if step.status == "failed" else "succeeded"
            released = lane_owned = granted = False
            released_at = None
            ends = not step.children and not step.waits  # the action ends with this step
            if ends and final == "succeeded" and data.grant_on_success:
                assert context.checksum_key is not None and context.checksum is not None
                achievements.grant(session, context.checksum_key, context.checksum)
                granted = True
            if ends and final in data.release_on:
                # the claim goes with its transaction
                released, lane_owned, released_at = True, release_claim(session, context), stamp()
            outcome = StepOutcome(
                children=step.children,
                join_after=join_order(child_keys(step)),
                waits=step.waits,
                marked_failed=step.status == "failed",
                arguments=encoded if encoded != context.arguments else None,
                released=released,
                lane_owned=lane_owned,
                released_at=released_at,
                granted=granted,
            )
            if data.page_children:  # (the pages are recorded with it: step_pages.py)
                outcome = paged(session, key, context.action_id, outcome)
            records.record(session, key, context.action_id, outcome)
        crash_point("step-committed")
    except Handled as handled:
        log.warning("action %s: step %d failed: %r", context.action_id, data.index, handled.error)
        return _failed_step(data, error_data(handled.error))
    except PERMANENT as error:
        log.warning("action %s: step %d cannot run: %s", context.action_id, data.index, error)
        return _failed_step(data, error_data(error))
    return outcome


def _failed_step(data: StepInput, error: ErrorData) -> StepOutcome:
    if "failed" not in data.release_on:
        return StepOutcome(error=error)
    with transaction() as session:
        lane_owned, released_at = release_claim(session, data.action), stamp()
    return StepOutcome(error=error, released=True, lane_owned=lane_owned, released_at=released_at)


def release_claim(session: Session, context: ActionContext) -> bool:
    """Give up the action's claim on its key; True when the lane must be told."""
    assert context.concurrency_key is not None
    return claims.release(session, context.concurrency_key, context.action_id)


@activity.defn(name="stepped_step")
async def run_step(input: Json) -> Json:
    """Run one step body in its own transaction and return the intents it recorded."""
    await losses.look_back()
    return await json_in_thread(StepInput, input, perform_step, budgeted=True)
