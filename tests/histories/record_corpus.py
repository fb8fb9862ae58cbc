"""Record the replay corpus: histories that cover every path that shapes commands.

Run it with the virtualenv of the checkout to record (whose package and tests go
first on sys.path), on the dev server, e.g. at commit C::

    git worktree add --detach /tmp/rec-C C
    python3 -m venv /tmp/venv-C && /tmp/venv-C/bin/pip install -e "/tmp/rec-C[dev]"
    /tmp/venv-C/bin/python tests/histories/record_corpus.py /tmp/rec-C tests/histories/C-corpus

Optional further arguments name the scenarios to record (default: all of them,
in `SCENARIOS` order); the output directory is emptied of earlier recordings.

Each scenario is a function that drives actions through one path whose
commands depend on the workflow code's decisions (when to continue-as-new, how
many children or signals go out in one task, which verdict a lane sends), then
checks from the recorded events that the path was taken, and fails loudly if
not: a corpus that silently missed its path would replay green and prove
nothing. The histories are written gzip-compressed (``<scenario>-NN.json.gz``,
the text of `WorkflowHistory.to_json()`) beside a ``MANIFEST.json`` (commit,
server, date, the command-shaping limits of that checkout, and per file: the
scenario, workflow id, run id, event count and whether the run continued as
new). Before writing, every history is replayed on the checkout's own code: a
recording that does not replay where it was made is a broken recording.

Only APIs present at every recorded version are used (the public API,
`stepped_temporal.testing`, `tests.support`, and the module constants read in
`limits()`); tests/test_replay.py replays every file under both runners.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import inspect
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, sys.argv[1])
import sqlalchemy as sa
import temporalio
from sqlalchemy.orm import Session
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHistory
from temporalio.service import RPCError
from temporalio.worker import Replayer

import stepped_temporal as stepped
from stepped_temporal import child_starts, lane_outbox, lanes
from stepped_temporal.lanes import LaneWorkflow
from stepped_temporal.testing import SteppedTestEnvironment
from stepped_temporal.worker import workflow_runner
from stepped_temporal.workflows import ActionWorkflow
from tests.support import car_class, joined, performing, until

CHECKOUT = Path(sys.argv[1]).resolve()
OUT = Path(sys.argv[2])
SERVER = "dev"
#: how long any one wait of the recorder may take before it gives up, loudly
PATIENCE = 600.0


class Missed(AssertionError):
    """A scenario did not reach the path it exists for."""


def check(condition: object, message: str) -> None:
    if not condition:
        raise Missed(message)


# -- reading recorded events -------------------------------------------------


@dataclass
class Recorded:
    """One run of one workflow, as the server holds it."""

    workflow_id: str
    run_id: str
    history: WorkflowHistory

    @property
    def events(self) -> list[Any]:
        return list(self.history.events)

    @property
    def continued(self) -> bool:
        last = self.history.events[-1]
        return last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW

    def types(self) -> list[str]:
        """The run's event types, short (for messages)."""
        return [EventType.Name(e.event_type).removeprefix("EVENT_TYPE_") for e in self.events]

    def of(self, *types: int) -> list[Any]:
        return [e for e in self.history.events if e.event_type in types]


def _payload(payloads: Any) -> Any:
    items = list(payloads.payloads)
    return json.loads(items[0].data) if items and items[0].data else None


def signals_sent(run: Recorded) -> list[tuple[str, Any]]:
    """(signal name, decoded argument) of every signal the run sent."""
    sent = []
    for e in run.of(EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED):
        attributes = e.signal_external_workflow_execution_initiated_event_attributes
        sent.append((attributes.signal_name, _payload(attributes.input)))
    return sent


def signals_received(run: Recorded) -> list[tuple[str, Any]]:
    """(signal name, decoded argument) of every signal the run received."""
    received = []
    for e in run.of(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED):
        attributes = e.workflow_execution_signaled_event_attributes
        received.append((attributes.signal_name, _payload(attributes.input)))
    return received


def verdicts(run: Recorded) -> Counter[str]:
    return Counter(p["kind"] for name, p in signals_sent(run) if name == "verdict")


def patches(run: Recorded) -> set[str]:
    """The patch ids the run recorded markers for."""
    found = set()
    for e in run.of(EventType.EVENT_TYPE_MARKER_RECORDED):
        marker = e.marker_recorded_event_attributes
        if marker.marker_name == "core_patch":
            found.add(json.loads(marker.details["patch-data"].payloads[0].data)["id"])
    return found


# -- talking to the server -----------------------------------------------------


async def closed(client: Client, workflow_id: str, run_id: str | None = None) -> None:
    """Wait until the run (default: the latest) has closed."""
    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    deadline = time.monotonic() + PATIENCE
    while (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
        check(time.monotonic() < deadline, f"{workflow_id} ({run_id}) is still running")
        await asyncio.sleep(0.5)


async def fetch(client: Client, workflow_id: str, run_id: str | None = None) -> Recorded:
    """A closed run's history (default: the latest run)."""
    await closed(client, workflow_id, run_id)
    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    history = await handle.fetch_history()
    return Recorded(workflow_id, run_id or (await handle.describe()).run_id, history)


async def every_run(client: Client, workflow_id: str) -> list[Recorded]:
    """Every run of a workflow id, oldest first, once all have closed: the chain of
    continue-as-new back from the latest run, and whatever else the dev server's
    visibility lists for the id (a lane that ended and was started again)."""
    await closed(client, workflow_id)
    chain: list[str] = []
    run_id: str | None = None
    while True:
        handle = client.get_workflow_handle(workflow_id, run_id=run_id)
        history = await handle.fetch_history()
        chain.append(run_id or (await handle.describe()).run_id)
        started = history.events[0].workflow_execution_started_event_attributes
        run_id = started.continued_execution_run_id or None
        if run_id is None:
            break
    query = f"WorkflowId = '{workflow_id}'"
    deadline = time.monotonic() + 30
    while True:  # visibility lags behind
        listed = {w.run_id: w async for w in client.list_workflows(query)}
        if set(chain) <= set(listed) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    check(set(chain) <= set(listed), f"visibility lists {sorted(listed)}, not all of {chain}")
    ordered = sorted(listed.values(), key=lambda w: w.start_time)
    return [await fetch(client, workflow_id, w.run_id) for w in ordered]


async def results(handles: list[stepped.ActionHandle], batch: int = 100) -> list[Any]:
    found = []
    for first in range(0, len(handles), batch):
        found += await asyncio.gather(*(h.result() for h in handles[first : first + batch]))
    return found


async def settled(handle: stepped.ActionHandle) -> Any:
    """The state of an action that has passed prepare: joined its lane, or final."""
    return await until(handle, lambda s: joined(s) or s.final, seconds=60)


async def complete(car: Any, name: str, status: str = "succeeded") -> None:
    """`stepped.complete`, again until it answers True: an outbound action that shows
    as performing may still be in its first workflow task (a local prepare running
    its first step), and an update then finds it not performing yet."""
    deadline = time.monotonic() + PATIENCE
    while not await stepped.complete(car, name, status):
        check(time.monotonic() < deadline, f"{name} on car {car.id} never performed")
        await asyncio.sleep(0.1)


def lane_id(key: str) -> str:
    return f"stepped-lane/{key}"


def make_cars(env: SteppedTestEnvironment, Car: type, ids: range) -> list[Any]:
    """Persist cars with these ids in one transaction."""
    env.create(Car, id=ids[0])  # (creates the table)
    with env.session() as session, session.begin():
        session.add_all([Car(id=n) for n in ids[1:]])
    return [Car(id=n) for n in ids]


def limits() -> dict[str, int]:
    """The numbers that shape commands, as this checkout gives them to new runs: from
    `shapes` where it has them (from 12-07), else its module constants."""
    try:
        from stepped_temporal.shapes import CURRENT_ACTION_SHAPE, CURRENT_LANE_SHAPE
    except ImportError:
        return {
            "history_limit": lanes.HISTORY_LIMIT,  # type: ignore[attr-defined]
            "window": lane_outbox.WINDOW,  # type: ignore[attr-defined]
            "child_window": child_starts.CHILD_WINDOW,  # type: ignore[attr-defined]
            "start_batch": child_starts.START_BATCH,  # type: ignore[attr-defined]
        }
    return {
        "history_limit": CURRENT_LANE_SHAPE.history_limit or 0,
        "window": CURRENT_LANE_SHAPE.window,
        "child_window": CURRENT_ACTION_SHAPE.child_window,
        "start_batch": CURRENT_ACTION_SHAPE.start_batch,
    }


# -- the scenarios ---------------------------------------------------------------

#: the events the continue-as-new scenario's lane must pass in all: the older limit
#: (lanes continued as new past 3,000 events up to 307295e, past 2,000 from 0013fc8),
#: so that it continues as new at every version, past the limit of the version
LONG_RUN = 3000
#: joins in the burst (a lane run takes up to ~1,400 events past its limit before
#: it can continue: the joins that land meanwhile)
BURST = 2000


async def lane_continues_as_new(env: SteppedTestEnvironment, Car: type) -> list[Recorded]:
    """S4.7: a burst of `BURST` joins on one key (supersede) grows the lane past
    `LONG_RUN` events, so its runs continue-as-new past the recording version's
    `lanes.HISTORY_LIMIT` (a run past 3,000 events at 307295e, past 2,000 since),
    carrying its state and unsent messages. When a run continues is a decision
    of the workflow code: a run recorded under one limit must still replay where
    the limit differs. Every run of the lane is recorded, with an
    action that performed, a superseded one and the last one started."""
    burst = Car.stepped_action("burst")
    burst.concurrency_key(lambda car: "corpus-burst")
    burst.step(lambda car, step: car.honk())
    cars = make_cars(env, Car, range(1000, 1020))
    handles: list[stepped.ActionHandle] = []
    for first in range(0, BURST, 100):
        handles += await asyncio.gather(
            *(stepped.start(cars[i % len(cars)], "burst") for i in range(first, first + 100))
        )
    done = await results(handles)
    statuses = Counter(str(r.status) for r in done)
    check(set(statuses) <= {"succeeded", "superseded"}, f"burst ended {statuses}")
    runs = await every_run(env.client, lane_id("corpus-burst"))
    lengths = [(len(r.events), r.continued) for r in runs]
    print(f"  burst: {dict(statuses)}; lane runs (events, continued): {lengths}")
    limit = limits()["history_limit"]
    check(
        sum(n for n, _ in lengths) > LONG_RUN
        and any(continued and n > limit for n, continued in lengths),
        f"the lane did not pass {LONG_RUN} events, continuing as new past {limit}: {lengths}",
    )
    performed = next(r.id for r in done if r.status == "succeeded")
    superseded = next(r.id for r in done if r.status == "superseded")
    sample = dict.fromkeys((performed, superseded, done[-1].id))
    return [*runs, *[await fetch(env.client, i) for i in sample]]


POLICIES = ("supersede", "queue", "cancel_in_progress", "skip_if_busy")


async def lane_policies(env: SteppedTestEnvironment, Car: type) -> list[Recorded]:
    """S4.10: one lane per policy, each behind an outbound `hold_<policy>` that
    performs by claim until completed (or, under cancel_in_progress, until the
    first join cancels it): three joins (four for queue, with `max_pending=2`),
    one after the other, then the hold's completion. Each policy sends its own verdicts:
    superseded; perform in order and refused past max_pending; a cancel of the
    performer; refused while busy. Records each lane, its hold and its joins."""
    recorded: list[Recorded] = []
    for number, policy in enumerate(POLICIES):
        key = f"corpus-policy-{policy}"
        extra: dict[str, Any] = {"max_pending": 2} if policy == "queue" else {}
        hold = Car.stepped_action(f"hold_{policy}", outbound=True, lane=policy, **extra)
        hold.concurrency_key(lambda car, key=key: key)
        hold.step(lambda car, step: None)
        visit = Car.stepped_action(f"visit_{policy}", lane=policy, **extra)
        visit.concurrency_key(lambda car, place, key=key: key)
        visit.step(lambda car, step, place: car.change_location(place))
        cars = make_cars(env, Car, range(2000 + 10 * number, 2000 + 10 * number + 5))
        held = await stepped.start(cars[0], f"hold_{policy}")
        await until(held, performing, seconds=60)
        joins = []
        for n, car in enumerate(cars[1 : 5 if policy == "queue" else 4]):
            joins.append(await stepped.start(car, f"visit_{policy}", f"place {n}"))
            await settled(joins[-1])
        if policy != "cancel_in_progress":  # there, the first join cancels the hold
            await complete(cars[0], f"hold_{policy}")
        ended = [str(r.status) for r in await results([held, *joins])]
        lane = await every_run(env.client, lane_id(key))
        sent = Counter()
        for run in lane:
            sent += verdicts(run)
        cancels = sum(name == "cancel" for run in lane for name, _ in signals_sent(run))
        print(f"  {policy}: {ended}; verdicts {dict(sent)}, {cancels=}")
        expected = {
            "supersede": ["succeeded", "superseded", "superseded", "succeeded"],
            "queue": ["succeeded", "succeeded", "succeeded", "cancelled", "cancelled"],
            "skip_if_busy": ["succeeded", "cancelled", "cancelled", "cancelled"],
        }
        if policy == "cancel_in_progress":
            check(ended[0] == "cancelled", f"{policy}: the hold was {ended}")
            check(cancels >= 1, f"{policy}: the lane sent no cancel")
            check(ended[-1] == "succeeded", f"{policy}: the newest ended {ended}")
        else:
            check(ended == expected[policy], f"{policy}: {ended}")
        check(
            {
                "supersede": sent["superseded"] == 2,
                "queue": sent["refused"] == 2 and sent["perform"] >= 3,
                "cancel_in_progress": sent["perform"] >= 2,
                "skip_if_busy": sent["refused"] == 3,
            }[policy],
            f"{policy}: the lane's verdicts were {dict(sent)}",
        )
        recorded += lane
        recorded += [await fetch(env.client, h.id) for h in (held, *joins)]
    return recorded


#: the events that end a child workflow, as its parent's history records them
CHILD_ENDS = {
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED,
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_FAILED,
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_CANCELED,
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TERMINATED,
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TIMED_OUT,
    EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_FAILED,
}


@dataclass
class ChildTasks:
    """A parent's child starts, task by task, read from its events."""

    #: per workflow task that started children, how many it started
    batches: list[int]
    #: the most children open (start initiated, not ended) at once
    most_open: int
    #: tasks that saw every start confirmed and the window full, and started none
    held_by_window: int
    #: children started in a task that had seen a child end
    after_an_end: int
    initiated: int
    confirmed: int


def child_tasks(events: list[Any], window: int, count: int) -> ChildTasks:
    initiated = confirmed = ended = most = held = after = 0
    batches: list[int] = []
    seen: tuple[int, int, int] | None = None  # at the task's start: initiated, confirmed, ended
    issued = 0
    for e in events:
        kind = e.event_type
        if kind == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            seen = (initiated, confirmed, ended)
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            issued = 0
            if batches and batches[-1] == 0:
                batches.pop()
            batches.append(0)
            if seen and seen[0] - seen[2] == window and seen[1] == seen[0] < count:
                held += 1  # counted back below if this task started a child after all
        elif kind == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
            initiated += 1
            batches[-1] += 1
            issued += 1
            if issued == 1 and seen and seen[0] - seen[2] == window and seen[1] == seen[0]:
                held -= 1
            after += ended > 0
            most = max(most, initiated - ended)
        elif kind == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED:
            confirmed += 1
        elif kind in CHILD_ENDS:
            ended += 1
    return ChildTasks([n for n in batches if n], most, held, after, initiated, confirmed)


async def fan_out_wide(env: SteppedTestEnvironment, Car: type) -> list[Recorded]:
    """S3.7: one step asks for `CHILD_WINDOW + 50` children (outbound, on cars of
    their own). The parent starts them `START_BATCH` per workflow task (behind the
    `BATCHED_STARTS` patch) until `CHILD_WINDOW` are open, then one more each time
    one ends — both the batch size and the window decide which commands each
    task issues. Only once a task of the parent has seen every start confirmed
    with the window full (so it started nothing: a larger window would have) are
    the children completed: the first three one at a time (each lets exactly one
    more start), then the rest fifty at a time. Records the parent and a couple
    of children."""
    window, batch = limits()["child_window"], limits()["start_batch"]
    count = window + 50
    gate = Car.stepped_action("gate_wide", outbound=True)
    gate.step(lambda car, step: None)
    wide = Car.stepped_action("wide")

    @wide.step
    def _(car, step, first, count):
        session = Session.object_session(car)
        assert session is not None
        query = sa.select(type(car)).where(type(car).id.between(first, first + count - 1))
        step.on(list(session.scalars(query.order_by(type(car).id))), "gate_wide")

    first = 10_000
    cars = make_cars(env, Car, range(first, first + count))
    root = env.create(Car, id=first - 1)
    parent = await stepped.start(root, "wide", first, count)
    handle = env.client.get_workflow_handle(parent.id)

    async def tasks() -> ChildTasks:
        return child_tasks(list((await handle.fetch_history()).events), window, count)

    deadline = time.monotonic() + PATIENCE
    while (await tasks()).held_by_window < 1:
        check(time.monotonic() < deadline, f"the window never held the parent: {await tasks()}")
        await asyncio.sleep(1)
    check((await tasks()).initiated == window, "the parent started more than CHILD_WINDOW")
    for number, car in enumerate(cars[:3]):  # one ends, one more starts
        await complete(car, "gate_wide")
        while (await tasks()).initiated < window + number + 1:
            check(time.monotonic() < deadline, "no child started after one ended")
            await asyncio.sleep(0.2)
    for at in range(3, count, 50):
        await asyncio.gather(*(complete(car, "gate_wide") for car in cars[at : at + 50]))
    result = await parent.result()
    check(result.status == "succeeded", f"the wide parent ended {result.status}")
    run = await fetch(env.client, parent.id)
    seen = child_tasks(run.events, window, count)
    print(
        f"  wide: {seen.initiated} children, at most {seen.most_open} open, "
        f"{seen.held_by_window} tasks held by the window, {seen.after_an_end} started after "
        f"one ended; starts in {len(seen.batches)} tasks, at most {max(seen.batches)} in one"
    )
    check(seen.initiated == count, f"{seen.initiated} children, not {count}")
    check(seen.most_open == window, f"at most {seen.most_open} open, not CHILD_WINDOW ({window})")
    check(seen.held_by_window >= 1, "no task was held back by the window")
    check(seen.after_an_end >= count - window, "the window never slid")
    check(
        max(seen.batches) <= batch and len(seen.batches) >= -(-count // batch),
        f"starts per task: {seen.batches}",
    )
    check(child_starts.BATCHED_STARTS in patches(run), "no BATCHED_STARTS marker")
    children = [c for s in result.steps for c in s.actions]
    return [run, *[await fetch(env.client, c) for c in (children[0], children[-1])]]


PARENTS = 250


async def supersede_with_forwards(env: SteppedTestEnvironment, Car: type) -> list[Recorded]:
    """S4.2, S4.9: `PARENTS` roots (`relay`, one per car, each in a lane of its own)
    each `do` a `bump_shared` on one key held by an outbound `hold_shared`. Every
    bump that supersedes another inherits its parents' dependencies, so the lane
    forwards them (coalescing a forward still unsent, behind the
    COALESCED_FORWARDS patch), probes for deadlocks (each join has a waiting
    parent), and on the hold's completion concludes them all at once — more than
    lane_outbox.WINDOW signals under way. Records every lane run, the hold, and
    a sample of parents with their children."""
    hold = Car.stepped_action("hold_shared", outbound=True)
    hold.concurrency_key(lambda car: "corpus-shared")
    hold.step(lambda car, step: None)
    bump = Car.stepped_action("bump_shared")
    bump.concurrency_key(lambda car: "corpus-shared")
    bump.step(lambda car, step: car.honk())
    relay = Car.stepped_action("relay")
    relay.step(lambda car, step: step.do("bump_shared"))
    cars = make_cars(env, Car, range(20_000, 20_000 + PARENTS + 1))
    held = await stepped.start(cars[0], "hold_shared")
    await until(held, performing, seconds=60)
    relays: list[stepped.ActionHandle] = []
    for first in range(1, PARENTS + 1, 50):
        relays += await asyncio.gather(
            *(stepped.start(car, "relay") for car in cars[first : first + 50])
        )
    lane = env.client.get_workflow_handle(lane_id("corpus-shared"))
    deadline = time.monotonic() + PATIENCE
    state: Any = None
    while True:  # every bump has joined: one is pending, the others superseded
        try:
            state = await lane.query("state")
        except RPCError:
            state = None  # the lane has not started yet
        if state and len(state.get("recent", [])) + len(state.get("pending", [])) >= PARENTS:
            break
        check(time.monotonic() < deadline, f"the bumps never all joined: {state}")
        await asyncio.sleep(1)
    await complete(cars[0], "hold_shared")
    done = await results(relays)
    statuses = Counter(str(r.status) for r in done)
    check(set(statuses) == {"succeeded"}, f"relays ended {statuses}")
    runs = await every_run(env.client, lane_id("corpus-shared"))
    sent = [item for run in runs for item in signals_sent(run)]
    names = Counter(name for name, _ in sent)
    coalesced = sum(bool(p.get("via")) for name, p in sent if name == "forward")
    most_at_once = max(_most_in_flight(run) for run in runs)
    print(
        f"  shared: lane runs {[(len(r.events), r.continued) for r in runs]}; signals "
        f"{dict(names)}; {coalesced} coalesced forwards; at most {most_at_once} under way"
    )
    check(names["forward"] > 0, "the lane forwarded no dependency")
    check(coalesced > 0, "no forward was coalesced")
    check(names["probe"] > 0, "the lane sent no deadlock probe")
    # (the bump that performs concludes its own parent; the lane, every inherited one)
    check(names["conclude"] >= PARENTS - 1, "the lane did not conclude every parent")
    check(most_at_once >= limits()["window"], f"at most {most_at_once} signals under way")
    # a parent's step lists its own child first, then each successor forwarded to
    sample = [done[i] for i in (0, 1, PARENTS // 2, PARENTS - 2, PARENTS - 1)]
    ids = [held.id]
    for parent in sample:
        ids += [parent.id, parent.steps[0].actions[0]]
    ids.append(done[0].steps[0].actions[-1])  # the bump that performed for them all
    return [*runs, *[await fetch(env.client, i) for i in dict.fromkeys(ids)]]


def _most_in_flight(run: Recorded) -> int:
    """The most signals a run had under way (initiated, not yet answered) at once."""
    under_way = most = 0
    for e in run.events:
        if e.event_type == EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED:
            under_way += 1
            most = max(most, under_way)
        elif e.event_type in (
            EventType.EVENT_TYPE_EXTERNAL_WORKFLOW_EXECUTION_SIGNALED,
            EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED,
        ):
            under_way -= 1
    return most


async def deadlock_across_trees(env: SteppedTestEnvironment, Car: type) -> list[Recorded]:
    """S4.9: lead(K1) waits on a visit to K2 while lead(K2) waits on one to K1 (as in
    record.py). The lanes' probes travel the cycle, confirm it and break it:
    exactly one visit is deadlocked, so its lead fails and the other succeeds.
    Records both trees and both lanes."""
    gate = Car.stepped_action("gate_lead", outbound=True)
    gate.step(lambda car, step: None)
    lead = Car.stepped_action("lead")
    lead.concurrency_key(lambda car, own, other: own)
    lead.step(lambda car, step, own, other: step.do("gate_lead"))
    lead.step(lambda car, step, own, other: step.do("enter", other))
    enter = Car.stepped_action("enter")
    enter.concurrency_key(lambda car, key: key)
    enter.step(lambda car, step, key: car.honk())
    leaders = make_cars(env, Car, range(30_000, 30_002))
    keys = ("corpus-K1", "corpus-K2")
    roots = [
        await stepped.start(leaders[0], "lead", *keys),
        await stepped.start(leaders[1], "lead", *reversed(keys)),
    ]
    for root in roots:
        state = await until(root, lambda s: s.steps and s.steps[0].actions, seconds=60)
        await until(stepped.action_handle(state.steps[0].actions[0]), performing, seconds=60)
    for leader in leaders:
        await complete(leader, "gate_lead")
    done = await results(roots)
    statuses = sorted(str(r.status) for r in done)
    lanes_ = [run for key in keys for run in await every_run(env.client, lane_id(key))]
    probes = sum(name == "probe" for run in lanes_ for name, _ in signals_sent(run))
    probed = sum(name == "probe" for run in lanes_ for name, _ in signals_received(run))
    deadlocked = sum(verdicts(run)["deadlocked"] for run in lanes_)
    print(f"  deadlock: roots {statuses}; probes sent {probes}, received {probed}; {deadlocked=}")
    check(statuses == ["failed", "succeeded"], f"the leads ended {statuses}")
    check(probes and probed, "no probe went between the lanes")
    check(deadlocked == 1, f"{deadlocked} actions deadlocked, not one")
    ids = [r.id for r in done] + [c for r in done for s in r.steps for c in s.actions]
    runs = [await fetch(env.client, i) for i in ids]
    if BOUNDED_PROBES:  # a probe passed a performing lead: its marker is recorded
        marked = [run for run in runs if "stepped-bounded-probes" in patches(run)]
        check(marked, "no lead recorded the BOUNDED_PROBES marker")
    return [*runs, *lanes_]


async def outbound_completion(env: SteppedTestEnvironment, Car: type) -> list[Recorded]:
    """S6.1-S6.3: an outbound action performs until `stepped.complete` finds it and
    sends its `complete` update; a second is completed as failed. Records both."""
    deliver = Car.stepped_action("deliver", outbound=True)
    deliver.step(lambda car, step: car.honk())
    cars = make_cars(env, Car, range(40_000, 40_002))
    recorded = []
    for car, status in zip(cars, ("succeeded", "failed"), strict=True):
        handle = await stepped.start(car, "deliver")
        await until(handle, performing, seconds=60)
        await complete(car, "deliver", status)
        result = await handle.result()
        check(result.status == status, f"completed as {status}, ended {result.status}")
        run = await fetch(env.client, handle.id)
        updates = run.of(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED)
        check(updates, f"{handle.id}: no update in its history")
        recorded.append(run)
    print("  outbound: completed as succeeded and as failed")
    return recorded


async def timeout(env: SteppedTestEnvironment, Car: type) -> list[Recorded]:
    """S7: an action with `timeout=3 s` whose step waits a minute: the timeout's
    timer fires while the step's timer is still pending, the action ends
    timed_out (the wait is abandoned with the run). Records it."""
    late = Car.stepped_action("late", timeout=timedelta(seconds=3))
    late.step(lambda car, step: step.wait(timedelta(minutes=1)))
    late.step(lambda car, step: car.honk())
    car = env.create(Car, id=50_000)
    handle = await stepped.start(car, "late")
    result = await handle.result()
    check(result.status == "timed_out", f"the late action ended {result.status}")
    run = await fetch(env.client, handle.id)
    timers = len(run.of(EventType.EVENT_TYPE_TIMER_STARTED))
    fired = len(run.of(EventType.EVENT_TYPE_TIMER_FIRED))
    print(f"  timeout: {result.status}; {timers} timers started, {fired} fired")
    check(timers >= 2 and 1 <= fired < timers, f"not a timeout during a wait: {run.types()}")
    return [run]


#: the job's attempts, kept outside its rolled-back transactions
ATTEMPTS: list[int] = []


async def job_with_retries(env: SteppedTestEnvironment, Car: type) -> list[Recorded]:
    """S6.4, S8.2: a `job=` that raises twice, then returns, under a `retry=` policy
    of short intervals: Temporal retries the job's activity, the third attempt
    succeeds. Records it (its job activity started on attempt 3)."""

    def tow(action: Any) -> None:
        ATTEMPTS.append(1)
        if len(ATTEMPTS) < 3:
            raise RuntimeError(f"no tow truck (attempt {len(ATTEMPTS)})")
        action.actor.location = "garage"

    retry = stepped.RetryPolicy(initial_interval=timedelta(milliseconds=100), maximum_attempts=5)
    Car.stepped_action("tow", job=tow, retry=retry)
    car = env.create(Car, id=60_000)
    handle = await stepped.start(car, "tow")
    result = await handle.result()
    check(result.status == "succeeded", f"the job ended {result.status}")
    run = await fetch(env.client, handle.id)
    attempts = [
        e.activity_task_started_event_attributes.attempt
        for e in run.of(EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED)
    ]
    print(f"  job: {result.status}; activity attempts {attempts}; job ran {len(ATTEMPTS)} times")
    check(3 in attempts and len(ATTEMPTS) == 3, "the job did not succeed on its third attempt")
    return [run]


#: from 12-07 (issue 27): lanes answer checks, and remember early releases
CHECKS = "lane_check" in inspect.signature(stepped.configure).parameters
#: the checkout sends probes to started children only, a window at a time
BOUNDED_PROBES = (CHECKOUT / "stepped_temporal" / "action_probes.py").read_text().count(
    "stepped-bounded-probes"
) > 0


async def lane_gone(env: SteppedTestEnvironment, Car: type) -> list[Recorded]:
    """Issue 27 (from 12-07): a lane terminated while C1's parent waits on C2 (which
    superseded C1) and C2 waits in it; a newcomer starts a new lane run, which
    adopts the performing claim holder. C2's check (a `ping`) is answered "lost"
    and it ends cancelled (LaneGone); P1's check on its forwarded dependency is
    answered with an unsuccessful conclusion. Records both lane runs, the
    parents, the children, the holder and the newcomer."""
    stepped.configure(lane_check=timedelta(seconds=1))
    hold = Car.stepped_action("gone_hold", outbound=True)
    hold.concurrency_key(lambda car: "corpus-gone")
    hold.step(lambda car, step: None)
    wash = Car.stepped_action("gone_wash")
    wash.concurrency_key(lambda car: "corpus-gone")
    wash.step(lambda car, step: car.honk())
    Car.stepped_action("gone_fleet").step(lambda car, step, cars: step.on(cars, "gone_wash"))
    boss, first, second, third = make_cars(env, Car, range(70_000, 70_004))
    holder = await stepped.start(boss, "gone_hold")
    await until(holder, performing, seconds=60)
    parents, children = [], []
    for car in (first, second):
        parents.append(await stepped.start(car, "gone_fleet", [car]))
        state = await until(parents[-1], lambda s: s.steps and s.steps[0].actions, seconds=60)
        children.append(stepped.action_handle(state.steps[0].actions[0]))
        await settled(children[-1])
    check((await children[0].result()).status == "superseded", "C1 was not superseded")
    first_run = (await env.client.get_workflow_handle(lane_id("corpus-gone")).describe()).run_id
    await env.client.get_workflow_handle(lane_id("corpus-gone")).terminate("corpus: lane gone")
    newcomer = await stepped.start(third, "gone_hold")
    gone = await children[1].result()
    check(gone.error is not None and gone.error.type == "LaneGone", f"C2 ended {gone}")
    for parent in parents:
        check((await parent.result()).status == "failed", "a parent did not fail")
    await complete(boss, "gone_hold")
    await complete(third, "gone_hold")
    await newcomer.result()
    runs = [await fetch(env.client, lane_id("corpus-gone"), first_run)]
    runs.append(await fetch(env.client, lane_id("corpus-gone")))
    actions = [holder, newcomer, *parents, *children]
    runs += [await fetch(env.client, handle.id) for handle in actions]
    check("stepped-lane-watch" in patches(runs[1]), "the new lane run answered nothing")
    check("stepped-forwards-checked" in patches(runs[4]), "P1 never checked its lane")
    check(("ping" in {name for name, _ in signals_sent(runs[7])}), "C2 never checked")
    print(f"  lane gone: C2 {gone.status} ({gone.error.type}); parents failed")
    return runs


async def early_release(env: SteppedTestEnvironment, Car: type) -> list[Recorded]:
    """Issue 27 item 6 (from 12-07): a claim holder's release reaches a lane before
    the join that names it as holder (joins are sent after their transaction
    commits): the lane remembers the release and does not adopt it. Driven by
    signals to a lane run, the way the race delivers them."""
    from stepped_temporal.lane_messages import LaneHolder, LaneJoin, LaneRelease, LaneState
    from stepped_temporal.shapes import CURRENT_LANE_SHAPE
    from stepped_temporal.wire import encode

    key = "corpus-early"
    handle = await env.client.start_workflow(
        lanes.LANE_WORKFLOW,
        encode(LaneState(key=key, idle_seconds=0.5, shape=CURRENT_LANE_SHAPE, revision=1)),
        id=lane_id(key),
        task_queue=stepped.config.settings().task_queue,
        start_signal="release",
        start_signal_args=[encode(LaneRelease(f"{key}/holder", "succeeded", True))],
    )
    await handle.signal(
        "join", encode(LaneJoin(f"{key}/joiner", holder=LaneHolder(f"{key}/holder")))
    )
    await handle.result()
    run = await fetch(env.client, lane_id(key))
    sent = [p for name, p in signals_sent(run) if name == "verdict"]
    check("stepped-early-releases" in patches(run), "no EARLY_RELEASES marker")
    check(len(sent) == 1, f"the lane sent {sent}: it adopted the released holder")
    return [run]


#: from issue 28 on an action stops short of its declared history limit (S11.4)
STOPS = "server_limits" in inspect.signature(stepped.configure).parameters and hasattr(
    stepped.ServerLimits, "history_events"
)


@contextlib.contextmanager
def declared(**limits: int) -> Iterator[None]:
    """Stepped told the cluster has these limits (S11.5), for a scenario's length."""
    from stepped_temporal import config

    saved = config.settings().server_limits
    stepped.configure(server_limits=stepped.ServerLimits(**limits))
    try:
        yield
    finally:
        stepped.configure(server_limits=saved)


async def wide_runs(env: SteppedTestEnvironment, boss: Any, name: str, cars: list[Any]) -> Any:
    """Run `name` on `boss` with `cars`; its result and every run of it, once all closed."""
    handle = await stepped.start(boss, name, cars)
    result = await handle.result()
    check(result.status == "succeeded", f"{handle.id} ended {result.status}")
    return result, await every_run(env.client, handle.id)


async def history_stop(env: SteppedTestEnvironment, Car: type) -> list[Recorded]:
    """S11.4: on a cluster declared with 500 history events and 100 pending operations,
    a step of 150 children stops its action while children are still open, and a
    step of 200 waits stops it while waits are pending (not many steps: from
    REVISION 5 an action continues as new between them; not the children from
    REVISION 6, which continue inside the step); both end failed with
    `HistoryLimitReached`. Records both."""
    with declared(history_events=500, pending_operations=100):
        Car.stepped_action("stop_wide").step(lambda car, step, cars: step.on(cars, "honk"))
        long = Car.stepped_action("stop_long")  # (many waits in one step: see below)
        long.step(lambda car, step: [step.wait(1 + n / 100) for n in range(200)])
        long.step(lambda car, step: car.honk())
        boss, *cars = make_cars(env, Car, range(90_000, 90_151))
        recorded = []
        # (from revision 6 a wide step continues as new inside it instead:
        # `action_continues_inside_a_step` records that)
        wide = [] if STEPS_CONTINUE else [await stepped.start(boss, "stop_wide", cars)]
        for handle in [*wide, await stepped.start(boss, "stop_long")]:
            result = await handle.result()
            check(
                result.status == "failed" and result.error.type == "HistoryLimitReached",
                f"{handle.id} ended {result.status} ({result.error})",
            )
            run = await fetch(env.client, handle.id)
            check(len(run.events) < 500, f"{handle.id}: {len(run.events)} events")
            recorded.append(run)
        print(f"  history stop: {[len(run.events) for run in recorded]} events")
        return recorded


#: from issue 28 on an action continues as new between steps (S11.1)
try:
    from stepped_temporal.shapes import ActionShape

    CONTINUES = hasattr(ActionShape(), "continue_events")
except ImportError:  # (before shapes)
    CONTINUES = False


async def action_continues_as_new(env: SteppedTestEnvironment, Car: type) -> list[Recorded]:
    """S11.1: on a cluster declared with 500 history events (an action continues as new
    past 50), an action of 40 steps on a key, some waiting, continues as new between
    steps and succeeds; a parent's step waits on a child that does the same. Records
    every run of both actions and the parent."""
    with declared(history_events=500, pending_operations=100):
        tour = Car.stepped_action("tour_long")
        tour.concurrency_key(lambda car: "tour-road")
        for number in range(40):
            tour.step(lambda car, step, n=number: (car.honk(), n % 5 or step.wait(0.2)))
        trip = Car.stepped_action("trip_long")
        trip.step(lambda car, step: step.do("tour_long"))
        (car,) = make_cars(env, Car, range(91_000, 91_001))
        recorded = []
        for name in ("tour_long", "trip_long"):
            handle = await stepped.start(car, name)
            result = await handle.result()
            check(result.status == "succeeded", f"{handle.id} ended {result.status}")
            long_id = result.steps[0].actions[0] if name == "trip_long" else handle.id
            runs = await every_run(env.client, long_id)
            check(len(runs) >= 3, f"{long_id}: {len(runs)} runs")
            recorded += runs
            if name == "trip_long":  # the parent, one run
                recorded.append(await fetch(env.client, handle.id))
        print(f"  action continues as new: {len(recorded)} runs")
        return recorded


#: from issue 28 on an action continues as new inside a wide step too (S11.1)
try:
    from stepped_temporal.shapes import ActionShape

    STEPS_CONTINUE = hasattr(ActionShape(), "step_events")
except ImportError:  # (before shapes)
    STEPS_CONTINUE = False


async def action_continues_inside_a_step(env: SteppedTestEnvironment, Car: type) -> list[Recorded]:
    """S11.1 inside a step: on a cluster declared with 500 history events and 20
    pending operations (ten children open at once; a run continues as new past 50
    events when the rest of its step would take it past 100), a step of 100
    children and a wait of two seconds continues as new part way, several times,
    the wait handed over open, and succeeds. Records every run."""
    with declared(history_events=500, pending_operations=20):
        wide = Car.stepped_action("wide_step")
        wide.step(lambda car, step, cars: (step.wait(2), step.on(cars, "honk")))
        wide.step(lambda car, step, cars: car.honk())
        boss, *cars = make_cars(env, Car, range(92_000, 92_101))
        result, runs = await wide_runs(env, boss, "wide_step", cars)
        check(result.steps[0].actions_count == 100, f"{result.steps[0]}")
        inside = [
            run
            for run in runs
            if b'"step"'
            in run.events[0].workflow_execution_started_event_attributes.input.SerializeToString()
        ]
        check(len(runs) >= 3 and len(inside) >= 2, f"{len(runs)} runs, {len(inside)} inside")
        print(f"  action continues inside a step: {len(runs)} runs")
        return runs


#: from issue 28 on a wide step's children come in pages (S11.1, S11.3)
try:
    from stepped_temporal import step_pages  # noqa: F401

    PAGES = True
except ImportError:  # (before pages)
    PAGES = False


async def wide_step_in_pages(env: SteppedTestEnvironment, Car: type) -> list[Recorded]:
    """S11.1 with pages: on a cluster declared with 500 history events, 20 pending
    operations and 32 KiB payloads, the second step of an action asks for 100
    children, which come in pages of about 25 (each next one read by a local
    activity) while the action continues as new inside the step. Records every run."""
    with declared(history_events=500, pending_operations=20, payload_bytes=32 * 1024):
        paged = Car.stepped_action("paged_step")
        paged.step(lambda car, step, cars: car.honk())
        paged.step(lambda car, step, cars: step.on(cars, "honk"))
        boss, *cars = make_cars(env, Car, range(93_000, 93_101))
        result, runs = await wide_runs(env, boss, "paged_step", cars)
        check(result.steps[1].actions_count == 100, f"{result.steps[1]}")
        reads = sum(
            1
            for run in runs
            for event in run.events
            if b"stepped_step_page" in event.SerializeToString()
        )
        check(len(runs) >= 3 and reads >= 2, f"{len(runs)} runs, {reads} page reads")
        print(f"  wide step in pages: {len(runs)} runs, {reads} page reads")
        return runs


SCENARIOS: dict[str, Callable[[SteppedTestEnvironment, type], Awaitable[list[Recorded]]]] = {
    f.__name__: f
    for f in (
        lane_continues_as_new,
        lane_policies,
        fan_out_wide,
        supersede_with_forwards,
        deadlock_across_trees,
        outbound_completion,
        timeout,
        job_with_retries,
        *((lane_gone, early_release) if CHECKS else ()),
        *((history_stop,) if STOPS else ()),
        *((action_continues_as_new,) if CONTINUES else ()),
        *((action_continues_inside_a_step,) if STEPS_CONTINUE else ()),
        *((wide_step_in_pages,) if PAGES else ()),
    )
}


# -- writing ---------------------------------------------------------------------


async def replays_here(recorded: list[tuple[str, Recorded]]) -> None:
    """Every recording replays on the checkout it was made with (no sandbox)."""
    replayer = Replayer(
        workflows=[ActionWorkflow, LaneWorkflow], workflow_runner=workflow_runner(False)
    )
    for name, run in recorded:
        replayed = await replayer.replay_workflow(run.history, raise_on_replay_failure=False)
        check(replayed.replay_failure is None, f"{name}: {replayed.replay_failure}")


def commit() -> str:
    def git(*args: str) -> str:
        return subprocess.check_output(["git", "-C", str(CHECKOUT), *args], text=True).strip()

    return git("rev-parse", "--short=7", "HEAD")


async def main(names: list[str]) -> None:
    unknown = set(names) - set(SCENARIOS)
    if unknown:
        raise SystemExit(f"no such scenario: {sorted(unknown)}; there are {list(SCENARIOS)}")
    chosen = names or list(SCENARIOS)
    recorded: list[tuple[str, Recorded]] = []
    begun = time.monotonic()
    async with SteppedTestEnvironment.start(server=SERVER, max_cached_workflows=5000) as env:
        Car = car_class()
        for name in chosen:
            print(f"{name} ({time.monotonic() - begun:.0f} s)", flush=True)
            runs = await SCENARIOS[name](env, Car)
            check(runs, f"{name} recorded nothing")
            recorded += [(f"{name}-{n:02d}.json.gz", run) for n, run in enumerate(runs)]
    await replays_here(recorded)
    OUT.mkdir(parents=True, exist_ok=True)
    for old in [*OUT.glob("*.json.gz"), OUT / "MANIFEST.json"]:
        old.unlink(missing_ok=True)
    files = []
    for file, run in recorded:
        (OUT / file).write_bytes(gzip.compress(run.history.to_json().encode(), mtime=0))
        files.append(
            {
                "file": file,
                "scenario": file.rsplit("-", 1)[0],
                "workflow_id": run.workflow_id,
                "run_id": run.run_id,
                "events": len(run.events),
                "continued_as_new": run.continued,
            }
        )
    manifest = {
        "commit": commit(),
        "server": SERVER,
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "recorder": "tests/histories/record_corpus.py",
        "temporalio": temporalio.__version__,
        "limits": limits(),
        "scenarios": chosen,
        "files": files,
    }
    (OUT / "MANIFEST.json").write_text(json.dumps(manifest, indent=1) + "\n")
    size = sum(f.stat().st_size for f in OUT.glob("*.json.gz"))
    took = time.monotonic() - begun
    print(f"wrote {len(files)} histories ({size / 1e6:.1f} MB) to {OUT} in {took:.0f} s")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[3:]))
