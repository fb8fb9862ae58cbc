"""How an activity runs its unit of work: a thread, heartbeats, database outages (S1.4, S8.2).

User code and SQL are synchronous, so each unit runs in a thread pool sized to
the worker's activity slots, heartbeating while it runs so a dead worker is
noticed within the heartbeat timeout. A database that is unavailable for a
moment (connection refused or lost, lock timeout) is waited out inside the
attempt — every unit is a transaction that rolled back, and its record makes a
committed one return its outcome — before Temporal retries the activity.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from temporalio import activity

from . import budgets
from .messages import ErrorData
from .store import is_transient, records
from .wire import Json, decode, encode

__all__ = [
    "OUTAGE_PATIENCE",
    "REPORT_WITHIN",
    "attempt",
    "error_data",
    "first_task",
    "in_thread",
    "json_in_thread",
    "set_executor",
    "stamp",
    "unit_key",
]

log = logging.getLogger("stepped_temporal")
T = TypeVar("T")


_executor: ThreadPoolExecutor | None = None


def set_executor(executor: ThreadPoolExecutor) -> None:
    """Use `executor` for user code (create_worker sizes it to the activity slots)."""
    global _executor
    _executor = executor


#: A report put in `details` (see `in_thread`) goes out by heartbeat within this
#: many seconds. A unit done sooner sends none: for a leaf of a few milliseconds
#: the heartbeat would be a server call costing more than its SQL, and no reader
#: could have asked in between.
REPORT_WITHIN = 1.0


async def in_thread(fn: Callable[[], T], details: list[Any] | None = None, budget: int = 0) -> T:
    """Run `fn` (sync user code and SQL) in the thread pool, heartbeating meanwhile
    when the activity has a heartbeat timeout — so a worker that dies is noticed
    within that timeout, not the start-to-close one. Each heartbeat carries what
    `details` holds then. `fn` may put a report there (see `prepare`): it goes
    out within `REPORT_WITHIN` seconds if `fn` still runs, heartbeats on or off.
    With a `budget` (the action's maximum attempts), failures of user code are
    counted against it, and the last one is final (budgets.py)."""
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=32, thread_name_prefix="stepped")
    context = contextvars.copy_context()
    context.run(_entered.set, datetime.now(UTC))
    loop = asyncio.get_running_loop()
    future = loop.run_in_executor(_executor, context.run, _riding_out_outages, fn)
    try:
        return await _awaiting(future, details, budget)
    except asyncio.CancelledError:
        # Cancelled (the action ended meanwhile): the thread cannot be stopped, so
        # keep the slot until it is done, then report the cancellation.
        with contextlib.suppress(Exception):
            await asyncio.shield(future)
        raise
    except Exception as error:
        if not budget:
            raise
        raise await budgets.exhausted(error, budget)  # noqa: B904 (chained inside)


async def _awaiting(future: asyncio.Future[T], details: list[Any] | None, budget: int) -> T:
    """`future`'s result, heartbeating and reporting meanwhile (see `in_thread`)."""
    loop = asyncio.get_running_loop()
    info = activity.info()
    interval = (
        max(info.heartbeat_timeout.total_seconds() / 3, 0.1) if info.heartbeat_timeout else None
    )
    if info.is_local:  # it cannot heartbeat: the workflow task waits for it (see prepare_view)
        interval, details = None, None
    tick = interval if details is None else min(interval or REPORT_WITHIN, REPORT_WITHIN)
    late_at = None  # when a budgeted unit still running counts as failed
    late_after = 0.0
    if budget and info.start_to_close_timeout:
        late_after = info.start_to_close_timeout.total_seconds() * budgets.LATE
        late_at = loop.time() + late_after
    sent: Any = None  # the report the last heartbeat carried
    last = loop.time()
    while True:
        waits = [t for t in (tick, None if late_at is None else late_at - loop.time()) if t]
        done, _ = await asyncio.wait({future}, timeout=max(min(waits), 0.01) if waits else None)
        if done:
            return future.result()
        if late_at is not None and loop.time() >= late_at:
            late_at = None
            final = await budgets.late(budget, late_after)
            if final is not None:
                raise final
        report = details[0] if details else None
        due = interval is not None and loop.time() - last >= interval * 0.99
        if due or report is not sent:
            activity.heartbeat(*(details or ()))
            sent, last = report, loop.time()


async def json_in_thread(
    cls: type[T], input: Json, body: Callable[[T], Any], *, budgeted: bool = False
) -> Json:
    """An activity's JSON input decoded as `cls`, `body` run on it by `in_thread`,
    its result returned as JSON: activities take and give JSON (see wire.py).
    `budgeted`: the input's `budget` counts failures of user code (budgets.py)."""
    data = decode(cls, input)
    budget = int(getattr(data, "budget", 0)) if budgeted else 0
    return encode(await in_thread(lambda: body(data), budget=budget))  # type: ignore[no-any-return]


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


#: How long one activity attempt waits out a database outage before it fails
#: (and Temporal retries it) — at most this, and never past the attempt's deadline.
OUTAGE_PATIENCE = 60.0


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


def error_data(error: BaseException) -> ErrorData:
    """The type name and message of `error`."""
    return ErrorData(type(error).__name__, str(error))


#: a local activity of the workflow's first task (`PrepareInput.first_task`)
first_task: contextvars.ContextVar[bool] = contextvars.ContextVar("stepped_first_task")


def attempt() -> int:
    """This attempt's number, for `records.find` (1: nothing to find). A local
    activity's attempts start again at 1 when a worker is lost mid-task, so there
    it is 0 (look) unless the workflow said it runs in its first task."""
    info = activity.info()
    if info.is_local and not first_task.get(False):
        return 0
    return info.attempt


def unit_key(unit: str) -> str:
    """The record key of `unit` of the running activity's workflow run (store/records.py)."""
    info = activity.info()
    return records.record_key(info.workflow_run_id or info.activity_id, unit)
