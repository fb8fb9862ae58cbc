"""S10.3 with Temporal's own `WorkflowEnvironment` (not SteppedTestEnvironment), as
Temporal's docs teach users to test: `start_time_skipping()` or `start_local()`,
then `stepped.configure(client=env.client, ...)` and `stepped.create_worker()`.
The server is the one `--stepped-server` chose; CI runs this file on both.

Proves, there: S10.2/S10.3 (waiting on a result skips time — long waits, lanes with
custom keys, checksum sharing, handles looked up by id, many concurrent waiters),
S9.2 (describe() complete from the first query, and never going back), S4.8 (one
step's children join in call order), S6.1-S6.3 (complete() with every status ends
promptly, also while a step runs or right as it ends), S6.4 (a job is a step) and
S4.9 (two trees waiting on each other's lanes: one join is deadlocked).
"""

from __future__ import annotations

import asyncio
import itertools
import random
import threading
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest
import pytest_asyncio
from sqlalchemy.orm import Session
from temporalio.testing import WorkflowEnvironment

import stepped_temporal as stepped
from stepped_temporal import binaries, config, registry, time_skipping
from stepped_temporal.testing import SteppedTestEnvironment, _settings_kwargs
from tests.support import car_class
from tests.test_cross_tree_deadlocks import at_gate, calls_of, finished, fleet_class, open_gate

STATUSES = ("succeeded", "failed", "cancelled", "timed_out")
FINAL = {"succeeded", "failed", "cancelled", "timed_out", "superseded", "deadlocked"}


@asynccontextmanager
async def user_environment(tmp_path, **settings) -> AsyncIterator[WorkflowEnvironment]:
    """Temporal's own environment on the server `--stepped-server` chose, and stepped
    configured on it the way a user would (no worker); everything restored after."""
    if SteppedTestEnvironment.default_server == "dev":
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=binaries.dev_server_path(), dev_server_log_level="error"
        )
    else:
        env = await WorkflowEnvironment.start_time_skipping(
            test_server_existing_path=binaries.test_server_path()
        )
    saved, registered = config.settings(), dict(registry._registry)
    config.reset()
    stepped.configure(
        client=env.client,
        database_url=f"sqlite:///{tmp_path / 'app.db'}",
        task_queue=f"user-{uuid.uuid4().hex[:8]}",
        **settings,
    )
    try:
        yield env
    finally:
        config.settings().engine.dispose()  # type: ignore[union-attr]
        config.reset()
        config.configure(**_settings_kwargs(saved))
        registry._registry.clear()
        registry._registry.update(registered)
        await env.shutdown()


@pytest_asyncio.fixture
async def temporal(tmp_path) -> AsyncIterator[WorkflowEnvironment]:
    """Temporal's own environment, configured the way a user would, with a worker."""
    async with user_environment(tmp_path) as env, stepped.create_worker():
        yield env


def create(cls, **attributes):
    engine = config.get_engine()
    cls.metadata.create_all(engine)
    with Session(engine, expire_on_commit=False) as session, session.begin():
        instance = cls(**attributes)
        session.add(instance)
    return instance


def reload(actor):
    with Session(config.get_engine()) as session:
        return session.get(type(actor), actor.id)


async def settle(handle, predicate, seconds: float = 20.0):
    """Poll describe() (no time skipping meanwhile) until `predicate(state)`."""
    deadline = time.monotonic() + seconds
    while True:
        state = await handle.describe()
        if predicate(state):
            return state
        assert time.monotonic() < deadline, f"{handle.id} never got there: {state}"
        await asyncio.sleep(0.01)


def span(result) -> timedelta:
    return result.completed_at - result.started_at


# -- 1. time skips for any waiter --------------------------------------------------


async def test_only_a_time_skipping_client_has_a_gate(temporal):
    """S10.3: on the dev server nothing changes (no gate); the test server's client has one."""
    assert time_skipping.skips_time(temporal.client) is temporal.supports_time_skipping
    assert (time_skipping.gate(temporal.client) is None) is not temporal.supports_time_skipping


@pytest.mark.time_skipping
async def test_hours_and_days_of_waiting_take_no_time(temporal):
    """S10.2, S10.3: a 5-hour and a 3-day step.wait end at once for result(), run()
    and *_now, on Temporal's own time-skipping environment."""
    Car = car_class()
    for name, wait in (("nap", timedelta(hours=5)), ("holiday", timedelta(days=3))):
        definition = Car.stepped_action(name)
        definition.step(lambda car, step, wait=wait: step.wait(wait))
        definition.step(lambda car, step: car.honk())
    car = create(Car, id=1)

    started = time.monotonic()
    handle = await stepped.start(car, "nap")
    nap = await asyncio.wait_for(handle.result(), 60)
    holiday = await asyncio.wait_for(stepped.run(car, "holiday"), 60)
    again = await asyncio.wait_for(car.nap_now(), 60)

    assert [r.status for r in (nap, holiday, again)] == ["succeeded"] * 3
    assert span(nap) >= timedelta(hours=5) and span(again) >= timedelta(hours=5)
    assert span(holiday) >= timedelta(days=3)
    assert reload(car).honks == 3
    assert time.monotonic() - started < 60


@pytest.mark.time_skipping
async def test_waits_in_a_custom_lane_and_shared_by_checksum_skip_time(temporal):
    """S10.3 with S4.1 and S4.3: a waiting action in a lane with a custom key, one
    queued behind it, and an identical action shared by checksum all finish."""
    Car = car_class()
    service = Car.stepped_action("service")
    service.concurrency_key(lambda car, hours: "garage")
    service.step(lambda car, step, hours: step.wait(timedelta(hours=hours)))
    service.step(lambda car, step, hours: car.honk())
    wash = Car.stepped_action("wash")
    wash.checksum(lambda car: "weekly")
    wash.step(lambda car, step: step.wait(timedelta(days=3)))
    wash.step(lambda car, step: car.drive(1))
    one, two = create(Car, id=1), create(Car, id=2)

    first = await stepped.start(one, "service", 5)
    # two starts race to the key (S9.1: start() returns before prepare claims it),
    # so let the first hold it before the second joins the lane behind it
    await settle(first, lambda s: s.status == "performing")
    second = await stepped.start(two, "service", 7)
    washing = await stepped.start(one, "wash")
    await settle(washing, lambda s: s.status == "performing")
    shared = await stepped.start(one, "wash")

    results = [await asyncio.wait_for(h.result(), 60) for h in (first, second, washing, shared)]

    assert [r.status for r in results] == ["succeeded"] * 4
    assert results[1].started_at >= results[0].completed_at  # one at a time in "garage"
    assert span(results[1]) >= timedelta(hours=7)
    assert results[3].resolved_by == washing.id  # shared, not run again
    assert (reload(one).honks, reload(two).honks, reload(one).mileage) == (1, 1, 1)


@pytest.mark.time_skipping
async def test_many_concurrent_waiters_and_handles_by_id_skip_time(temporal):
    """S10.3: twenty waiters at once, on handles looked up by id — the server's
    lock count stays balanced (Temporal's own handles unlock once each)."""
    Car = car_class()
    park = Car.stepped_action("park")
    park.step(lambda car, step, days: step.wait(timedelta(days=days)))
    park.step(lambda car, step, days: car.drive(days))
    cars = [create(Car, id=n) for n in range(1, 21)]
    handles = [await stepped.start(car, "park", n % 4 + 1) for n, car in enumerate(cars)]

    looked_up = [stepped.action_handle(h.id) for h in handles]
    results = await asyncio.wait_for(asyncio.gather(*(h.result() for h in looked_up)), 90)
    runs = await asyncio.wait_for(
        asyncio.gather(*(stepped.run(car, "park", 1) for car in cars[:5])), 90
    )

    assert {r.status for r in [*results, *runs]} == {"succeeded"}
    assert all(span(r) >= timedelta(days=1) for r in results)
    assert [reload(car).mileage for car in cars[:3]] == [1 + 1, 2 + 1, 3 + 1]
    # the clock is locked again once nobody waits: a day-long wait now stays put
    handle = await stepped.start(cars[0], "park", 1)
    await asyncio.sleep(1)
    assert (await handle.describe()).status == "performing"
    assert (await asyncio.wait_for(handle.result(), 60)).status == "succeeded"


# -- 2. describe() is complete from the first query ---------------------------------


async def test_describe_is_complete_while_the_first_step_runs(temporal):
    """S9.2: an outbound action with a timeout, and one whose first step runs inside
    prepare, describe their keys, outbound, timeout, root and started_at from the
    first performing state on, and never go back to pending."""
    Car = car_class()
    gate = threading.Event()
    paint = Car.stepped_action("paint", outbound=True, timeout=timedelta(seconds=30))
    paint.concurrency_key(lambda car: "Car/maintenance")
    paint.step(lambda car, step: gate.wait(30))
    polish = Car.stepped_action("polish")  # claimed, one step: it runs inside prepare
    polish.checksum(lambda car: "shiny")
    polish.step(lambda car, step: gate.wait(30))
    car = create(Car, id=1)

    for name, expected in (
        ("paint", dict(outbound=True, timeout=30.0, concurrency_key="Car/maintenance")),
        ("polish", dict(outbound=False, timeout=None, checksum=stepped.checksum("shiny"))),
    ):
        gate.clear()
        handle = await stepped.start(car, name)
        seen = [await handle.describe()]
        while seen[-1].status != "performing":
            seen.append(await handle.describe())
        for _ in range(10):  # the step still runs: every look says the same
            state = await handle.describe()
            assert state.status == "performing" and state.current_step_index == 0
            for field, value in expected.items():
                assert getattr(state, field) == value, (name, field, state)
            assert state.concurrency_key and state.checksum_key == f"Car/1/{name}"
            assert state.root is True and state.started_at is not None
            assert state.steps[0].status == "performing"
            seen.append(state)
        gate.set()
        if name == "paint":
            await settle(handle, lambda s: s.steps and s.steps[0].status == "succeeded")
            assert await stepped.complete(car, "paint") is True
        while not (state := await handle.describe()).final:
            seen.append(state)
        seen.append(state)
        statuses = [s.status for s in seen]
        first_performing = statuses.index("performing")
        assert set(statuses[:first_performing]) <= {"pending"}
        assert "pending" not in statuses[first_performing:], statuses  # never back
        assert statuses[-1] == "succeeded"


# -- 3. call order is lane order ----------------------------------------------------


@pytest.mark.parametrize("call", ["do", "on"])
async def test_a_steps_children_join_their_lane_in_call_order(temporal, call):
    """S4.8, S4.2: A, B, C asked for in that order on one busy key: C performs, A
    and B are superseded by their successors — every time."""
    Car = car_class()
    block = Car.stepped_action("block", outbound=True)
    block.concurrency_key(lambda car: "garage")
    block.step(lambda car, step: None)
    visit = Car.stepped_action("visit")
    visit.concurrency_key(lambda car, label: "garage")
    visit.step(lambda car, step, label: car.change_location(label))
    tour = Car.stepped_action("tour")
    if call == "do":
        tour.step(lambda car, step: [step.do("visit", label) for label in "ABC"])
    else:
        tour.step(lambda car, step, others: step.on([car, *others], "visit", "X"))
    cars = [create(Car, id=n) for n in (1, 2, 3)]
    car = cars[0]

    for _ in range(3):
        blocker = await stepped.start(car, "block")
        await settle(blocker, lambda s: s.status == "performing")
        tour_handle = await stepped.start(car, "tour", *([] if call == "do" else [cars[1:]]))
        state = await settle(tour_handle, lambda s: s.steps and len(s.steps[0].actions) == 3)
        children = [stepped.action_handle(a) for a in state.steps[0].actions]
        # the last call joins last: once it is pending, the others are superseded
        await settle(children[2], lambda s: s.status == "pending" and s.concurrency_key)
        assert await stepped.complete(car, "block") is True

        result = await asyncio.wait_for(tour_handle.result(), 60)
        ends = [await c.result() for c in children]
        assert result.status == "succeeded"
        assert [e.status for e in ends] == ["superseded", "superseded", "succeeded"]
        assert ends[0].resolved_by == children[1].id and ends[1].resolved_by == children[2].id
        if call == "do":
            assert reload(car).location == "C"
        else:
            assert [reload(c).location for c in cars] == [None, None, "X"]


# -- 4. every completion ends -------------------------------------------------------


async def test_complete_with_each_status_while_a_step_runs_or_just_ends(temporal):
    """S6.1-S6.3: complete() returns True promptly for each status and the action
    ends with it, callbacks run — whether its step is mid-flight, ends at that very
    moment, or is done."""
    Car = car_class()
    drive = Car.stepped_action("drive", outbound=True)
    drive.step(lambda car, step, seconds: time.sleep(seconds))
    for status in STATUSES:
        drive.after(status)(lambda car, action, seconds, s=status: car.change_location(s))
    car = create(Car, id=1)
    rng = random.Random(14)

    for round_number in range(12):
        status = STATUSES[round_number % 4]
        handle = await stepped.start(car, "drive", 0.3)
        await settle(handle, lambda s: s.status == "performing")
        await asyncio.sleep(rng.uniform(0.0, 0.5))  # mid-step, at its end, or after

        began = time.monotonic()
        assert await asyncio.wait_for(stepped.complete(car, "drive", status), 30) is True
        result = await asyncio.wait_for(handle.result(), 30)

        assert result.status == status, round_number
        assert result.after_callbacks_succeeded_count == 1
        assert reload(car).location == status
        assert time.monotonic() - began < 15
        assert await stepped.complete(car, "drive", status) is False  # at most once


# -- 5. jobs show their steps --------------------------------------------------------


async def test_a_job_is_a_step_after_the_prepended_ones(temporal):
    """S6.4, S2.4: two prepended steps and the job are three steps, in order; a
    failing job fails its own step."""
    Car = car_class()

    def tow(action):
        if action.arguments[0] == "nowhere":
            raise stepped.SteppedError("no road to nowhere")
        action.actor.location = action.arguments[0]

    Car.stepped_action("tow", job=tow, retry=stepped.RetryPolicy(maximum_attempts=1))
    Car.prepend_stepped_action_step("tow")(lambda car, step, to: car.drive(2))
    Car.prepend_stepped_action_step("tow")(lambda car, step, to: car.honk())
    car = create(Car, id=1)

    towed = await asyncio.wait_for(stepped.run(car, "tow", "garage"), 60)
    lost = await asyncio.wait_for(stepped.run(car, "tow", "nowhere"), 60)

    assert towed.status == "succeeded" and len(towed.steps) == 2 + 1
    assert [(s.index, s.status) for s in towed.steps] == [
        (0, "succeeded"),
        (1, "succeeded"),
        (2, "succeeded"),
    ]
    assert all(a.completed_at <= b.started_at for a, b in itertools.pairwise(towed.steps))
    assert lost.status == "failed" and [s.status for s in lost.steps] == [
        "succeeded",
        "succeeded",
        "failed",
    ]
    assert lost.current_step_index == 2 and "nowhere" in lost.error.message
    reloaded = reload(car)
    assert (reloaded.location, reloaded.honks, reloaded.mileage) == ("garage", 2, 4)


# -- S4.9 ----------------------------------------------------------------------------
async def test_two_trees_waiting_on_each_others_lanes_lose_one_join(temporal):
    """S4.9 on the user's own environment: R1 performs in K1 and waits on a visit
    to K2, R2 the other way round; one visit is deadlocked, the other tree goes on."""
    Car = fleet_class()
    cars = {n: create(Car, id=n) for n in (1, 2)}
    roots = {
        1: await stepped.start(cars[1], "lead", "K1", [["visit", "K2"]]),
        2: await stepped.start(cars[2], "lead", "K2", [["visit", "K1"]]),
    }
    for root in roots.values():
        await at_gate(root)
    await asyncio.gather(*(open_gate(car) for car in cars.values()))
    results = await finished(roots)
    visits = [(await calls_of(results[n]))[0] for n in (1, 2)]
    assert sorted(str(v.status) for v in visits) == ["deadlocked", "succeeded"]
    (victim,) = [v for v in visits if v.status == "deadlocked"]
    assert victim.error.type == "Deadlock" and "'K1'" in victim.error.message
    assert sorted(str(r.status) for r in results.values()) == ["failed", "succeeded"]
