"""The raw Temporal baseline: hand-written workflows doing the same writes.

Each leaf is a child workflow running ONE activity, `bench_raw_visit`, which
runs ``UPDATE bench_cars SET visits = visits + 1 WHERE id = :id`` in its own
transaction through a SQLAlchemy engine on the benchmark's database (made by
the same `stepped_temporal.config.create_engine` the stepped worker uses). The
activity's timeout and retry policy are Stepped's defaults for a step, and a
fan-out keeps at most as many children open as a Stepped step does.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import RetryPolicy, TypedSearchAttributes

with workflow.unsafe.imports_passed_through():
    import sqlalchemy as sa
    from sqlalchemy.engine import Engine

    from stepped_temporal.search_attributes import STATUS, initial_search_attributes

#: Stepped's defaults for a step activity (start-to-close 10 min, 5 attempts)
ACTIVITY_TIMEOUT = timedelta(minutes=10)
RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,
)
#: children open at once, as Stepped's CHILD_WINDOW
CHILD_WINDOW = 1000
#: child starts per workflow task in the batched variant, as Stepped's START_BATCH:
#: hundreds of starts in one task make one large batch of history events that the
#: server reads once per child (1,000 leaves: 26.8 s batched against 44.5 s unbatched)
START_BATCH = 50
VISIT_SQL = "UPDATE bench_cars SET visits = visits + 1 WHERE id = :id"

_engine: Engine | None = None


def use_engine(engine: Engine) -> None:
    """Set the engine the activity writes with (the raw worker calls it once)."""
    global _engine
    _engine = engine


@activity.defn(name="bench_raw_visit")
def visit(car_id: int) -> None:
    """The leaf's write, in its own transaction."""
    assert _engine is not None, "the raw worker did not call use_engine()"
    with _engine.begin() as connection:
        updated = connection.execute(sa.text(VISIT_SQL), {"id": car_id}).rowcount
    if updated != 1:
        raise LookupError(f"bench_cars row {car_id} is missing")


async def _visit(car_id: int, local: bool = False) -> None:
    if local:  # inside the workflow task, as Stepped's prepare runs
        await workflow.execute_local_activity(
            visit, car_id, start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=RETRY
        )
        return
    await workflow.execute_activity(
        visit, car_id, start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=RETRY
    )


def attributes(car_id: int, name: str) -> TypedSearchAttributes:
    """The attributes a Stepped action starts with (actor, name, status): the bench
    registers them on its server, so both sides pay for the Web UI integration."""
    return initial_search_attributes("BenchCar", car_id, name)


def final_status(status: str) -> None:
    """Record the final status in the attributes, as Stepped does."""
    workflow.upsert_search_attributes([STATUS.value_set(status)])


@workflow.defn(name="BenchRawVisit")
class RawVisit:
    """A leaf: one activity (`local`: a local activity)."""

    @workflow.run
    async def run(self, car_id: int, local: bool = False) -> None:
        await _visit(car_id, local)
        final_status("succeeded")


@workflow.defn(name="BenchRawFanout")
class RawFanout:
    """A parent starting one `RawVisit` child per car; returns how many succeeded.

    With `batch`, it issues that many child starts per workflow task and waits for
    Temporal to confirm them before the next batch (what Stepped does); without,
    every start up to the window goes out in one task.
    """

    def __init__(self) -> None:
        self._open = 0
        self._starting = 0
        self._local = False

    @workflow.run
    async def run(self, first: int, count: int, batch: int = 0, local: bool = False) -> int:
        parent = workflow.info().workflow_id
        self._local = local
        tasks = []
        for number, car_id in enumerate(range(first, first + count)):
            if batch and number and number % batch == 0:
                await workflow.wait_condition(lambda: self._starting == 0)
            await workflow.wait_condition(lambda: self._open < CHILD_WINDOW)
            self._open += 1
            self._starting += 1
            tasks.append(asyncio.ensure_future(self._child(f"{parent}/visit/{car_id}", car_id)))
        results = await asyncio.gather(*tasks)
        return sum(results)

    async def _child(self, child_id: str, car_id: int) -> bool:
        try:
            try:
                handle = await workflow.start_child_workflow(
                    RawVisit.run,
                    args=[car_id, True] if self._local else [car_id],
                    id=child_id,
                    search_attributes=attributes(car_id, "visit"),
                )
            finally:
                self._starting -= 1
            await handle
        except Exception as error:  # a failed leaf is counted, not raised
            workflow.logger.error("child %s failed: %s", child_id, error)
            return False
        finally:
            self._open -= 1
        return True


@workflow.defn(name="BenchRawChain")
class RawChain:
    """One level of a chain: the write, then the next level as a child workflow."""

    @workflow.run
    async def run(self, car_id: int, depth: int) -> int:
        await _visit(car_id)
        if depth <= 1:
            final_status("succeeded")
            return 1
        info = workflow.info()
        root = info.root.workflow_id if info.root else info.workflow_id
        child_id = f"{root}/chain/{car_id + 1}"
        below: int = await workflow.execute_child_workflow(
            RawChain.run,
            args=[car_id + 1, depth - 1],
            id=child_id,
            search_attributes=attributes(car_id + 1, "chain"),
        )
        final_status("succeeded")
        return below + 1


#: a sequence continues as new past this many events, as a Stepped action does at
#: Temporal's default limits (`ActionShape.continue_events`, a tenth of 51,200)
CONTINUE_EVENTS = 5_120


@workflow.defn(name="BenchRawSteps")
class RawSteps:
    """A sequence: `count` activities one after another, each the write, continuing
    as new past `CONTINUE_EVENTS` events or when the server suggests it."""

    @workflow.run
    async def run(self, car_id: int, count: int, done: int = 0) -> int:
        while done < count:
            info = workflow.info()
            if done and (
                info.get_current_history_length() >= CONTINUE_EVENTS
                or info.is_continue_as_new_suggested()
            ):
                workflow.continue_as_new(args=[car_id, count, done])
            await _visit(car_id)
            done += 1
        final_status("succeeded")
        return done


WORKFLOWS = (RawVisit, RawFanout, RawChain, RawSteps)
ACTIVITIES = (visit,)
