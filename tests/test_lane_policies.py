"""S4.10: lane policies per definition (`lane=`, `max_pending=`), default "supersede".

Each with nested actions and a waiting parent: every dependency concludes and
nothing hangs. "queue" is FIFO without superseding and refuses joins beyond
`max_pending` (cancelled, LaneFull); "cancel_in_progress" cancels the performing
action (its cancelled callback runs) and supersedes older pending ones;
"skip_if_busy" ends a join that finds the lane busy as cancelled (LaneBusy).
"""

from __future__ import annotations

import pytest

import stepped_temporal as stepped
from stepped_temporal.errors import DefinitionError
from tests.support import car_class, joined, performing, until


def _hold(Car, key: str = "garage"):
    """hold: outbound in lane `key`, performing until completed (or cancelled)."""
    hold = Car.stepped_action("hold", outbound=True)
    hold.concurrency_key(lambda car: key)
    hold.step(lambda car, step: None)
    hold.cancelled(lambda car, action: car.change_location("cancelled"))
    return hold


def _wash(Car, **lane):
    """wash(label): in lane "garage" with the given policy; honks once per run."""
    wash = Car.stepped_action("wash", **lane)
    wash.concurrency_key(lambda car, label: "garage")
    wash.step(lambda car, step, label: car.honk())
    return wash


def _fleet(Car):
    """fleet(cars, label): one step washing every car (children waited on)."""
    fleet = Car.stepped_action("fleet")
    fleet.step(lambda car, step, cars, label: step.on(cars, "wash", label))
    return fleet


async def _children(parent, count: int) -> list[str]:
    state = await until(parent, lambda s: s.steps and len(s.steps[0].actions) >= count)
    return list(state.steps[0].actions)


async def test_queue_performs_every_join_in_order(stepped_env):
    Car = car_class()
    _hold(Car)
    _wash(Car, lane="queue")
    _fleet(Car)
    boss, *cars = (stepped_env.create(Car, id=n) for n in range(1, 5))
    holder = await stepped.start(boss, "hold")
    await until(holder, performing)

    parent = await stepped.start(boss, "fleet", cars, "A")
    children = await _children(parent, 3)
    for child in children:
        await until(stepped.action_handle(child), joined)
    lane = await stepped.lane("garage")
    assert lane.performing == holder.id and list(lane.pending) == children  # FIFO, none superseded
    assert await stepped.complete(boss, "hold") is True

    result = await parent.result()
    assert result.status == "succeeded"
    finished = [await stepped.action_handle(c).result() for c in children]
    assert [r.status for r in finished] == ["succeeded"] * 3
    starts = [r.started_at for r in finished]
    assert starts == sorted(starts)  # one at a time, in join order
    assert [stepped_env.reload(car).honks for car in cars] == [1, 1, 1]


async def test_queue_refuses_joins_beyond_max_pending(stepped_env):
    Car = car_class()
    _hold(Car)
    _wash(Car, lane="queue", max_pending=1)
    _fleet(Car)
    boss, *cars = (stepped_env.create(Car, id=n) for n in range(1, 5))
    holder = await stepped.start(boss, "hold")
    await until(holder, performing)

    parent = await stepped.start(boss, "fleet", cars, "B")
    children = await _children(parent, 3)
    refused = [await stepped.action_handle(c).result() for c in children[1:]]
    for state in refused:
        assert state.status == "cancelled"
        assert state.error is not None and state.error.type == "LaneFull"
        assert "'garage'" in state.error.message and "max_pending=1" in state.error.message
    assert await stepped.complete(boss, "hold") is True
    result = await parent.result()  # concludes, two of its dependencies unsuccessful
    assert result.status == "failed" and result.steps[0].unsuccessful_actions_count == 2
    assert (await stepped.action_handle(children[0]).result()).status == "succeeded"
    assert [stepped_env.reload(car).honks for car in cars] == [1, 0, 0]


async def test_cancel_in_progress_cancels_the_performer_and_the_newest_performs(stepped_env):
    Car = car_class()
    _hold(Car)
    _wash(Car, lane="cancel_in_progress")
    waiter = Car.stepped_action("waiter")
    waiter.step(lambda car, step, other: step.on(other, "hold"))  # a parent waiting on it
    boss, other, washer = (stepped_env.create(Car, id=n) for n in (1, 2, 3))

    parent = await stepped.start(boss, "waiter", other)
    (holder_id,) = await _children(parent, 1)
    holder = stepped.action_handle(holder_id)
    await until(holder, performing)
    washing = await stepped.start(washer, "wash", "C")

    assert (await holder.result()).status == "cancelled"
    assert stepped_env.reload(other).location == "cancelled"  # its callback ran
    assert (await washing.result()).status == "succeeded"
    assert (await parent.result()).status == "failed"  # its child was cancelled
    assert stepped_env.reload(washer).honks == 1


async def test_cancel_in_progress_supersedes_older_pending_ones(stepped_env):
    Car = car_class()
    _hold(Car)
    _wash(Car, lane="cancel_in_progress")
    boss, car = stepped_env.create(Car, id=1), stepped_env.create(Car, id=2)
    holder = await stepped.start(boss, "hold")
    await until(holder, performing)
    # a hold of another car queues behind (supersede, its own policy) — then a wash
    # cancels the performer and supersedes it
    queued = await stepped.start(car, "hold")
    await until(queued, joined)
    washing = await stepped.start(car, "wash", "D")
    results = [await h.result() for h in (holder, queued, washing)]
    assert [r.status for r in results] == ["cancelled", "superseded", "succeeded"]
    assert results[1].resolved_by == washing.id


async def test_skip_if_busy_ends_a_join_that_finds_the_lane_busy(stepped_env):
    Car = car_class()
    _hold(Car)
    _wash(Car, lane="skip_if_busy")
    _fleet(Car)
    boss, car = stepped_env.create(Car, id=1), stepped_env.create(Car, id=2)
    holder = await stepped.start(boss, "hold")
    await until(holder, performing)

    parent = await stepped.start(boss, "fleet", [car], "E")
    result = await parent.result()  # the child ended at once: the parent concludes
    assert result.status == "failed"
    (child_id,) = result.steps[0].actions
    skipped = await stepped.action_handle(child_id).describe()
    assert skipped.status == "cancelled" and skipped.started_at is None
    assert skipped.error is not None and skipped.error.type == "LaneBusy"
    assert holder.id in skipped.error.message
    assert stepped_env.reload(car).honks == 0
    assert (await stepped.lane("garage")).pending == ()  # nothing queued

    assert await stepped.complete(boss, "hold") is True
    await holder.result()
    assert (await stepped.run(car, "wash", "F")).status == "succeeded"  # idle: performs


async def test_the_default_policy_comes_from_configure(stepped_env):
    Car = car_class()
    _hold(Car)
    _wash(Car)  # no lane=: the configured default
    boss, car = stepped_env.create(Car, id=1), stepped_env.create(Car, id=2)
    stepped.configure(lane="skip_if_busy")
    try:
        holder = await stepped.start(boss, "hold")
        await until(holder, performing)
        skipped = await stepped.run(car, "wash", "G")
        assert skipped.status == "cancelled" and skipped.error.type == "LaneBusy"
        assert await stepped.complete(boss, "hold") is True
    finally:
        stepped.configure(lane="supersede")


def test_bad_lane_options_name_the_culprit(stepped_env):  # (its registry is reset after)
    Car = car_class()
    with pytest.raises(DefinitionError, match=r"Car\.a: lane must be one of .*'later'"):
        Car.stepped_action("a", lane="later")
    with pytest.raises(DefinitionError, match=r"Car\.b: max_pending needs lane='queue'"):
        Car.stepped_action("b", max_pending=3)
    with pytest.raises(DefinitionError, match=r"Car\.c: max_pending must be a positive int"):
        Car.stepped_action("c", lane="queue", max_pending=0)
    with pytest.raises(ValueError, match="lane must be one of"):
        stepped.configure(lane="sometimes")
