"""No action waits on a lane that is gone (issue 27; S4.6, S4.7, S3.14).

Terminating a stuck lane workflow is an operator's natural fix. Everything that
waited for that lane's word — pending actions, actions shared with another,
parents whose dependency the lane had moved to a successor — then ends within
about one `lane_check` (here 1 s): pending and sharing actions `cancelled` with
a `LaneGone` error, forwarded dependencies unsuccessfully (so their parents'
steps fail). A cancel of a pending action ends it at once. The performing
action goes on and ends as usual, and the key serves new actions afterwards (a
new lane run adopts a performing claim holder from the claim row, so still one
at a time).
Both when the lane stays closed and when a later join starts a new lane run
(which answers that it does not hold them), under every lane policy.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import stepped_temporal as stepped
from stepped_temporal.keys import lane_id
from tests.support import car_class, joined, performing, until

#: how long anything may take to notice its lane is gone (checks every second)
NOTICE = 20.0


def _garage(Car, *, lane: str = "supersede", checksum: bool = False):
    """hold: outbound, performing in lane "garage" until completed; wash(label): one
    honk in "garage" under `lane`; fleet(cars, label): washes every car."""
    hold = Car.stepped_action("hold", outbound=True, lane=lane)
    hold.concurrency_key(lambda car: "garage")
    hold.step(lambda car, step: None)
    if checksum:
        hold.checksum(lambda car: "v1")
        hold.checksum_key(lambda car: "garage-hold")
    wash = Car.stepped_action("wash", lane=lane)
    wash.concurrency_key(lambda car, label: "garage")
    wash.step(lambda car, step, label: car.honk())
    fleet = Car.stepped_action("fleet")
    fleet.step(lambda car, step, cars, label: step.on(cars, "wash", label))
    return hold


async def _terminate(env, key: str = "garage") -> None:
    await env.client.get_workflow_handle(lane_id(key)).terminate("operator: stuck lane")


async def _ends(handle, seconds: float = NOTICE):
    started = time.monotonic()
    result = await asyncio.wait_for(handle.result(), seconds)
    return result, time.monotonic() - started


async def _children(parent, count: int) -> list[str]:
    state = await until(parent, lambda s: s.steps and len(s.steps[0].actions) >= count)
    return list(state.steps[0].actions)


async def _complete(car) -> None:
    """Complete `car`'s hold once it performs (its first unit records it outbound)."""
    deadline = time.monotonic() + NOTICE
    while not await stepped.complete(car, "hold"):
        assert time.monotonic() < deadline, f"{car}'s hold never performed"
        await asyncio.sleep(0.05)


def _lane_gone(result) -> None:
    assert result.status == "cancelled", result
    assert result.error is not None and result.error.type == "LaneGone", result.error
    assert "garage" in result.error.message and result.id in result.error.message


async def test_queue_terminated_lane_cancels_its_pending_and_a_cancel_ends_at_once(stepped_env):
    stepped.configure(lane_check=timedelta(seconds=1))
    Car = car_class()
    _garage(Car, lane="queue")
    boss, *cars = (stepped_env.create(Car, id=n) for n in range(1, 5))
    holder = await stepped.start(boss, "hold")
    await until(holder, performing)
    parent = await stepped.start(boss, "fleet", cars, "A")
    children = [stepped.action_handle(c) for c in await _children(parent, 3)]
    for child in children:
        await until(child, joined)
    assert list((await stepped.lane("garage")).pending) == [c.id for c in children]

    await _terminate(stepped_env)
    await children[0].cancel()
    cancelled, took = await _ends(children[0], 10)
    assert took < 10
    assert cancelled.status == "cancelled" and cancelled.error is None
    for child in children[1:]:
        _lane_gone((await _ends(child))[0])
    assert (await _ends(parent))[0].status == "failed"  # S3.14: its step failed

    await _complete(boss)  # the performer goes on
    assert (await holder.result()).status == "succeeded"
    again = await stepped.run(cars[0], "wash", "again")  # the key serves new work
    assert again.status == "succeeded"
    assert [stepped_env.reload(car).honks for car in cars] == [1, 0, 0]


async def test_supersede_new_lane_run_answers_lost_and_forwarded_parents_fail(stepped_env):
    """C1 is superseded by C2 (its parent P1 now waits on C2 through the lane); the
    lane is terminated and a new join starts a new lane run: C2 hears it is not
    held there ("lost"), and P1's forwarded dependency concludes unsuccessfully."""
    stepped.configure(lane_check=timedelta(seconds=1))
    Car = car_class()
    _garage(Car)
    boss, first, second, third = (stepped_env.create(Car, id=n) for n in range(1, 5))
    holder = await stepped.start(boss, "hold")
    await until(holder, performing)
    p1 = await stepped.start(first, "fleet", [first], "A")
    c1 = stepped.action_handle((await _children(p1, 1))[0])
    await until(c1, joined)
    p2 = await stepped.start(second, "fleet", [second], "B")
    c2 = stepped.action_handle((await _children(p2, 1))[0])
    assert (await c1.result()).status == "superseded"
    await until(p1, lambda s: c2.id in s.steps[0].actions)  # the forward reached P1

    await _terminate(stepped_env)
    newcomer = await stepped.start(third, "hold")  # a new lane run
    await until(newcomer, joined)
    # the claim row still names the holder: the new run adopts it, one performs
    assert (await stepped.lane("garage")).performing == holder.id

    result, _ = await _ends(c2)
    _lane_gone(result)
    assert "does not hold" in result.error.message  # the new run answered
    for parent in (p1, p2):
        state, _ = await _ends(parent)
        assert state.status == "failed", state
        assert state.steps[0].unsuccessful_actions_count == 1, state

    for car, handle in ((boss, holder), (third, newcomer)):  # one after the other
        await _complete(car)
        assert (await handle.result()).status == "succeeded"
    assert stepped_env.reload(first).honks == 0 and stepped_env.reload(second).honks == 0


async def test_cancel_in_progress_pending_candidate_ends_when_its_lane_is_gone(stepped_env):
    """The candidate waits while the performer it cancelled runs its cancelled
    callback (slowly); the lane is terminated meanwhile."""
    stepped.configure(lane_check=timedelta(seconds=1))
    Car = car_class()
    hold = _garage(Car, lane="cancel_in_progress")
    hold.cancelled(lambda car, action: time.sleep(3))
    boss, car = stepped_env.create(Car, id=1), stepped_env.create(Car, id=2)
    holder = await stepped.start(boss, "hold")
    await until(holder, performing)
    candidate = await stepped.start(car, "wash", "C")
    await until(candidate, joined)
    await asyncio.sleep(0.5)  # the holder heard its cancel: its callback runs

    await _terminate(stepped_env)
    _lane_gone((await _ends(candidate))[0])
    assert (await _ends(holder))[0].status == "cancelled"
    assert stepped_env.reload(car).honks == 0


async def test_skip_if_busy_sharing_action_ends_when_its_lane_is_gone(stepped_env):
    """An identical action shares the performing one (S4.3) under "skip_if_busy";
    the lane is terminated: the sharer ends, the performer goes on."""
    stepped.configure(lane_check=timedelta(seconds=1))
    Car = car_class()
    _garage(Car, lane="skip_if_busy", checksum=True)
    boss, other = stepped_env.create(Car, id=1), stepped_env.create(Car, id=2)
    holder = await stepped.start(boss, "hold")
    await until(holder, performing)
    sharer = await stepped.start(other, "hold")
    await until(sharer, lambda s: s.resolved_by == holder.id)

    await _terminate(stepped_env)
    _lane_gone((await _ends(sharer))[0])
    await _complete(boss)
    assert (await holder.result()).status == "succeeded"


async def test_a_cancel_ends_a_pending_action_a_new_lane_run_does_not_hold(stepped_env):
    """With checks far apart, a cancel alone ends it: its withdraw reaches a new lane
    run that does not hold it, which lets it go."""
    stepped.configure(lane_check=timedelta(hours=1))
    Car = car_class()
    _garage(Car, lane="queue")
    boss, car, third = (stepped_env.create(Car, id=n) for n in range(1, 4))
    holder = await stepped.start(boss, "hold")
    await until(holder, performing)
    waiting = await stepped.start(car, "wash", "W")
    await until(waiting, joined)
    await _terminate(stepped_env)
    newcomer = await stepped.start(third, "hold")
    await until(newcomer, joined)

    await waiting.cancel()
    result, took = await _ends(waiting, 15)
    assert result.status == "cancelled" and took < 15
    for owner, handle in ((boss, holder), (third, newcomer)):  # one after the other
        await _complete(owner)
        assert (await handle.result()).status == "succeeded"
