"""What runs before an action performs: before, keys, achievement, lane (S3.2-S3.5, S4.1, S4.4).

One `prepare` activity, one round trip: run the `before` hooks (each its own
transaction and record), compute the keys, check the achievement (S3.4), then
claim the concurrency key or join its lane (`store/claims.py`, S4.1) — a
descendant finding its ancestor holding the key is deadlocked at once (S4.4).
An action that claimed its key runs its first step here too when it can
(`_perform_first_step`), saving the workflow an activity.

The workflow runs it as a local activity (from `ActionInput.revision` 2), in its
first workflow task: a one-step leaf is then one workflow task and no activity
task on the server, as cheap as Temporal allows. A local activity cannot
heartbeat, so a claimed action's report reaches `describe()` through its claim
row instead (prepare_view.py), and its attempts count from 1 again after a lost
worker, so records are looked up unless it runs in the workflow's first task
(`execution.attempt`); a run after a lost worker charges the loss to the unit it
finds unfinished, and a unit lost too often in a row fails (losses.py, S8.2).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.orm import Session
from temporalio import activity

from . import losses
from .action_keys import checksum_of, concurrency_key_of, timeout_of
from .arguments import encode_arguments
from .config import heartbeat_seconds, settings
from .definitions import Definition, resolve_definition
from .execution import attempt, error_data, first_task, in_thread, stamp, unit_key
from .keys import lane_id
from .lane_messages import LaneJoin
from .lane_starts import join_lane
from .messages import ErrorData, Prepared, PrepareInput, StepOutcome
from .registry import actor_class
from .stepping import begin_performing, perform_step
from .store import achievements, claims, is_transient, records, transaction
from .unit_messages import StepInput
from .user_code import PERMANENT, Handled, build_action, call_user, load
from .wire import Json, decode, encode

__all__ = ["prepare"]

log = logging.getLogger("stepped_temporal")


@dataclass(frozen=True)
class HookOutcome:
    """What a before hook left: the arguments, and the completion it asked for."""

    arguments: list[Any]
    completion: str | None = None


#: Tells the world (by a heartbeat, if the step still runs a moment later) that a
#: claimed action performs, and how (S9.2): for a regular prepare activity, the
#: one an input of revision 1 asks for.
Reporter = Callable[[Prepared], None]


def _prepare(data: PrepareInput, report: Reporter) -> tuple[Prepared, LaneJoin | None]:
    """Prepare the action; the second value is a lane join to send after the commit
    (never under the claim's row lock: Temporal may be slow, the lock must not be)."""
    context = data.action
    encoded = list(context.arguments)
    later: LaneJoin | None = None
    try:
        definition = resolve_definition(
            actor_class(context.actor_type), context.name, strict=settings().strict
        )
        for number, hook in enumerate(definition.before_hooks):  # each its own transaction
            unit = f"before/{number}"
            losses.settle(unit)  # a worker lost running it (only when recovering)
            with transaction() as session:
                done = records.find(session, unit_key(unit), HookOutcome, attempt=attempt())
                if done is None:
                    actor, _, arguments = load(session, replace(context, arguments=encoded))
                    action = build_action(
                        actor, context, arguments, status="pending", can_complete=True, unit=unit
                    )
                    call_user(hook, actor, action, *action.arguments)
                    done = HookOutcome(
                        encode_arguments(
                            action.arguments, culprit=f"arguments of {context.action_id}"
                        ),
                        action.completion,
                    )
                    records.record(session, unit_key(unit), context.action_id, done)
            encoded = done.arguments
            if done.completion is not None:
                completed = Prepared(
                    outcome=done.completion,
                    arguments=encoded,
                    outbound=definition.outbound,
                    callback_statuses=_callback_statuses(definition),
                )
                return completed, None
        losses.settle("keys")
        with transaction() as session:
            actor, _, arguments = load(session, replace(context, arguments=encoded))
            concurrency_key = concurrency_key_of(definition, actor, arguments, context)
            checksum_key, checksum = checksum_of(definition, actor, arguments, context)
            timeout = timeout_of(definition, actor)
            # A retried prepare whose first attempt claimed the key and ran the first
            # step: that step's record says what happened — the claim may be given
            # up already (claiming again would hold the key for good), and its own
            # grant must not read as "achieved".
            performed = None
            if data.perform_first_step:
                performed = records.find(
                    session, unit_key("step/0"), StepOutcome, attempt=attempt()
                )
            achieved = (
                performed is None
                and checksum is not None
                and achievements.exists(session, checksum_key, checksum)
            )
            outcome, problem, later = "achieved", None, None
            if performed is not None:
                outcome = "claimed"
            elif not achieved:
                outcome, problem, later = _claim(
                    session,
                    data,
                    concurrency_key,
                    checksum_key,
                    checksum,
                    definition.lane or settings().lane,
                    definition.max_pending,
                )
                if outcome == "claimed":  # it performs now (S3.5)
                    begin_performing(session, context, checksum_key, definition.outbound)
    except Handled as handled:
        log.warning("action %s failed in before/keys: %r", context.action_id, handled.error)
        return Prepared(outcome="failed", arguments=encoded, error=error_data(handled.error)), None
    except PERMANENT as error:
        log.warning("action %s cannot run: %s", context.action_id, error)
        return Prepared(outcome="failed", arguments=encoded, error=error_data(error)), None
    prepared = Prepared(
        outcome=outcome,
        arguments=encoded,
        concurrency_key=concurrency_key,
        checksum_key=checksum_key,
        checksum=checksum,
        outbound=definition.outbound,
        timeout=timeout,
        step_count=len(definition.runnable_steps()),
        job=definition.job is not None,
        callback_statuses=_callback_statuses(definition),
        retry=definition.retry_data(),
        lane_id=lane_id(concurrency_key) if outcome in ("claimed", "joined") else None,
        error=problem,
        activity_timeout=settings().activity_timeout.total_seconds(),
        heartbeat_timeout=heartbeat_seconds(),
        lane_check=settings().lane_check.total_seconds() or None,
    )
    if performed is not None:
        prepared = replace(prepared, first_step=performed, first_step_started_at=stamp())
    elif outcome == "claimed":
        # the claim committed: it performs from now, and `describe()` says so
        # (with its keys, outbound and timeout) while this activity still runs
        prepared = replace(prepared, first_step_started_at=stamp())
        report(prepared)
        if data.perform_first_step:
            prepared = _perform_first_step(data, prepared)
    return prepared, later


def _perform_first_step(data: PrepareInput, prepared: Prepared) -> Prepared:
    """Run a claimed action's first step here, as the step activity would (its own
    transaction and record, under the same unit key), saving the workflow an
    activity and a workflow task: the shape of a hand-written Temporal leaf.

    Not for outbound actions (`complete()` must see them performing while their
    steps run) nor ones with a timeout (its clock starts when they perform, in the
    workflow). A handled error fails the step as usual; any other error is
    returned as the step's failed first attempt, for the workflow to retry under
    the action's policy; a database outage leaves the step to the step activity.
    """
    if prepared.step_count == 0 or prepared.outbound or prepared.timeout is not None:
        return prepared
    context = replace(
        data.action,
        arguments=prepared.arguments,
        outbound=prepared.outbound,
        checksum=prepared.checksum,
        checksum_key=prepared.checksum_key,
        concurrency_key=prepared.concurrency_key,
        status="performing",
    )
    step = StepInput(context, 0, page_children=data.page_children)
    if prepared.step_count == 1:
        step = step.as_last(prepared, claimed=True)
    try:
        outcome = perform_step(step)
    except Exception as error:
        if is_transient(error):
            log.warning("action %s: step 0 left to the step activity: %r", context.action_id, error)
            return prepared
        log.warning("action %s: step 0 failed, to be retried: %r", context.action_id, error)
        return replace(
            prepared, first_step_failure=error_data(error), first_step_completed_at=stamp()
        )
    return replace(prepared, first_step=outcome, first_step_completed_at=stamp())


def _claim(
    session: Session,
    data: PrepareInput,
    key: str,
    checksum_key: str,
    checksum: str | None,
    policy: str,
    max_pending: int | None,
) -> tuple[str, ErrorData | None, LaneJoin | None]:
    """Claim the key or join its lane (see store/claims.py): the outcome, its error, and
    a join still to send once the transaction committed."""
    action_id = data.action.action_id
    found = claims.claim(session, key, action_id, checksum_key, checksum, list(data.ancestry))
    if found.claimed:
        if (
            found.fresh
            and checksum is not None
            and achievements.exists(session, checksum_key, checksum)
        ):
            # S3.4 after all: the holder we found gone granted this very work as it
            # gave the key up — after our first look (each statement sees what was
            # committed when it began), before our claim (which waited for it)
            claims.release(session, key, action_id)
            return "achieved", None, None
        return "claimed", None, None
    if found.deadlocked_with is not None:  # S4.4, seen before the lane is involved
        message = (
            f"action {action_id} joined lane {key!r}, where its ancestor "
            f"{found.deadlocked_with} is performing: it would wait for itself"
        )
        log.error("Deadlock: %s", message)
        return "deadlocked", ErrorData("Deadlock", message), None
    lane_join = LaneJoin(
        action_id=action_id,
        checksum_key=checksum_key,
        checksum=checksum,
        ancestry=list(data.ancestry),
        dependent=data.parent,
        holder=found.holder,
        policy=policy,
        max_pending=max_pending,
    )
    # Sent once this transaction committed (see store/claims.py for the holder's race)
    return "joined", None, lane_join


def _callback_statuses(definition: Definition) -> list[str]:
    return sorted({status for status, _ in definition.after_callbacks})


@activity.defn(name="stepped_prepare")
async def prepare(input: Json) -> Json:
    """Run `before`, compute keys and checksum, check the achievement, claim the key
    or join the lane."""
    data = decode(PrepareInput, input)  # JSON both ways: see wire.py
    first_task.set(data.first_task)  # (read by `attempt`, in the thread too)
    await losses.look_back()
    details: list[Any] = []

    def report(prepared: Prepared) -> None:
        # in_thread sends it by heartbeat if the step still runs a moment later
        # (REPORT_WITHIN), and every later heartbeat repeats it
        details[:] = [encode(prepared)]

    prepared, later = await in_thread(lambda: _prepare(data, report), details, budget=data.budget)
    if later is not None:
        assert prepared.concurrency_key is not None
        await join_lane(
            activity.client(),
            prepared.concurrency_key,
            later,
            task_queue=data.task_queue,
            search_attributes=data.search_attributes,
        )
    return encode(prepared)  # type: ignore[no-any-return]
