"""S4.9: a join that closes a cycle of waits across trees — through two or three
lanes, a shared action, a superseded action's successor, or while a member is
being cancelled — deadlocks exactly one action of the cycle, the one whose join
closed it; its parent step fails and everything else goes on.

Each root `lead(own, calls)` performs in lane `own`: its first step waits on an
outbound `gate` (so every root performs before any child joins a lane), its
second makes the `calls`: `["visit", key]` visits the lane `key`, `["lead",
car, own, calls]` asks another car to lead.
"""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

import stepped_temporal as stepped
from tests.support import car_class, joined, performing, until, until_true

DEADLINE = 90.0


def fleet_class(*, checksum: bool = False) -> type:
    Car = car_class()
    gate = Car.stepped_action("gate", outbound=True)
    gate.step(lambda car, step: None)
    visit = Car.stepped_action("visit")
    visit.concurrency_key(lambda car, key: key)
    visit.step(lambda car, step, key: car.honk())
    lead = Car.stepped_action("lead")
    lead.concurrency_key(lambda car, own, calls: own)
    if checksum:
        lead.checksum(lambda car, own, calls: "the same")
    lead.step(lambda car, step, own, calls: step.do("gate"))

    @lead.step
    def _(car, step, own, calls):
        for call in calls:
            if call[0] == "visit":
                step.do("visit", call[1])
            else:
                other = sa.orm.object_session(car).get(type(car), call[1])
                step.on(other, "lead", *call[2:])

    return Car


async def start_gated(env, Car, leads: dict[int, tuple], cars: dict | None = None) -> dict:
    """Start `lead` on each car id with its arguments; once every root performs
    and waits at its gate, open all gates at once."""
    cars = cars if cars is not None else {}
    cars.update({n: env.create(Car, id=n) for n in leads})
    roots = {n: await stepped.start(cars[n], "lead", *args) for n, args in leads.items()}
    for root in roots.values():
        await at_gate(root)
    await asyncio.gather(*(open_gate(cars[n]) for n in leads))
    return roots


async def open_gate(car) -> None:
    """Complete the car's gate (until the completion is taken: S6.1)."""

    async def completed() -> bool | None:
        return True if await stepped.complete(car, "gate") else None

    await until_true(completed)


async def at_gate(root) -> None:
    """Wait until the root performs and its gate does too."""
    state = await until(root, lambda s: s.steps and s.steps[0].actions)
    await until(stepped.action_handle(state.steps[0].actions[0]), performing)


async def first_gate_open(cars: dict, keys: tuple[str, str]) -> tuple:
    """Cars 1 and 2 lead in keys[0] and keys[1], each visiting the other's lane;
    only car 1's gate opens: its visit waits, pending, behind car 2's lead.
    Returns both roots and that visit."""
    r1 = await stepped.start(cars[1], "lead", keys[0], [["visit", keys[1]]])
    r2 = await stepped.start(cars[2], "lead", keys[1], [["visit", keys[0]]])
    for root in (r1, r2):
        await at_gate(root)
    await open_gate(cars[1])
    state = await until(r1, lambda s: len(s.steps) > 1 and s.steps[1].actions)
    visit = stepped.action_handle(state.steps[1].actions[0])
    await until(visit, joined)
    return r1, r2, visit


async def finished(roots: dict[int, object]) -> dict[int, stepped.ActionData]:
    results = await asyncio.wait_for(
        asyncio.gather(*(root.result() for root in roots.values())), DEADLINE
    )
    return dict(zip(roots, results, strict=True))


async def calls_of(result) -> list[stepped.ActionData]:
    """The actions the root's second step waited on, as they ended."""
    return [await stepped.action_handle(i).result() for i in result.steps[1].actions]


def assert_names_cycle(victim, *names: str) -> None:
    assert victim.status == "deadlocked" and victim.started_at is None
    assert victim.error.type == "Deadlock"
    for name in names:
        assert name in victim.error.message, (name, victim.error.message)


async def test_two_trees_waiting_on_each_others_lanes(stepped_env):
    """R1 performs in K1 and waits on a visit to K2; R2 performs in K2 and waits on a
    visit to K1: one visit is deadlocked, its root fails, the other tree succeeds."""
    Car = fleet_class()
    cars: dict = {}
    roots = await start_gated(
        stepped_env, Car, {1: ("K1", [["visit", "K2"]]), 2: ("K2", [["visit", "K1"]])}, cars
    )
    results = await finished(roots)
    (v1,), (v2,) = await calls_of(results[1]), await calls_of(results[2])
    statuses = sorted([v1.status, v2.status])
    assert statuses == ["deadlocked", "succeeded"]
    victim, other = (v1, v2) if v1.status == "deadlocked" else (v2, v1)
    loser = results[1] if victim is v1 else results[2]
    winner = results[2] if victim is v1 else results[1]
    assert_names_cycle(victim, v1.id, v2.id, results[1].id, results[2].id, "'K1'", "'K2'")
    assert victim.error.message.startswith(f"action {victim.id} closed a cycle")
    assert loser.status == "failed" and loser.steps[1].unsuccessful_actions_count == 1
    assert winner.status == "succeeded" and other.status == "succeeded"
    # the visit that performed honked once; the deadlocked one never ran
    assert sorted(stepped_env.reload(car).honks for car in cars.values()) == [0, 1]


async def test_three_trees_in_a_ring(stepped_env):
    """R1 → K2, R2 → K3, R3 → K1: exactly one of the three visits is deadlocked,
    and the message names every action and key of the ring."""
    Car = fleet_class()
    roots = await start_gated(
        stepped_env,
        Car,
        {
            1: ("K1", [["visit", "K2"]]),
            2: ("K2", [["visit", "K3"]]),
            3: ("K3", [["visit", "K1"]]),
        },
    )
    results = await finished(roots)
    visits = [(await calls_of(results[n]))[0] for n in (1, 2, 3)]
    deadlocked = [v for v in visits if v.status == "deadlocked"]
    assert len(deadlocked) == 1
    names = [v.id for v in visits] + [r.id for r in results.values()]
    assert_names_cycle(deadlocked[0], *names, "'K1'", "'K2'", "'K3'")
    assert sorted(r.status for r in results.values()) == ["failed", "succeeded", "succeeded"]
    assert [v.status for v in visits].count("succeeded") == 2


async def test_independent_trees_on_the_same_lanes_are_no_deadlock(stepped_env):
    """R1 → K2, R2 → K3, R3 waits on nothing: no cycle, so nobody is deadlocked."""
    Car = fleet_class()
    roots = await start_gated(
        stepped_env,
        Car,
        {1: ("K1", [["visit", "K2"]]), 2: ("K2", [["visit", "K3"]]), 3: ("K3", [])},
    )
    results = await finished(roots)
    assert [r.status for r in results.values()] == ["succeeded"] * 3


@pytest.mark.parametrize("closer", ["sharer", "visit"])
async def test_a_cycle_through_a_shared_action(stepped_env, closer):
    """R1 (K1) asks car 2 to lead exactly as R2 (K2) does: that call shares R2
    (S4.3); R2 waits on a visit to K1. The cycle runs through the sharing, and
    whichever of the sharer and the visit joins last is deadlocked: a sharer
    by its lane, taken off the shared action's followers."""
    Car = fleet_class(checksum=True)
    k1, k2 = f"S1-{closer}", f"S2-{closer}"
    cars = {n: stepped_env.create(Car, id=n) for n in (1, 2)}
    r1 = await stepped.start(cars[1], "lead", k1, [["lead", 2, k2, [["visit", k1]]]])
    r2 = await stepped.start(cars[2], "lead", k2, [["visit", k1]])
    for root in (r1, r2):
        await at_gate(root)
    first, then = (r2, r1) if closer == "sharer" else (r1, r2)
    await open_gate(cars[2] if first is r2 else cars[1])
    state = await until(first, lambda s: len(s.steps) > 1 and s.steps[1].actions)
    await until(stepped.action_handle(state.steps[1].actions[0]), joined)
    await open_gate(cars[1] if then is r1 else cars[2])  # this join closes the cycle

    results = await finished({1: r1, 2: r2})
    (sharer,), (visit,) = await calls_of(results[1]), await calls_of(results[2])
    victim, other = (sharer, visit) if closer == "sharer" else (visit, sharer)
    assert_names_cycle(victim, sharer.id, visit.id, r1.id, r2.id, repr(k1), repr(k2))
    assert f"{sharer.id} (sharing in lane {k2!r}) waits for {r2.id}" in victim.error.message
    if closer == "sharer":  # R1 fails; K1 frees; the visit performs; R2 succeeds
        assert (results[1].status, other.status, results[2].status) == (
            "failed",
            "succeeded",
            "succeeded",
        )
    else:  # R2 fails; the sharer mirrors it (S4.3), so R1 fails too
        assert (results[2].status, other.status, other.resolved_by) == ("failed", "failed", r2.id)
        assert results[1].status == "failed"


async def test_a_cycle_through_a_superseded_actions_successor(stepped_env):
    """R1's visit to K2 is superseded by a root visit from outside: R1 now waits on
    the successor (S4.2). When R2 then waits on K1, the cycle runs through it."""
    Car = fleet_class()
    cars = {n: stepped_env.create(Car, id=n) for n in (1, 2, 3)}
    r1, r2, superseded = await first_gate_open(cars, ("K1", "K2"))
    successor = await stepped.start(cars[3], "visit", "K2")
    assert (await superseded.result()).status == "superseded"
    await until(r1, lambda s: successor.id in s.steps[1].actions)

    await open_gate(cars[2])  # R2 now waits on a visit to K1
    results = await finished({1: r1, 2: r2})
    (r2_visit,) = await calls_of(results[2])
    assert_names_cycle(r2_visit, successor.id, results[1].id, results[2].id, "'K1'", "'K2'")
    assert superseded.id not in r2_visit.error.message
    assert (results[1].status, results[2].status) == ("succeeded", "failed")
    assert (await successor.result()).status == "succeeded"


async def test_a_cycle_forming_while_a_member_is_cancelled(stepped_env):
    """The cycle closes as one of its pending visits is cancelled: whichever wins,
    both trees end, at most one action is deadlocked, and it names a real cycle."""
    Car = fleet_class()
    for attempt in range(3):
        base = 10 * (attempt + 1)
        cars = {n: stepped_env.create(Car, id=base + n) for n in (1, 2)}
        keys = (f"A{attempt}", f"B{attempt}")
        r1, r2, member = await first_gate_open(cars, keys)

        await asyncio.sleep(0.05 * attempt)
        await asyncio.gather(open_gate(cars[2]), member.cancel())
        results = await finished({1: r1, 2: r2})
        visits = [(await calls_of(results[n]))[0] for n in (1, 2)]
        deadlocked = [v for v in visits if v.status == "deadlocked"]
        assert len(deadlocked) <= 1
        assert visits[0].status in ("cancelled", "succeeded", "deadlocked")
        assert results[1].status == ("succeeded" if visits[0].status == "succeeded" else "failed")
        for victim in deadlocked:
            assert_names_cycle(victim, r1.id, r2.id, *keys)
