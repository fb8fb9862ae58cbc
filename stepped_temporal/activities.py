"""Every activity: the only place user code runs and SQL is touched (S1.4).

Each user callable runs against an actor loaded fresh in its own transaction,
committed when it returns and rolled back when it raises. A *handled*
exception (S8.1) becomes part of the activity's result, so the workflow fails
the action without retrying; an unhandled one fails the activity, so Temporal
retries it under the action's retry policy (S8.2). Errors of the input itself
(unknown type, deleted actor, unknown action) are returned, never retried.

Activities are async so prepare can join the lane with the Temporal client;
user code runs in a thread pool, since it is synchronous SQLAlchemy code.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import logging
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session
from temporalio import activity
from temporalio.client import Client

from . import achievements, claims, outbound, records, time_skipping
from .action import Action, Step
from .actors import Actor, actor_class, is_mapped, load_actor
from .arguments import decode_arguments, encode_arguments
from .checksums import checksum as digest
from .config import get_engine, is_handled, read_session, settings
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
from .keys import join_order, tenancy_key
from .messages import (
    ActionContext,
    ErrorData,
    FinishInput,
    FinishOutcome,
    JobInput,
    JobOutcome,
    LaneJoin,
    LaneState,
    Prepared,
    PrepareInput,
    StepInput,
    StepOutcome,
)

log = logging.getLogger("stepped_temporal")
T = TypeVar("T")

LANE_PREFIX = "stepped-lane/"
#: Errors of the input, not of the moment: retrying cannot help.
_PERMANENT = (
    UnknownActorType,
    ActorNotFound,
    ActionNotFound,
    DefinitionError,
    ArgumentTypeError,
    ArgumentValueError,
)

_executor: ThreadPoolExecutor | None = None


def set_executor(executor: ThreadPoolExecutor) -> None:
    """Use `executor` for user code (create_worker sizes it to the activity slots)."""
    global _executor
    _executor = executor


async def _in_thread(fn: Callable[[], T], details: list[Any] | None = None) -> T:
    """Run `fn` (sync user code and SQL) in the thread pool, heartbeating meanwhile
    when the activity has a heartbeat timeout — so a worker that dies is noticed
    within that timeout, not the start-to-close one. Each heartbeat carries what
    `details` holds then (`fn` may fill it: see `prepare`)."""
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=32, thread_name_prefix="stepped")
    context = contextvars.copy_context()
    context.run(_entered.set, datetime.now(UTC))
    future = asyncio.get_running_loop().run_in_executor(
        _executor, context.run, _riding_out_outages, fn
    )
    timeout = activity.info().heartbeat_timeout
    if not timeout:
        return await future
    interval = max(timeout.total_seconds() / 3, 0.1)
    try:
        while True:
            done, _ = await asyncio.wait({future}, timeout=interval)
            if done:
                return future.result()
            activity.heartbeat(*(details or ()))
    except asyncio.CancelledError:
        # Cancelled (the action ended meanwhile): the thread cannot be stopped, so
        # keep the slot until it is done, then report the cancellation.
        with contextlib.suppress(Exception):
            await asyncio.shield(future)
        raise


#: when the running activity began, on this machine's clock (see `stamp`)
_entered: contextvars.ContextVar[datetime] = contextvars.ContextVar("stepped_entered")
#: a gap between the server's clock and ours beyond this is time skipping
_SKIPPED = timedelta(seconds=1)


def stamp() -> str:
    """Now, for a time reported from inside an activity (a claim taken or given up).

    The worker's clock: a claim given up is stamped before its commit and one
    taken after its commit, so two holders' times never overlap. When the
    server's clock runs ahead (time skipping), shifted onto it by the gap seen
    when the activity began, so it agrees with the workflow's times.
    """
    now = datetime.now(UTC)
    entered = _entered.get(None)
    if entered is not None:
        gap = activity.info().started_time - entered
        if gap > _SKIPPED:
            now += gap
    return now.isoformat()


#: Database errors of the moment (connection refused or lost, lock timeout,
#: deadlock): retried, never a failure of the action.
TRANSIENT_DB_ERRORS = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
    sa_exc.DisconnectionError,
)
#: How long one activity attempt waits out a database outage before it fails
#: (and Temporal retries it) — at most this, and never past the attempt's deadline.
OUTAGE_PATIENCE = 60.0


def is_transient(error: BaseException) -> bool:
    """Whether `error` is the database being unavailable, not the code being wrong."""
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(error, TRANSIENT_DB_ERRORS)


def _riding_out_outages(fn: Callable[[], T]) -> T:
    """Run `fn`, running it again while the database is unavailable.

    Each unit of work is a transaction that rolled back when the error struck
    (and records make a committed one return its outcome), so running it again
    is safe. Past the patience, the error fails the attempt and Temporal retries.
    """
    info = activity.info()
    started = time.monotonic()
    deadline = started + OUTAGE_PATIENCE
    if info.start_to_close_timeout:
        deadline = min(deadline, started + info.start_to_close_timeout.total_seconds() * 0.8)
    delay = 0.2
    while True:
        try:
            return fn()
        except Exception as error:
            if not is_transient(error) or time.monotonic() + delay > deadline:
                raise
            log.warning(
                "database unavailable in %s (%s); retrying in %.1fs",
                info.activity_type,
                type(error).__name__,
                delay,
            )
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def heartbeat_seconds() -> float | None:
    """The configured heartbeat timeout in seconds, None when heartbeats are off."""
    seconds = settings().heartbeat_timeout.total_seconds()
    return seconds if seconds > 0 else None


def lane_id(concurrency_key: str) -> str:
    """The lane workflow id of a concurrency key."""
    return LANE_PREFIX + concurrency_key


def error_data(error: BaseException) -> ErrorData:
    """The type name and message of `error`."""
    return ErrorData(type(error).__name__, str(error))


@contextmanager
def _transaction() -> Iterator[Session]:
    with Session(get_engine(), expire_on_commit=False) as session, session.begin():
        yield session


class _Handled(Exception):
    """A handled user exception, carried out of the transaction so it rolls back."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def _call_user(fn: Callable[..., Any], *args: Any) -> Any:
    """Call user code; handled exceptions become `_Handled`, others propagate (retry)."""
    try:
        result = fn(*args)
    except SteppedError as error:
        raise _Handled(error) from error
    except Exception as error:
        if is_handled(error) and not is_transient(error):
            raise _Handled(error) from error
        raise
    try:
        _refuse_awaitable(fn, result)
    except DefinitionError as error:
        raise _Handled(error) from None
    return result


def _refuse_awaitable(fn: Callable[..., Any], result: Any) -> None:
    """User code runs in a thread with a sync session: an async function is a mistake."""
    if inspect.isawaitable(result):
        if inspect.iscoroutine(result):
            result.close()  # never awaited: close it so Python does not warn
        raise DefinitionError(
            f"{getattr(fn, '__qualname__', fn)!r} returned an awaitable: step bodies, hooks, "
            f"callbacks and jobs must be plain (sync) functions"
        )


def _load(session: Session, context: ActionContext) -> tuple[Actor, Definition, list[Any]]:
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


@dataclass(frozen=True)
class HookOutcome:
    """What a before hook left: the arguments, and the completion it asked for."""

    arguments: list[Any]
    completion: str | None = None


def _action(
    actor: Actor,
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


def _key(
    definition: Definition,
    fn: Callable[..., Any] | str | None,
    actor: Actor,
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
        return _call_user(method)
    return _call_user(fn, actor, *arguments)


def _key_text(value: Any, default: str) -> str:
    """S3.3: blank means the default, a list is joined with '/', anything else str()-ed."""
    if value is None or value == "" or value == []:
        return default
    if isinstance(value, (list, tuple)):
        return "/".join(str(part) for part in value)
    return str(value)


def _timeout_seconds(definition: Definition, actor: Actor) -> float | None:
    timeout = definition.timeout
    if isinstance(timeout, str):
        method = getattr(actor, timeout, None)
        if not callable(method):
            raise DefinitionError(f"{definition!r}: timeout method {timeout!r} does not exist")
        timeout = _call_user(method)
    if timeout is None:
        return None
    if isinstance(timeout, timedelta):
        return timeout.total_seconds()
    if isinstance(timeout, (int, float)) and not isinstance(timeout, bool):
        return float(timeout)
    raise DefinitionError(
        f"{definition!r}: timeout must be a timedelta or seconds, got {timeout!r}"
    )


def _attempt() -> int:
    return activity.info().attempt


def _unit_key(unit: str) -> str:
    """The record key of `unit` of the running activity's workflow run (records.py)."""
    info = activity.info()
    return records.record_key(info.workflow_run_id or info.activity_id, unit)


def _tenancy(context: ActionContext) -> str:
    return tenancy_key(context.actor_type, context.actor_id, context.name)


# -- prepare ---------------------------------------------------------------

#: Signals the lane (async, on the activity's event loop) from the prepare thread.
Joiner = Callable[[str, LaneJoin], None]
#: Tells the world (by heartbeat) that a claimed action performs, and how (S9.2).
Reporter = Callable[[Prepared], None]


def _prepare(
    data: PrepareInput, join: Joiner, report: Reporter
) -> tuple[Prepared, LaneJoin | None]:
    """Prepare the action; the second value is a lane join to send after the commit."""
    context = data.action
    encoded = list(context.arguments)
    later: LaneJoin | None = None
    try:
        definition = resolve_definition(
            actor_class(context.actor_type), context.name, strict=settings().strict
        )
        for number, hook in enumerate(definition.before_hooks):  # each its own transaction
            unit = f"before/{number}"
            with _transaction() as session:
                done = records.find(session, _unit_key(unit), HookOutcome, attempt=_attempt())
                if done is None:
                    actor, _, arguments = _load(session, replace(context, arguments=encoded))
                    action = _action(
                        actor, context, arguments, status="pending", can_complete=True, unit=unit
                    )
                    _call_user(hook, actor, action, *action.arguments)
                    done = HookOutcome(
                        encode_arguments(
                            action.arguments, culprit=f"arguments of {context.action_id}"
                        ),
                        action.completion,
                    )
                    records.record(session, _unit_key(unit), context.action_id, done)
            encoded = done.arguments
            if done.completion is not None:
                completed = Prepared(
                    outcome=done.completion,
                    arguments=encoded,
                    outbound=definition.outbound,
                    callback_statuses=_callback_statuses(definition),
                )
                return completed, None
        with _transaction() as session:
            actor, _, arguments = _load(session, replace(context, arguments=encoded))
            concurrency_key = _concurrency_key(definition, actor, arguments, context)
            checksum_key, checksum = _checksum(definition, actor, arguments, context)
            timeout = _timeout_seconds(definition, actor)
            # A retried prepare whose first attempt claimed the key and ran the first
            # step: that step's record says what happened — the claim may be given
            # up already (claiming again would hold the key for good), and its own
            # grant must not read as "achieved".
            performed = None
            if data.perform_first_step:
                performed = records.find(
                    session, _unit_key("step/0"), StepOutcome, attempt=_attempt()
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
                    session, data, join, concurrency_key, checksum_key, checksum
                )
                if outcome == "claimed":  # it performs now (S3.5)
                    _erase_and_record(session, context, checksum_key, definition.outbound)
    except _Handled as handled:
        log.warning("action %s failed in before/keys: %r", context.action_id, handled.error)
        return Prepared(outcome="failed", arguments=encoded, error=error_data(handled.error)), None
    except _PERMANENT as error:
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
    step = StepInput(context, 0)
    if prepared.step_count == 1:
        step = step.as_last(prepared, claimed=True)
    try:
        outcome = _step(step)
    except Exception as error:
        if is_transient(error):
            log.warning("action %s: step 0 left to the step activity: %r", context.action_id, error)
            return prepared
        log.warning("action %s: step 0 failed, to be retried: %r", context.action_id, error)
        return replace(prepared, first_step_failure=error_data(error))
    return replace(prepared, first_step=outcome)


def _claim(
    session: Session,
    data: PrepareInput,
    join: Joiner,
    key: str,
    checksum_key: str,
    checksum: str | None,
) -> tuple[str, ErrorData | None, LaneJoin | None]:
    """Claim the key or join its lane (see claims.py): the outcome, its error, and
    a join still to send once the transaction committed."""
    action_id = data.action.action_id
    found = claims.claim(session, key, action_id, checksum_key, checksum, list(data.ancestry))
    if found.claimed:
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
    )
    if found.holder is None:
        return "joined", None, lane_join
    # The lane must hear of the holder before the holder can release the key
    # (its release waits for this row lock): signal before committing.
    join(key, lane_join)
    return "joined", None, None


def _concurrency_key(
    definition: Definition, actor: Actor, arguments: list[Any], context: ActionContext
) -> str:
    """S3.3: the lane's key (default: the tenancy key)."""
    found = _key(definition, definition.concurrency_key_fn, actor, arguments, None)
    return _key_text(found, _tenancy(context))


def _checksum(
    definition: Definition, actor: Actor, arguments: list[Any], context: ActionContext
) -> tuple[str, str | None]:
    """S3.3, S5: the checksum_key (default: the tenancy key) and the checksum, if any."""
    found = _key(definition, definition.checksum_key_fn, actor, arguments, None)
    checksum_key = _key_text(found, _tenancy(context))
    if definition.checksum_fn is None:
        return checksum_key, None
    return checksum_key, digest(_key(definition, definition.checksum_fn, actor, arguments, None))


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
            actor, _, arguments = _load(session, context)
            checksum_key, checksum = _checksum(definition, actor, arguments, context)
            if checksum is None or not achievements.exists(session, checksum_key, checksum):
                return None
            concurrency_key = _concurrency_key(definition, actor, arguments, context)
            timeout = _timeout_seconds(definition, actor)
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


def _erase_and_record(
    session: Session, context: ActionContext, checksum_key: str | None, outbound_action: bool
) -> None:
    """Starting to perform (S3.5): erase the achievement; an outbound action records
    itself as the one `complete()` reaches."""
    if checksum_key is not None:
        achievements.erase(session, checksum_key)
    if outbound_action:
        outbound.record(session, _tenancy(context), context.action_id)


def _callback_statuses(definition: Definition) -> list[str]:
    return sorted({status for status, _ in definition.after_callbacks})


@activity.defn(name="stepped_prepare")
async def prepare(data: PrepareInput) -> Prepared:
    """Run `before`, compute keys and checksum, check the achievement, claim the key
    or join the lane."""
    loop = asyncio.get_running_loop()
    client = activity.client()

    details: list[Any] = []

    def join(key: str, lane_join: LaneJoin) -> None:
        coroutine = join_lane(client, key, lane_join, task_queue=data.task_queue)
        asyncio.run_coroutine_threadsafe(coroutine, loop).result()

    def report(prepared: Prepared) -> None:
        # every later heartbeat repeats it (the client reads the latest)
        details[:] = [prepared]
        loop.call_soon_threadsafe(activity.heartbeat, prepared)

    prepared, later = await _in_thread(lambda: _prepare(data, join, report), details)
    if later is not None:
        assert prepared.concurrency_key is not None
        await join_lane(client, prepared.concurrency_key, later, task_queue=data.task_queue)
    return prepared


async def join_lane(client: Client, key: str, join: LaneJoin, *, task_queue: str) -> None:
    """Signal-with-start the lane: a workflow cannot do this itself."""
    idle = settings().lane_idle.total_seconds()
    await client.start_workflow(
        "SteppedLane",
        LaneState(key=key, idle_seconds=idle, test_server=time_skipping.skips_time(client)),
        id=lane_id(key),
        task_queue=task_queue,
        start_signal="join",
        start_signal_args=[join],
    )


# -- step ------------------------------------------------------------------


def _start_performing(context: ActionContext) -> bool:
    """The lane let the action perform (S3.5): True if its work is achieved after all.

    Otherwise erase the achievement under its checksum_key and, for an outbound
    action, record it as the one `complete()` reaches — in one transaction.
    """
    with _transaction() as session:
        # Checked again now the lane lets it perform: the same work may have
        # been achieved since prepare looked (the gem checks inside its lock).
        if (
            context.checksum is not None
            and context.checksum_key is not None
            and achievements.exists(session, context.checksum_key, context.checksum)
        ):
            return True
        _erase_and_record(session, context, context.checksum_key, context.outbound)
    return False


def _recorded_or_started(
    context: ActionContext, key: str, result_type: type[T], achieved: T
) -> T | None:
    """Before the unit that starts the action performing: a retry's recorded outcome
    (records.py), `achieved` when the work was achieved meanwhile, else None — the
    action now performs (the achievement erased, an outbound one recorded)."""
    with _transaction() as session:
        done = records.find(session, key, result_type, attempt=_attempt())
    if done is not None:
        return done
    if _start_performing(context):
        return achieved
    return None


def _step(data: StepInput) -> StepOutcome:
    context = data.action
    key = _unit_key(f"step/{data.index}")
    if data.erase_achievement:
        early = _recorded_or_started(context, key, StepOutcome, StepOutcome(achieved=True))
        if early is not None:
            return early
    try:
        with _transaction() as session:
            done = records.find(session, key, StepOutcome, attempt=_attempt())
            if done is not None:
                return done  # a retry: the step committed (records.py)
            actor, definition, arguments = _load(session, context)
            steps = definition.runnable_steps()
            if data.index >= len(steps):
                raise DefinitionError(
                    f"{definition!r} has {len(steps)} step(s) now, but action {context.action_id} "
                    f"was started when it had more: step {data.index} no longer exists"
                )
            step = Step(_action(actor, context, arguments, status="performing"), data.index)
            try:
                _call_user(steps[data.index], actor, step, *step.action.arguments)
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
                released, lane_owned, released_at = True, _release(session, context), stamp()
            outcome = StepOutcome(
                children=step.children,
                join_after=join_order(_child_keys(step)),
                waits=step.waits,
                marked_failed=step.status == "failed",
                arguments=encoded if encoded != context.arguments else None,
                released=released,
                lane_owned=lane_owned,
                released_at=released_at,
                granted=granted,
            )
            records.record(session, key, context.action_id, outcome)
    except _Handled as handled:
        log.warning("action %s: step %d failed: %r", context.action_id, data.index, handled.error)
        return _failed_step(data, error_data(handled.error))
    except _PERMANENT as error:
        log.warning("action %s: step %d cannot run: %s", context.action_id, data.index, error)
        return _failed_step(data, error_data(error))
    return outcome


def _child_keys(step: Step) -> list[str | None]:
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


def _failed_step(data: StepInput, error: ErrorData) -> StepOutcome:
    if "failed" not in data.release_on:
        return StepOutcome(error=error)
    with _transaction() as session:
        lane_owned, released_at = _release(session, data.action), stamp()
    return StepOutcome(error=error, released=True, lane_owned=lane_owned, released_at=released_at)


def _release(session: Session, context: ActionContext) -> bool:
    """Give up the action's claim on its key; True when the lane must be told."""
    assert context.concurrency_key is not None
    return claims.release(session, context.concurrency_key, context.action_id)


@activity.defn(name="stepped_step")
async def run_step(data: StepInput) -> StepOutcome:
    """Run one step body in its own transaction and return the intents it recorded."""
    return await _in_thread(lambda: _step(data))


# -- job -------------------------------------------------------------------


def _job(data: JobInput) -> JobOutcome:
    context = data.action
    key = _unit_key("job")
    if data.erase_achievement:
        early = _recorded_or_started(context, key, JobOutcome, JobOutcome(achieved=True))
        if early is not None:
            return early
    try:
        with _transaction() as session:
            done = records.find(session, key, JobOutcome, attempt=_attempt())
            if done is not None:
                return done
            actor, definition, arguments = _load(session, context)
            if definition.job is None:
                raise DefinitionError(f"{definition!r} has no job any more")
            action = _action(
                actor, context, arguments, status="performing", can_complete=True, unit="job"
            )
            # Every exception of a job is retried under the definition's retry policy
            # (S6.4); the handled list only applies to steps and hooks.
            _refuse_awaitable(definition.job, definition.job(action))
            encoded = encode_arguments(
                action.arguments, culprit=f"arguments of {context.action_id}"
            )
            outcome = JobOutcome(
                status=action.completion,
                arguments=encoded if encoded != context.arguments else None,
            )
            records.record(session, key, context.action_id, outcome)
    except _PERMANENT as error:
        log.warning("action %s: job cannot run: %s", context.action_id, error)
        return JobOutcome(error=error_data(error))
    return outcome


@activity.defn(name="stepped_job")
async def run_job(data: JobInput) -> JobOutcome:
    """Run a job-backed action's job in its own transaction (S6.4)."""
    return await _in_thread(lambda: _job(data))


# -- finish ----------------------------------------------------------------


def _finish(data: FinishInput) -> FinishOutcome:
    context = data.action
    succeeded = failed = 0
    errors: list[ErrorData] = []
    definition = resolve_definition(actor_class(context.actor_type), context.name)
    for number, callback in enumerate(definition.callbacks_for(data.status)):
        unit = f"after/{data.status}/{number}"
        try:
            with _transaction() as session:
                if records.find(session, _unit_key(unit), bool, attempt=_attempt()) is None:
                    actor, _, arguments = _load(session, context)
                    action = _action(actor, context, arguments, status=data.status, unit=unit)
                    _call_user(callback, actor, action, *arguments)
                    records.record(session, _unit_key(unit), context.action_id, True)
            succeeded += 1
        except (_Handled, *_PERMANENT) as error:
            cause = error.error if isinstance(error, _Handled) else error
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
    if grant or data.release_claim:
        with _transaction() as session:
            if grant:
                assert context.checksum_key is not None and context.checksum is not None
                achievements.grant(session, context.checksum_key, context.checksum)
                granted = True
            if data.release_claim:
                lane_owned = _release(session, context)
    return FinishOutcome(
        succeeded=succeeded, failed=failed, errors=errors, granted=granted, lane_owned=lane_owned
    )


@activity.defn(name="stepped_finish")
async def finish(data: FinishInput) -> FinishOutcome:
    """Run the after-callbacks for a final status, then grant the achievement (S3.9)."""
    return await _in_thread(lambda: _finish(data))


ALL_ACTIVITIES: tuple[Callable[..., Any], ...] = (prepare, run_step, run_job, finish)
