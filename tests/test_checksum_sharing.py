"""S4.3: a candidate whose checksum equals the performing or a pending action's
shares it: it does not queue, supersedes nothing, and mirrors that action's
final result — on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
import sqlalchemy as sa

import stepped_temporal as stepped
from stepped_temporal.achievements import Achievement
from tests.support import car_class, first_child, joined, performing, until


def _visit(Car, key: str | None = None):
    """visit(location): an hour's wait, then one honk and the move; "nowhere" fails."""
    visit = Car.stepped_action("visit")
    visit.checksum(lambda car, location: location)
    if key:
        visit.concurrency_key(lambda car, location: key)
        visit.checksum_key(lambda car, location: key)

    @visit.step
    def _(car, step, location):
        step.wait(timedelta(hours=1))

    @visit.step
    def _(car, step, location):
        if location == "nowhere":
            raise ValueError("no such place")
        car.honk()
        car.change_location(location)

    return visit


@pytest.mark.time_skipping
async def test_root_shares_the_performing_action(stepped_db_env):
    """S4.3: same checksum_key and checksum → shared; same status; work done once."""
    Car = car_class()
    _visit(Car)
    car = stepped_db_env.create(Car, id=1)
    first = await stepped.start(car, "visit", "Oslo")
    await until(first, performing)

    second = await stepped.start(car, "visit", "Oslo")
    waiting = await until(second, lambda s: s.resolved_by is not None)
    assert waiting.status == "pending" and waiting.resolved_by == first.id

    done, shared = await first.result(), await second.result()
    assert done.status == shared.status == "succeeded"
    assert shared.resolved_by == first.id and shared.steps == () and shared.started_at is None
    assert stepped_db_env.reload(car).honks == 1


@pytest.mark.time_skipping
async def test_sharing_a_pending_action_supersedes_nothing(stepped_db_env):
    """S4.3: the candidate shares the pending one; nothing is superseded."""
    Car = car_class()
    _visit(Car, key="road")
    car = stepped_db_env.create(Car, id=1)
    blocker = await stepped.start(car, "visit", "Paris")
    await until(blocker, performing)
    pending = await stepped.start(car, "visit", "Oslo")
    await until(pending, joined)

    candidate = await stepped.start(car, "visit", "Oslo")
    await until(candidate, lambda s: s.resolved_by is not None)

    results = [await h.result() for h in (blocker, pending, candidate)]
    assert [r.status for r in results] == ["succeeded"] * 3
    assert results[2].resolved_by == pending.id
    assert [len(r.steps) for r in results] == [2, 2, 0]
    assert stepped_db_env.reload(car).honks == 2


@pytest.mark.time_skipping
async def test_a_candidate_with_another_checksum_supersedes_as_usual(stepped_db_env):
    """S4.3 vs S4.2: a different checksum is no share: the pending one is superseded."""
    Car = car_class()
    _visit(Car, key="road")
    car = stepped_db_env.create(Car, id=1)
    blocker = await stepped.start(car, "visit", "Paris")
    await until(blocker, performing)
    pending = await stepped.start(car, "visit", "Oslo")
    await until(pending, joined)

    candidate = await stepped.start(car, "visit", "Rome")

    assert (await pending.result()).status == "superseded"
    assert (await candidate.result()).status == "succeeded"


@pytest.mark.time_skipping
async def test_nested_candidate_shares_and_its_parent_waits_for_the_shared_action(
    stepped_db_env,
):
    """S4.3: a child sharing a root action concludes its parent's step when it ends."""
    Car = car_class()
    _visit(Car)
    trip = Car.stepped_action("trip")
    trip.step(lambda car, step, other: step.on(other, "visit", "Oslo"))
    car, other = stepped_db_env.create(Car, id=1), stepped_db_env.create(Car, id=2)
    root = await stepped.start(other, "visit", "Oslo")
    await until(root, performing)

    parent = await stepped.start(car, "trip", other)
    result = await parent.result()

    assert result.status == "succeeded"
    child = await stepped.action_handle(result.steps[0].actions[0]).describe()
    assert (child.status, child.resolved_by) == ("succeeded", root.id)
    assert stepped_db_env.reload(other).honks == 1


@pytest.mark.time_skipping
async def test_when_the_shared_action_fails_its_sharers_fail(stepped_db_env):
    """S4.3, S3.14: the sharers mirror the failure; a nested sharer fails its parent."""
    Car = car_class()
    _visit(Car)
    trip = Car.stepped_action("trip")
    trip.step(lambda car, step, other: step.on(other, "visit", "nowhere"))
    car, other = stepped_db_env.create(Car, id=1), stepped_db_env.create(Car, id=2)
    root = await stepped.start(other, "visit", "nowhere")
    await until(root, performing)
    sharer = await stepped.start(other, "visit", "nowhere")
    await until(sharer, lambda s: s.resolved_by is not None)
    parent = await stepped.start(car, "trip", other)
    child = await first_child(parent)
    await until(child, lambda s: s.resolved_by is not None)

    failed = await root.result()
    assert failed.status == "failed" and failed.error.type == "ValueError"
    mirrored = await sharer.result()
    assert (mirrored.status, mirrored.error, mirrored.resolved_by) == (
        "failed",
        failed.error,
        root.id,
    )
    assert (await parent.result()).status == "failed"


@pytest.mark.time_skipping
async def test_twenty_identical_actions_at_once_do_the_work_once(stepped_db_env):
    """S4.3, S3.4, S5.2: 20 starts with one checksum: all succeed, the work runs once,
    one achievement row."""
    Car = car_class()
    _visit(Car)
    car = stepped_db_env.create(Car, id=1)

    handles = await asyncio.gather(*(stepped.start(car, "visit", "Oslo") for _ in range(20)))
    results = await asyncio.gather(*(h.result() for h in handles))

    assert [r.status for r in results] == ["succeeded"] * 20
    assert sum(1 for r in results if r.steps) == 1
    assert stepped_db_env.reload(car).honks == 1
    with stepped_db_env.session() as session:
        rows = session.execute(sa.select(Achievement.checksum_key, Achievement.checksum)).all()
    assert [tuple(r) for r in rows] == [("Car/1/visit", stepped.checksum("Oslo"))]


async def test_same_checksum_in_one_lane_under_another_checksum_key_queues(stepped_env):
    """S4.3, S3.3 (the gem's "same checksum and concurrency_key but different
    checksum_key"): two definitions in one lane with equal checksums but their own
    checksum_keys do not share — the second queues and performs after the first —
    while a repeat of the first shares it."""
    Car = car_class()
    Car.stepped_action("park", outbound=True).step(lambda car, step: None)
    for name, miles in (("tiny_drive", 1), ("short_drive", 10)):
        definition = Car.stepped_action(name)
        definition.concurrency_key(lambda car: "Car/drive")
        definition.checksum(lambda car: 1)
        definition.checksum_key(lambda car, name=name: name)
        definition.step(lambda car, step, miles=miles: step.do("drive", miles))
    # tiny_drive waits on a parked car before it drives: it stays performing
    Car.prepend_stepped_action_step("tiny_drive")(lambda car, step: step.do("park"))
    car = stepped_env.create(Car, id=1)

    tiny = await stepped.start(car, "tiny_drive")
    await until(tiny, lambda s: s.status == "performing" and s.steps[0].actions)
    short = await stepped.start(car, "short_drive")
    queued = await until(short, joined)
    again = await stepped.start(car, "tiny_drive")
    shared = await until(again, lambda s: s.resolved_by is not None)

    assert queued.status == "pending" and queued.resolved_by is None  # not shared
    assert shared.resolved_by == tiny.id
    assert (await stepped.lane("Car/drive")).pending == (short.id,)

    assert await stepped.complete(car, "park") is True
    results = [await h.result() for h in (tiny, short, again)]

    assert [r.status for r in results] == ["succeeded"] * 3
    assert results[1].started_at >= results[0].completed_at  # one at a time in the lane
    assert results[2].resolved_by == tiny.id and results[2].steps == ()
    assert stepped_env.reload(car).mileage == 1 + 10
