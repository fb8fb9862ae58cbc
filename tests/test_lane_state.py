"""S9.5: `stepped.lane(key)` tells the performing action, the pending ones in
order, and the latest superseded and shared actions with whom each was handed to
— for an uncontended key (held by claim, no lane workflow) and a contended one."""

from __future__ import annotations

import pytest

import stepped_temporal as stepped
from tests.support import car_class, joined, performing, until, until_true


def _garage(Car):
    """paint (outbound) and visit/wash, all in the lane "garage"; wash has a checksum."""
    paint = Car.stepped_action("paint", outbound=True)
    paint.concurrency_key(lambda car: "garage")
    paint.step(lambda car, step: None)
    visit = Car.stepped_action("visit")
    visit.concurrency_key(lambda car, label: "garage")
    visit.step(lambda car, step, label: car.change_location(label))
    wash = Car.stepped_action("wash")
    wash.concurrency_key(lambda car: "garage")
    wash.checksum(lambda car: "weekly")
    wash.step(lambda car, step: car.honk())


async def test_a_lane_nobody_uses_is_empty(stepped_env):
    assert await stepped.lane("nobody/here") == stepped.LaneState("nobody/here")
    with pytest.raises(TypeError, match="concurrency key"):
        await stepped.lane("")


async def test_lane_state_follows_claims_superseding_and_sharing(stepped_env):
    Car = car_class()
    _garage(Car)
    car = stepped_env.create(Car, id=1)

    painting = await stepped.start(car, "paint")
    await until(painting, performing)
    # uncontended: held by claim, no lane workflow
    assert await stepped.lane("garage") == stepped.LaneState("garage", performing=painting.id)

    first = await stepped.start(car, "visit", "A")
    await until(first, joined)
    second = await stepped.start(car, "visit", "B")
    await until(second, joined)
    washing = await stepped.start(car, "wash")
    await until(washing, joined)
    shared = await stepped.start(car, "wash")
    await until(shared, joined)
    await until(shared, lambda s: s.resolved_by is not None)

    state = await stepped.lane("garage")
    assert state.performing == painting.id
    assert state.pending == (washing.id,)
    assert state.recent == (
        stepped.LaneHandover(first.id, second.id, "superseded"),
        stepped.LaneHandover(second.id, washing.id, "superseded"),
        stepped.LaneHandover(shared.id, washing.id, "shared"),
    )

    assert await stepped.complete(car, "paint") is True
    assert (await washing.result()).status == "succeeded"
    assert (await shared.result()).resolved_by == washing.id

    async def idle():
        state = await stepped.lane("garage")
        return state if state.performing is None and not state.pending else None

    final = await until_true(idle)
    assert [h.how for h in final.recent] == ["superseded", "superseded", "shared"]
