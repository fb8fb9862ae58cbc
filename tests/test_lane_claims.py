"""Claims (store/claims.py): an uncontended key needs no lane workflow; the first
contender starts the lane, which adopts the claim holder — S4 holds throughout,
on SQLite and PostgreSQL. And an achieved start needs no activity (S3.4)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from temporalio.api.enums.v1 import EventType

import stepped_temporal as stepped
from stepped_temporal.achievements import Achievement
from stepped_temporal.lane_messages import LaneState
from stepped_temporal.store import LaneClaim
from tests.support import (
    activities_run,
    car_class,
    first_child,
    grant,
    joined,
    performing,
    record_lookups,
    until,
)


def _claim(env, key: str) -> tuple[str | None, bool] | None:
    with env.session() as session:
        row = session.get(LaneClaim, key)
        return None if row is None else (row.holder, row.contended)


async def _events(env, workflow_id: str) -> list[int]:
    """The event types of a workflow's history, without search-attribute upserts
    (there only where the server registered them: the dev server, not the test one)."""
    history = await env.client.get_workflow_handle(workflow_id).fetch_history()
    upsert = EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES
    return [event.event_type for event in history.events if event.event_type != upsert]


def _parked(Car, name: str = "parked", **options):
    """An hour's wait, then a honk."""
    parked = Car.stepped_action(name, **options)
    parked.step(lambda car, step: step.wait(timedelta(hours=1)))
    parked.step(lambda car, step: car.honk())
    return parked


@pytest.mark.time_skipping
async def test_the_claim_lives_exactly_as_long_as_the_action(stepped_db_env):
    """S4.1: a lone action holds its key by claim while it performs, and no longer."""
    Car = car_class()
    _parked(Car)
    car = stepped_db_env.create(Car, id=1)

    handle = await stepped.start(car, "parked")
    await until(handle, performing)
    assert _claim(stepped_db_env, "Car/1/parked") == (handle.id, False)

    assert (await handle.result()).status == "succeeded"
    assert _claim(stepped_db_env, "Car/1/parked") is None


@pytest.mark.time_skipping
async def test_a_one_step_leaf_costs_one_workflow_task_and_no_lane(stepped_db_env):
    """The hot path: prepare claims the key and runs the step in one local activity,
    inside the leaf's first workflow task — no activity task, no second workflow
    task; no lane workflow, no finish activity, and the parent learns of the end
    from the child's completion (no signal either way)."""
    Car = car_class()
    fleet = Car.stepped_action("fleet")
    fleet.step(lambda car, step, others: step.on(others, "honk"))
    cars = [stepped_db_env.create(Car, id=n) for n in (1, 2, 3)]
    with record_lookups() as lookups:
        result = await stepped.run(cars[0], "fleet", cars[1:])
    # each prepare ran in its workflow's first task: no earlier run to look for
    assert lookups == []

    assert result.status == "succeeded"
    for child_id in result.steps[0].actions:
        events = await _events(stepped_db_env, child_id)
        assert await activities_run(stepped_db_env.client, child_id) == ["local stepped_prepare"]
        assert EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED not in events
        assert events.count(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED) == 1
        assert EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED not in events
        assert EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED not in events
        assert len(events) <= 8, f"{child_id}: {len(events)} events"
    parent = await _events(stepped_db_env, result.id)
    assert EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED not in parent
    assert [stepped_db_env.reload(c).honks for c in cars[1:]] == [1, 1]


@pytest.mark.time_skipping
async def test_the_first_contender_hands_the_holder_to_the_lane(stepped_db_env):
    """S4.1: the lane adopts the claim holder as performing; the contender waits for it."""
    Car = car_class()
    _parked(Car)
    car = stepped_db_env.create(Car, id=1)
    first = await stepped.start(car, "parked")
    await until(first, performing)

    second = await stepped.start(car, "parked")
    await until(second, joined)
    lane = stepped_db_env.client.get_workflow_handle("stepped-lane/Car/1/parked")
    state = await lane.query("state", result_type=LaneState)
    assert state.performing is not None and state.performing.action_id == first.id
    assert [entry.action_id for entry in state.pending] == [second.id]
    assert (await second.describe()).status == "pending"
    assert _claim(stepped_db_env, "Car/1/parked") == (first.id, True)

    done = [await first.result(), await second.result()]
    assert [r.status for r in done] == ["succeeded", "succeeded"]
    assert done[0].completed_at <= done[1].started_at, "both performed at once"
    assert stepped_db_env.reload(car).honks == 2
    # the key stays the lane's (its workflow ends when idle); nobody holds it
    assert _claim(stepped_db_env, "Car/1/parked") == (None, True)


@pytest.mark.time_skipping
async def test_a_failed_or_cancelled_holder_gives_the_key_up(stepped_db_env):
    """S4.5/S4.6: whatever the final status, the claim goes; the next action claims anew."""
    Car = car_class()
    _parked(Car)
    broken = Car.stepped_action("broken")

    @broken.step
    def _(car, step):
        step.status = "failed"

    car = stepped_db_env.create(Car, id=1)

    assert (await stepped.run(car, "broken")).status == "failed"
    assert _claim(stepped_db_env, "Car/1/broken") is None

    parked = await stepped.start(car, "parked")
    await until(parked, performing)
    assert await parked.cancel()
    assert (await parked.result()).status == "cancelled"
    assert _claim(stepped_db_env, "Car/1/parked") is None

    again = await stepped.start(car, "parked")
    await until(again, performing)
    assert _claim(stepped_db_env, "Car/1/parked") == (again.id, False)
    assert (await again.result()).status == "succeeded"


@pytest.mark.time_skipping
async def test_a_timed_out_holder_gives_the_key_up(stepped_db_env):
    """S7: a holder that times out mid-step releases its claim like any other end."""
    Car = car_class()
    _parked(Car, "slow", timeout=timedelta(minutes=5))
    car = stepped_db_env.create(Car, id=1)

    result = await stepped.run(car, "slow")

    assert result.status == "timed_out"
    assert _claim(stepped_db_env, "Car/1/slow") is None


async def test_a_child_on_its_claiming_ancestors_key_is_deadlocked_at_once(stepped_db_env):
    """S4.4: the key's claim holder is an ancestor: the child fails as deadlocked,
    and no lane workflow is started for it."""
    Car = car_class()
    outer = Car.stepped_action("outer")
    outer.concurrency_key(lambda car: "garage")
    outer.step(lambda car, step: step.do("inner"))
    inner = Car.stepped_action("inner")
    inner.concurrency_key(lambda car: "garage")
    inner.step(lambda car, step: car.honk())
    car = stepped_db_env.create(Car, id=1)

    result = await stepped.run(car, "outer")

    assert result.status == "failed"
    child = await (await first_child(stepped.action_handle(result.id))).result()
    assert child.status == "deadlocked" and child.error.type == "Deadlock"
    assert result.id in child.error.message
    assert stepped_db_env.reload(car).honks == 0
    assert _claim(stepped_db_env, "garage") is None


async def test_an_achieved_start_runs_no_activity(stepped_db_env):
    """S3.4: start() finds the checksum achieved: the action succeeds in its first
    workflow task, with no activity; with a `before` hook, prepare decides as usual."""
    Car = car_class()
    wash = Car.stepped_action("wash")
    wash.checksum(lambda car: "clean")
    wash.step(lambda car, step: car.honk())
    polish = Car.stepped_action("polish")
    polish.checksum(lambda car: "shiny")
    polish.before(lambda car, action: None)
    polish.step(lambda car, step: car.honk())
    car = stepped_db_env.create(Car, id=1)
    grant(stepped_db_env, "Car/1/wash", _digest("clean"))
    grant(stepped_db_env, "Car/1/polish", _digest("shiny"))

    washed = await stepped.run(car, "wash")
    polished = await stepped.run(car, "polish")

    for result in (washed, polished):
        assert result.status == "succeeded" and result.steps == ()
        assert result.concurrency_key == result.checksum_key
    assert washed.checksum == _digest("clean")
    assert stepped_db_env.reload(car).honks == 0
    wash_events = await _events(stepped_db_env, washed.id)
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED not in wash_events
    assert len(wash_events) == 5
    assert await activities_run(stepped_db_env.client, polished.id) == ["local stepped_prepare"]

    # not achieved (another checksum): the work runs
    with stepped_db_env.session() as session, session.begin():
        session.execute(sa.delete(Achievement))
    assert (await stepped.run(car, "wash")).status == "succeeded"
    assert stepped_db_env.reload(car).honks == 1


def _digest(value: str) -> str:
    from stepped_temporal.checksums import checksum

    digest = checksum(value)
    assert digest is not None
    return digest


def test_a_retried_prepare_of_the_holder_keeps_its_claim_on_a_contended_key(tmp_path):
    """The holder's first prepare claimed the key, and its worker died before Temporal
    heard; a joiner then marked the key contended (handing the holder to the lane).
    The holder's retried prepare must still hold the key by claim, so that its end
    clears the row's holder — else the row names it forever."""
    from sqlalchemy.orm import Session

    from stepped_temporal import achievements, config
    from stepped_temporal.store import claims

    engine = config.create_engine(f"sqlite:///{tmp_path / 'claims.db'}")
    achievements.create_tables(engine)
    try:
        with Session(engine) as session, session.begin():
            assert claims.claim(session, "k", "A", None, None, []).claimed
        with Session(engine) as session, session.begin():
            joiner = claims.claim(session, "k", "B", None, None, [])
            assert not joiner.claimed
            assert joiner.holder is not None and joiner.holder.action_id == "A"
        with Session(engine) as session, session.begin():  # A's retried prepare
            assert claims.claim(session, "k", "A", None, None, []).claimed
        with Session(engine) as session, session.begin():  # A ends: the lane owns the key
            assert claims.release(session, "k", "A") is True
        with Session(engine) as session:
            row = session.get(LaneClaim, "k")
            assert row is not None and row.holder is None and row.contended
    finally:
        engine.dispose()
