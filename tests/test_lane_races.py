"""Races named in ARCHITECTURE.md, made deterministic.

The lane runs on a worker of its own that the test starts only after it has
queued the messages, so they all arrive in one workflow task, in the order
sent. Actions are stood in for by probe workflows that record what the lane
tells them.
"""

from __future__ import annotations

import asyncio
import uuid
from contextlib import AsyncExitStack

import pytest_asyncio
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

import stepped_temporal as stepped
from stepped_temporal.lane_messages import (
    Conclusion,
    Forward,
    LaneJoin,
    LaneRelease,
    LaneState,
    LaneWithdraw,
    Verdict,
)
from stepped_temporal.lanes import LaneWorkflow
from stepped_temporal.messages import Dependency
from stepped_temporal.worker import PASSTHROUGH
from tests.support import car_class, joined, performing, until, until_true

_RUNNER = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)
)


@workflow.defn(name="LaneProbe")
class Probe:
    """Stands in for an action: records verdicts and conclusions."""

    def __init__(self) -> None:
        self.heard: list[str] = []

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)

    @workflow.signal
    def verdict(self, verdict: Verdict) -> None:
        self.heard.append(f"{verdict.kind}:{verdict.by or ''}")

    @workflow.signal
    def conclude(self, conclusion: Conclusion) -> None:
        self.heard.append(f"conclude:{conclusion.dependency_id}:{conclusion.successful}")

    @workflow.signal
    def forward(self, forward: Forward) -> None:
        self.heard.append("forward")

    @workflow.query
    def seen(self) -> list[str]:
        return self.heard


class Lane:
    """A lane on its own task queue, with probes for its actions."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.queue = f"lane-race-{uuid.uuid4().hex[:8]}"
        self.probe_queue = self.queue + "-probes"
        self.id = f"stepped-lane/race-{uuid.uuid4().hex[:8]}"
        self.probes: dict[str, WorkflowHandle] = {}
        self.workers = 0

    async def probe(self, name: str) -> str:
        probe_id = f"{self.id}/{name}"
        self.probes[name] = await self.client.start_workflow(
            Probe.run, id=probe_id, task_queue=self.probe_queue
        )
        return probe_id

    async def start(self, first: LaneJoin, idle: float = 60.0) -> WorkflowHandle:
        return await self.client.start_workflow(
            LaneWorkflow.run,
            LaneState(key=self.id, idle_seconds=idle),
            id=self.id,
            task_queue=self.queue,
            start_signal="join",
            start_signal_args=[first],
        )

    async def signal(self, name: str, payload: object) -> None:
        await self.client.get_workflow_handle(self.id).signal(name, payload)

    def worker(self) -> Worker:
        """The lane's worker; stopped, the lane's messages wait for the next one.

        No cache, so no sticky queue: the next worker picks up where this one left.
        Each has an identity of its own (`took_together`).
        """
        self.workers += 1
        return Worker(
            self.client,
            task_queue=self.queue,
            identity=f"{self.queue}/{self.workers}",
            workflows=[LaneWorkflow],
            max_cached_workflows=0,
            # as create_worker runs it: without a cache, a sandbox that re-imports the
            # package (and SQLAlchemy) on every task made one task take seconds
            workflow_runner=_RUNNER,
        )

    def probe_worker(self) -> Worker:
        """The probes' worker, running for the whole test."""
        return Worker(
            self.client, task_queue=self.probe_queue, workflows=[Probe], workflow_runner=_RUNNER
        )

    async def heard(self, name: str, count: int, seconds: float = 10.0) -> list[str]:
        probe = self.probes[name]

        seen: list[str] = []

        async def enough() -> list[str] | None:
            seen[:] = await probe.query(Probe.seen)
            return seen if len(seen) >= count else None

        try:
            return await until_true(enough, seconds=seconds)
        except AssertionError:
            raise AssertionError(f"{name} heard only {seen}, expected {count}") from None

    async def took_together(self, worker: Worker) -> bool:
        """Whether `worker`, started after messages were queued with no worker running,
        took them all in its first workflow task. Not so when a poll of the worker
        stopped before outlived it on the server (seen under load): that poll takes
        the first message's task and drops it, the task times out after 10 s, and
        the later messages land in a task of their own."""
        handle = self.client.get_workflow_handle(self.id)
        identity = worker.config()["identity"]

        async def before_its_first_task() -> list[HistoryEvent] | None:
            events = (await handle.fetch_history()).events
            for index, event in enumerate(events):
                started = event.workflow_task_started_event_attributes
                if event.HasField("workflow_task_started_event_attributes") and (
                    started.identity == identity
                ):
                    return list(events[:index])
            return None

        try:  # a lost task keeps it waiting 10 s
            before = await until_true(before_its_first_task, seconds=8.0)
        except AssertionError:
            return False
        timed_out = EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT
        return all(event.event_type != timed_out for event in before)

    async def state(self) -> LaneState:
        return await self.client.get_workflow_handle(self.id).query(
            LaneWorkflow.state, result_type=LaneState
        )


@pytest_asyncio.fixture
async def new_lane(stepped_env):
    """Makes `Lane`s whose probes' worker runs until the test ends."""
    async with AsyncExitStack() as stack:

        async def make() -> Lane:
            lane = Lane(stepped_env.client)
            await stack.enter_async_context(lane.probe_worker())
            return lane

        yield make


async def test_two_joins_in_one_task_on_an_idle_lane_queue_in_order(stepped_env, new_lane):
    """S4.1/S4.2: the first candidate on an idle lane performs; the second queues
    behind it instead of superseding it (it would, were grants only made later)."""
    lane = await new_lane()
    first, second = await lane.probe("first"), await lane.probe("second")
    await lane.start(LaneJoin(first))
    await lane.signal("join", LaneJoin(second))

    async with lane.worker():
        assert await lane.heard("first", 1) == ["perform:"]
        state = await lane.state()
        assert state.performing.action_id == first
        assert [e.action_id for e in state.pending] == [second]
        await lane.signal("release", LaneRelease(first, "succeeded", True))
        assert await lane.heard("second", 1) == ["perform:"]


async def test_release_and_a_sharing_join_in_one_task_in_either_order(stepped_env, new_lane):
    """Finish vs. join at the same moment: the lane, seeing both in order, either
    shares the candidate and resolves it at once, or lets it perform — never both,
    never neither."""
    for join_first in (True, False):
        for _attempt in range(5):
            lane = await new_lane()
            performer, candidate = await lane.probe("performer"), await lane.probe("candidate")
            await lane.start(LaneJoin(performer, checksum_key="k", checksum="c"))
            async with lane.worker():
                assert await lane.heard("performer", 1) == ["perform:"]
            messages = [
                ("join", LaneJoin(candidate, checksum_key="k", checksum="c")),
                ("release", LaneRelease(performer, "succeeded", True)),
            ]
            for name, payload in messages if join_first else reversed(messages):
                await lane.signal(name, payload)
            async with lane.worker() as worker:
                if not await lane.took_together(worker):
                    continue  # the first worker's poll took the task: set the scene again
                if join_first:
                    heard = await lane.heard("candidate", 2)
                    # sent together, they may arrive in either order (the action copes:
                    # test_a_resolved_verdict_overtaking_its_shared_verdict_is_kept)
                    assert sorted(heard) == [f"resolved:{performer}", f"shared:{performer}"]
                    state = await lane.state()  # never both: it does not perform as well
                    assert state.performing is None and not state.pending
                else:
                    assert await lane.heard("candidate", 1) == ["perform:"]
                    assert (await lane.state()).performing.action_id == candidate
            break
        else:
            raise AssertionError("a stopped worker's poll took the lane's task 5 times")


async def test_a_join_racing_the_idle_end_is_not_lost(stepped_env, new_lane):
    """S4.7: the idle timer fires and a join arrives in the same task: the lane
    stays up and grants the join instead of ending."""
    lane = await new_lane()
    first, late = await lane.probe("first"), await lane.probe("late")
    handle = await lane.start(LaneJoin(first), idle=3)
    async with lane.worker():
        assert await lane.heard("first", 1) == ["perform:"]
        await lane.signal("release", LaneRelease(first, "succeeded", True))
        await until_true(lambda: _idle(lane))
    # no worker: the idle timer fires on the server (in real time: with a task
    # waiting for a worker the test server does not skip), the join waits with it
    await asyncio.sleep(3.5)
    await lane.signal("join", LaneJoin(late))
    async with lane.worker():
        assert await lane.heard("late", 1) == ["perform:"]
        assert (await lane.state()).performing.action_id == late
    assert (await handle.describe()).status.name == "RUNNING"


async def test_withdraw_crossing_a_grant_is_ignored(stepped_env, new_lane):
    """S4.6: a withdraw that arrives after the grant leaves the performing action be."""
    lane = await new_lane()
    first = await lane.probe("first")
    await lane.start(LaneJoin(first))
    await lane.signal("withdraw", LaneWithdraw(first))
    async with lane.worker():
        assert await lane.heard("first", 1) == ["perform:"]
        assert (await lane.state()).performing.action_id == first


async def test_repeated_join_is_ignored(stepped_env, new_lane):
    """A retried join activity delivers the same candidate twice: one entry only."""
    lane = await new_lane()
    first, second = await lane.probe("first"), await lane.probe("second")
    await lane.start(LaneJoin(first))
    await lane.signal("join", LaneJoin(second))
    await lane.signal("join", LaneJoin(second))
    await lane.signal("join", LaneJoin(first))
    async with lane.worker():
        assert await lane.heard("first", 1) == ["perform:"]
        state = await lane.state()
        assert [e.action_id for e in state.pending] == [second]


async def test_superseding_moves_every_dependency_and_conclusion_counts_each(stepped_env, new_lane):
    """S4.2: two dependencies of one parent superseded by one successor: the parent
    hears one forward per dependency and, when the successor ends, one conclusion
    per dependency."""
    lane = await new_lane()
    performer = await lane.probe("performer")
    parent = await lane.probe("parent")
    a, b, successor = [await lane.probe(n) for n in ("a", "b", "successor")]
    await lane.start(LaneJoin(performer))
    await lane.signal("join", LaneJoin(a, dependent=Dependency(parent, "dep-a")))
    await lane.signal("join", LaneJoin(b, dependent=Dependency(parent, "dep-b")))
    await lane.signal("join", LaneJoin(successor))
    async with lane.worker():
        assert await lane.heard("a", 1) == [f"superseded:{b}"]
        assert await lane.heard("b", 1) == [f"superseded:{successor}"]
        await lane.signal("release", LaneRelease(performer, "succeeded", True))
        assert await lane.heard("successor", 1) == ["perform:"]
        await lane.signal("release", LaneRelease(successor, "failed", False))
        heard = await lane.heard("parent", 4)
    # dep-a moved twice (to b, then on) before the lane sent anything: one forward
    # to the successor, via b (LaneRules._forward); dep-b once
    assert heard.count("forward") == 2
    assert sorted(h for h in heard if h.startswith("conclude")) == [
        "conclude:dep-a:False",
        "conclude:dep-b:False",
    ]


async def _idle(lane: Lane) -> bool | None:
    state = await lane.state()
    return True if state.performing is None and not state.pending else None


async def test_a_resolved_verdict_overtaking_its_shared_verdict_is_kept(stepped_env):
    """S4.3: the lane sends its signals concurrently, so a sharer may hear
    "resolved" before "shared" (seen on the dev server): it must still end with the
    shared action's result, not wait forever for a "resolved" it dropped."""
    Car = car_class()
    for name in ("block", "visit"):
        definition = Car.stepped_action(name, outbound=name == "block")
        definition.concurrency_key(lambda car: "garage")
        definition.step(lambda car, step: None)
    car = stepped_env.create(Car, id=1)
    blocker = await stepped.start(car, "block")
    await until(blocker, performing)
    candidate = await stepped.start(car, "visit")
    await until(candidate, joined)

    signals = stepped_env.client.get_workflow_handle(candidate.id)
    await signals.signal(
        "verdict", Verdict("resolved", by=blocker.id, status="succeeded", successful=True)
    )
    await signals.signal("verdict", Verdict("shared", by=blocker.id))

    result = await asyncio.wait_for(candidate.result(), 30)
    assert (result.status, result.resolved_by) == ("succeeded", blocker.id)
    assert await stepped.complete(car, "block") is True  # the lane goes on regardless
    assert (await blocker.result()).status == "succeeded"


async def test_a_burst_of_joins_before_the_first_task_is_taken_in_that_task(stepped_env, new_lane):
    """S4.1, S4.2 at scale: 2,000 joins queued before the lane's first workflow task
    (as a burst of starts on one key does) are all taken in that one task: the first
    performs, each later one supersedes the one before, the last is pending, and
    the task completes (at 10,000 it used to exceed Temporal's 2 s deadlock
    detector and fail on every retry). An undecodable join is dropped, not fatal."""
    lane = await new_lane()
    first, last = await lane.probe("first"), await lane.probe("last")
    started = await lane.start(LaneJoin(first))
    ghosts = [f"{lane.id}/ghost-{n}" for n in range(2000)]  # no workflows behind them
    sending = asyncio.Semaphore(50)

    async def join(action_id: str) -> None:
        async with sending:
            await lane.signal("join", LaneJoin(action_id))

    await asyncio.gather(*(join(g) for g in ghosts))
    await lane.signal("join", {"not": "a join"})
    await lane.signal("join", LaneJoin(last))

    async with lane.worker():
        assert await lane.heard("first", 1) == ["perform:"]
        state = await lane.state()
        assert state.performing.action_id == first
        assert [e.action_id for e in state.pending] == [last]
        # every ghost was superseded by the next to arrive (the lane remembers 1,000)
        assert len(state.recent) == 1000 and set(state.recent) <= set(ghosts)
        assert {h.how for h in state.handovers} == {"superseded"}
        assert state.handovers[-1].to == last and state.handovers[-1].action_id in ghosts
        # (the run that took them: past HISTORY_LIMIT, the lane continued as new)
        first_run = stepped_env.client.get_workflow_handle(lane.id, run_id=started.result_run_id)
        history = await first_run.fetch_history()
        kinds = [event.WhichOneof("attributes") for event in history.events]
        assert "workflow_task_failed_event_attributes" not in kinds
        assert kinds.count("workflow_execution_signaled_event_attributes") == 1 + 2000 + 2
        await lane.signal("release", LaneRelease(first, "succeeded", True))
        # its grant goes out behind the 2,000 superseded verdicts (sent to nobody)
        assert await lane.heard("last", 1, seconds=90) == ["perform:"]
