"""S11 at a fiftieth of the size: the dev server started with Temporal's per-execution
limits lowered about fifty-fold (history 1,000 events / 1 MiB, payloads 64 KiB, 50
pending operations of each kind, 500 signals per run), the same limits declared to
Stepped (`configure(server_limits=…)`, S11.5), on SQLite and PostgreSQL, through
Temporal's own `WorkflowEnvironment` (S10.3). After each scenario no workflow of the
test's task queue ended TERMINATED and every history stayed under the lowered limit.

Proven here: a deadlock probe through a parent of 500 children (100 on SQLite), all
but 25 held back by its child window (S4.9, S11.1: before, the probe signalled all
of them at once and the server refused the task on every retry); a 20-deep tree; a
300-deep `"queue"` lane performing in start order (120 on SQLite); 1,000 roots
superseding one another in one lane (150 on SQLite); a step of 400 waits stopped
short of the history limit and failed, never terminated (S11.4); an action of 150
steps continuing as new between steps (S11.1) and steps of 300 and 600 children
continuing as new inside them — with `describe()`, `result()`, `lane()` and the
`tree`/`lanes` CLI on them.

This module starts a server of its own (marked `own_server`): CI runs it once.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

import stepped_temporal as stepped
from stepped_temporal import binaries, config, search_attributes
from tests.support import configured, joined, performing, run_cli, until, until_true

pytestmark = pytest.mark.own_server

#: what the server enforces and Stepped is told
LIMITS = stepped.ServerLimits(
    history_events=1_000,
    history_bytes=1024 * 1024,
    payload_bytes=64 * 1024,
    pending_operations=50,
    signals_per_run=500,
)
DYNAMIC_CONFIG = {
    "limit.historyCount.error": LIMITS.history_events,
    "limit.historyCount.warn": LIMITS.history_events // 2,
    "limit.historySize.error": LIMITS.history_bytes,
    "limit.historySize.warn": LIMITS.history_bytes // 2,
    "limit.blobSize.error": LIMITS.payload_bytes,
    "limit.blobSize.warn": LIMITS.payload_bytes // 2,
    "limit.numPendingChildExecutions.error": LIMITS.pending_operations,
    "limit.numPendingActivities.error": LIMITS.pending_operations,
    "limit.numPendingSignals.error": LIMITS.pending_operations,
    "limit.numPendingCancelRequests.error": LIMITS.pending_operations,
    "history.maximumSignalsPerExecution": LIMITS.signals_per_run,
}
DEADLINE = 240.0


@pytest_asyncio.fixture(scope="module")
async def server() -> AsyncIterator[WorkflowEnvironment]:
    arguments = [f"--dynamic-config-value={key}={value}" for key, value in DYNAMIC_CONFIG.items()]
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=binaries.dev_server_path(),
        dev_server_log_level="error",
        dev_server_extra_args=arguments,
        search_attributes=search_attributes.ALL,
    )
    try:
        yield env
    finally:
        await env.shutdown()


class Base(DeclarativeBase):
    pass


class Truck(stepped.Actor, Base):
    __stepped_name__ = "SizeTruck"  # (declared at import: a name no other test uses)
    __tablename__ = "trucks"
    id: Mapped[int] = mapped_column(primary_key=True)
    honks: Mapped[int] = mapped_column(default=0)

    def honk(self) -> None:
        self.honks += 1


class Entry(Base):
    """One performance, in the order they happened."""

    __tablename__ = "entries"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    n: Mapped[int]


def _declare() -> None:
    Truck.stepped_action("gate", outbound=True).step(lambda truck, step: None)
    Truck.stepped_action("hold", outbound=True).step(lambda truck, step: None)
    visit = Truck.stepped_action("visit")
    visit.concurrency_key(lambda truck, key: key)
    visit.step(lambda truck, step, key: truck.honk())
    lead = Truck.stepped_action("lead")
    lead.concurrency_key(lambda truck, own, other, holds: own)
    lead.step(lambda truck, step, own, other, holds: step.do("gate"))

    @lead.step
    def _(truck: Truck, step: Any, own: str, other: str | None, holds: list[int]) -> None:
        if other is not None:
            step.do("visit", other)
        session = sa.orm.object_session(truck)
        assert session is not None
        for truck_id in holds:
            step.on(session.get(Truck, truck_id), "hold")

    @Truck.stepped_action("nest").step
    def _(truck: Truck, step: Any, depth: int) -> None:
        session = sa.orm.object_session(truck)
        assert session is not None
        if depth:  # one truck per level: each level's key is its own
            step.on(session.get(Truck, depth - 1), "nest", depth - 1)
        else:
            truck.honk()

    def record(truck: Truck, step: Any, key: str, n: int) -> None:
        session = sa.orm.object_session(truck)
        assert session is not None
        session.add(Entry(n=n))

    queued = Truck.stepped_action("deploy", lane="queue")
    queued.concurrency_key(lambda truck, key, n: key)
    queued.step(record)
    block = Truck.stepped_action("block", outbound=True, lane="queue")
    block.concurrency_key(lambda truck, key: key)
    block.step(lambda truck, step, key: None)
    release = Truck.stepped_action("release")
    release.concurrency_key(lambda truck, key, n: key)
    release.step(record)
    fleet = Truck.stepped_action("fleet")
    fleet.concurrency_key(lambda truck, key, ids: key)

    @fleet.step
    def _(truck: Truck, step: Any, key: str, ids: list[int]) -> None:
        session = sa.orm.object_session(truck)
        assert session is not None
        step.on([session.get(Truck, n) for n in ids], "honk")

    waits = Truck.stepped_action("waits")
    waits.concurrency_key(lambda truck, key: key)
    waits.step(lambda truck, step, key: [step.wait(1 + n / 100) for n in range(400)])
    waits.failed(lambda truck, action, key: truck.honk())  # (a callback ran)
    long = Truck.stepped_action("long")
    long.concurrency_key(lambda truck, key: key)
    for number in range(150):

        @long.step
        def _(truck: Truck, step: Any, key: str, number: int = number) -> None:
            truck.honk()
            if number % 10 == 0:  # (a wait costs about a second of the dev server's)
                step.wait(0.1)

    barrier = Truck.stepped_action("barrier", outbound=True)
    barrier.concurrency_key(lambda truck, key: key)
    barrier.step(lambda truck, step, key: None)


class Stepped:
    """Stepped configured on the lowered server the way a user would, with a worker."""

    def __init__(self, env: WorkflowEnvironment, url: str, task_queue: str) -> None:
        self.env, self.url, self.task_queue = env, url, task_queue
        #: lane keys are the namespace's, and the server outlives each test: a key
        #: of this test's own (a lane of an earlier test may still idle on its queue)
        self.key = task_queue

    def create(self, *ids: int) -> list[Truck]:
        with Session(config.get_engine(), expire_on_commit=False) as session, session.begin():
            trucks = [Truck(id=n) for n in ids]
            session.add_all(trucks)
        return trucks

    def entries(self) -> list[int]:
        with Session(config.get_engine()) as session:
            return list(session.scalars(sa.select(Entry.n).order_by(Entry.id)))

    async def cli(self, *arguments: str) -> str:
        address = self.env.client.service_client.config.target_host
        return await run_cli(address, self.url, *arguments)

    async def assert_within_limits(self) -> int:
        """No workflow of this test ended TERMINATED, none grew past the limit; how many."""
        query = f'TaskQueue="{self.task_queue}"'
        seen = 0
        async for execution in self.env.client.list_workflows(query):
            seen += 1
            assert execution.status != WorkflowExecutionStatus.TERMINATED, execution.id
            history = await self.env.client.get_workflow_handle(
                execution.id, run_id=execution.run_id
            ).fetch_history()
            assert len(history.events) < LIMITS.history_events, (execution.id, len(history.events))
        return seen


@pytest_asyncio.fixture
async def stepped_on(server, database_url, tmp_path) -> AsyncIterator[Stepped]:
    url = database_url or f"sqlite:///{tmp_path / 'app.db'}"
    async with configured(server, tmp_path, database_url=url, server_limits=LIMITS):
        Base.metadata.create_all(config.get_engine())
        _declare()  # (inside: the registry is restored after)
        yield Stepped(server, url, config.settings().task_queue)


async def _behind_a_holder(
    stepped_on: Stepped, holder: str, name: str, count: int
) -> tuple[Truck, stepped.ActionHandle, list[stepped.ActionHandle]]:
    """Truck 1's outbound `holder` performs in the test's lane; then `count` trucks
    start `name` there, one by one, each once the one before is pending."""
    blocker, *trucks = stepped_on.create(1, *range(2, count + 2))
    held = await stepped.start(blocker, holder, stepped_on.key)
    await until(held, performing, seconds=30)
    handles = []
    for n, truck in enumerate(trucks):
        handles.append(await stepped.start(truck, name, stepped_on.key, n))
        await until(handles[-1], joined, seconds=30)
    return blocker, held, handles


async def _pending_count(key: str, count: int) -> bool | None:
    return True if (await stepped.lane(key)).pending_count == count else None


async def _complete(truck: Truck, name: str) -> None:
    """Complete `truck`'s outbound `name` once it performs (S6.1)."""
    while not await stepped.complete(truck, name):
        await asyncio.sleep(0.05)


async def test_a_deadlock_probe_through_a_parent_of_500_children(stepped_on, database_url):
    """S4.9 through a parent whose step waits on 501 children (101 on SQLite, for CI's
    time), all but 25 held back by its window — and, from revision 6, by its
    hand-overs to the next run (S11.1): the cycle is found, one visit is deadlocked,
    and both trees end."""
    width = 500 if database_url else 100
    one, two, *holders = stepped_on.create(1, 2, *range(10, 10 + width))
    a, b = f"{stepped_on.key}-a", f"{stepped_on.key}-b"
    first = await stepped.start(one, "lead", a, b, [t.id for t in holders])
    second = await stepped.start(two, "lead", b, a, [])
    for root, truck in ((first, one), (second, two)):
        await until(root, lambda s: s.steps and s.steps[0].actions, seconds=30)
        await _complete(truck, "gate")

    async def victim() -> stepped.ActionState:
        while True:
            for root in (first, second):
                state = await root.describe()
                if len(state.steps) > 1 and state.steps[1].actions:
                    visit = await stepped.action_handle(state.steps[1].actions[0]).describe()
                    if visit.status == "deadlocked":
                        return visit
            await asyncio.sleep(0.2)

    deadlocked = await asyncio.wait_for(victim(), 60)
    assert deadlocked.error is not None and deadlocked.error.type == "Deadlock"
    for truck in holders:
        await asyncio.wait_for(_complete(truck, "hold"), 30)
    results = await asyncio.wait_for(asyncio.gather(first.result(), second.result()), DEADLINE)
    assert sorted(r.status for r in results) == ["failed", "succeeded"]
    assert results[0].steps[1].pending_actions_count == 0
    assert results[0].steps[1].actions_count == width + 1
    failed = next(r for r in results if r.status == "failed")
    assert "deadlocked" in await stepped_on.cli("tree", failed.id)
    assert await stepped_on.assert_within_limits() >= width + 4


async def test_a_tree_20_deep(stepped_on):
    *_, top = stepped_on.create(*range(21))
    result = await asyncio.wait_for(stepped.run(top, "nest", 20), DEADLINE)
    assert result.status == "succeeded"
    depth, state = 0, result
    while state.steps[0].actions:
        state = await stepped.action_handle(state.steps[0].actions[0]).result()
        depth += 1
    assert depth == 20 and state.status == "succeeded"
    tree = json.loads(await stepped_on.cli("tree", result.id, "--json"))
    assert tree["status"] == "succeeded"
    assert await stepped_on.assert_within_limits() == 21


async def test_work_too_large_for_one_history_fails_or_continues_and_is_never_terminated(
    stepped_on,
):
    """S11.4: a step of 400 waits (about 1,200 events, all open at once) stops at 800
    of the server's 1,000 events, ends failed with `HistoryLimitReached`, runs its
    `failed` callback and gives its key to the next action. S11.1: a step of 300
    children (about 1,300 events) continues as new inside it, and an action of 150
    steps (about 1,000 events, some waiting) between steps; both succeed, every run
    under the limit. (Before, the server terminated all three, `result()` raised and
    the key stayed claimed; before continuing inside a step, the 300 stopped.)"""
    boss, *trucks = stepped_on.create(1, *range(10, 310))
    key = stepped_on.key
    wide = await stepped.start(boss, "fleet", key, [t.id for t in trucks])
    stuck = await stepped.start(boss, "waits", key)  # (queued behind the wide one)
    continued, failed = await asyncio.wait_for(
        asyncio.gather(wide.result(), stuck.result()), DEADLINE
    )
    # (started now: queued beside the stuck one, it would have superseded it)
    succeeded = await asyncio.wait_for(stepped.run(boss, "long", key), DEADLINE)
    assert continued.status == "succeeded", continued.error
    assert continued.steps[0].actions_count == 300
    assert failed.status == "failed", failed.status
    assert failed.error is not None and failed.error.type == "HistoryLimitReached"
    assert "800 events" in failed.error.message, failed.error.message
    assert succeeded.status == "succeeded", succeeded.error
    assert succeeded.steps_count == 150 and succeeded.steps_left_out == 50  # (S11.2)
    with Session(config.get_engine()) as session:
        honks = session.get(Truck, 1).honks  # type: ignore[union-attr]
    assert honks == 1 + 150  # the stuck one's callback, each of the long one's steps
    (visit,) = stepped_on.create(2)
    assert (await stepped.run(visit, "visit", key)).status == "succeeded"  # the key is free
    assert await stepped_on.assert_within_limits() >= 3


async def test_a_step_of_600_children_continues_as_new_inside_it(stepped_on):
    """S11.1 inside a step: 600 children (about 2,600 events: past the limit, not only
    the stop) — the action continues as new part way, many times, each run under
    the limit; every child ran once, the result counts all 600 and `step_actions`
    and the `tree` CLI list them. (Before, it stopped at 800 events and failed.)"""
    boss, *trucks = stepped_on.create(3, *range(1000, 1600))
    ids = [t.id for t in trucks]
    handle = await stepped.start(boss, "fleet", f"{stepped_on.key}-wide", ids)
    result = await asyncio.wait_for(handle.result(), DEADLINE)
    assert result.status == "succeeded", result.error
    step = result.steps[0]
    assert (step.actions_count, step.pending_actions_count, step.actions_left_out) == (600, 0, 500)
    listed = [action_id async for action_id in handle.step_actions(0)]
    assert [int(action_id.split("/")[1]) for action_id in listed] == ids
    with Session(config.get_engine()) as session:
        honks = session.scalars(sa.select(Truck.honks).where(Truck.id.in_(ids))).all()
    assert sorted(set(honks)) == [1]
    tree = json.loads(await stepped_on.cli("tree", result.id, "--json"))
    assert tree["status"] == "succeeded"
    runs, run_id = 0, None
    while True:  # (assert_within_limits sees only the latest run of each id)
        history = await stepped_on.env.client.get_workflow_handle(
            handle.id, run_id=run_id
        ).fetch_history()
        runs += 1
        assert len(history.events) < LIMITS.history_events // 2, len(history.events)
        started = history.events[0].workflow_execution_started_event_attributes
        run_id = started.continued_execution_run_id
        if not run_id:
            break
    assert runs >= 10, runs
    assert await stepped_on.assert_within_limits() >= 601


async def test_a_queue_lane_performs_in_start_order_however_deep(stepped_on, database_url):
    """S4.10 at depth: 300 actions (120 on SQLite, to keep CI's time; past the 100 ids
    a view shows either way) queue behind a holder, each started once the one before
    is pending; each performs, in start order, across the lane's many runs."""
    depth = 300 if database_url else 120
    key = stepped_on.key
    blocker, block, handles = await _behind_a_holder(stepped_on, "block", "deploy", depth)
    ids = [h.id for h in handles]
    await until_true(lambda: _pending_count(key, depth), seconds=30)
    lane = await stepped.lane(key)  # S11.2: counts exact, ids bounded
    assert lane.performing == block.id and lane.pending_count == depth
    assert lane.pending == (*ids[:50], *ids[-50:]) and lane.pending_left_out == depth - 100
    assert [action_id async for action_id in stepped.lane_pending(key)] == ids
    shown = json.loads(await stepped_on.cli("lanes", key, "--json"))
    assert shown["performing"] == block.id and shown["pending_count"] == depth
    assert shown["pending"] == [*ids[:50], *ids[-50:]]
    assert f"… {depth - 100} more" in await stepped_on.cli("lanes", key)
    assert f"#{depth} in lane" in await stepped_on.cli("tree", ids[-1])
    await _complete(blocker, "block")
    results = await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), DEADLINE)
    assert {r.status for r in results} == {"succeeded"}
    assert stepped_on.entries() == list(range(depth))
    assert await stepped_on.assert_within_limits() >= depth + 2


async def test_starts_superseding_one_another_in_one_lane(stepped_on, database_url):
    """S4.2 at length: 1,000 roots (150 on SQLite, for CI's time) join one lane behind
    a holder, each once the one before is pending, and each supersedes the one
    before; the last performs, once, and every other ends superseded by the one
    after it."""
    count = 1_000 if database_url else 150
    blocker, _, handles = await _behind_a_holder(stepped_on, "barrier", "release", count)
    await _complete(blocker, "barrier")
    results = await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), DEADLINE)
    odd = [(r.id, r.status, r.resolved_by) for r in results[:-1] if r.status != "superseded"]
    assert results[-1].status == "succeeded" and not odd, odd[:5]
    assert [r.resolved_by for r in results[:-1]] == [h.id for h in handles[1:]]
    assert stepped_on.entries() == [count - 1]
    assert await stepped_on.assert_within_limits() >= count + 2
