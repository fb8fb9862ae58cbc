"""Record the histories of a representative tree, for tests/test_replay.py.

Run it from a checkout of the version to record (its package and tests first on
sys.path), e.g. at commit C: ``python tests/histories/record.py . tests/histories/C``.
A third argument ``dev`` records on the dev server instead, where Stepped's search
attributes are registered (so the histories hold their upserts) and the waits are
seconds, not hours: ``… tests/histories/C-dev dev``.
"""

import asyncio
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, sys.argv[1])
import stepped_temporal as stepped
from stepped_temporal.testing import SteppedTestEnvironment
from tests.support import car_class, performing, until

OUT = Path(sys.argv[2])
SERVER = sys.argv[3] if len(sys.argv) > 3 else "time-skipping"
DEV = SERVER == "dev"


async def main():
    async with SteppedTestEnvironment.start(server=SERVER) as env:
        Car = car_class()
        tour = Car.stepped_action("tour")

        @tour.before
        def _(car, action, others):
            action.arguments = [others, "extra"]

        @tour.step
        def _(car, step, others, extra):
            step.wait(timedelta(seconds=2) if DEV else timedelta(minutes=3))
            step.on(others, "drive", 3)

        @tour.step
        def _(car, step, others, extra):
            step.do("honk")
            step.do("visit", "A")
            step.do("visit", "B")
            step.do("visit", "C")

        @tour.succeeded
        def _(car, action, others, extra):
            car.change_location("home")

        # long enough that skipping time while the tours run never times the blocker out
        block_timeout = timedelta(hours=5) if DEV else timedelta(days=365)
        block = Car.stepped_action("block", outbound=True, timeout=block_timeout)
        block.concurrency_key(lambda car: "garage")
        block.step(lambda car, step: None)
        visit = Car.stepped_action("visit")
        visit.concurrency_key(lambda car, label: "garage")
        visit.step(lambda car, step, label: car.change_location(label))

        def tow(action):
            action.actor.location = "towed"

        Car.stepped_action("tow", job=tow)
        Car.prepend_stepped_action_step("tow")(lambda car, step: car.honk())
        slow = Car.stepped_action("slow", timeout=timedelta(seconds=30))
        slow.step(lambda car, step: time.sleep(0.5))
        slow.step(lambda car, step: step.wait(timedelta(seconds=20) if DEV else timedelta(hours=1)))
        wreck = Car.stepped_action("wreck")

        @wreck.step
        def _(car, step):
            raise RuntimeError("hit a wall")

        rally = Car.stepped_action("rally")
        rally.step(lambda car, step, others: step.on(others, "wreck"))
        cars = [env.create(Car, id=n) for n in (1, 2, 3)]
        blocker = await stepped.start(cars[0], "block")
        await until(blocker, performing)
        first = await stepped.start(cars[0], "tour", cars[1:])
        second = await stepped.start(cars[0], "tour", cars[1:])
        for _ in range(300):
            st = await first.describe()
            if len(st.steps) == 2 and len(st.steps[1].actions) >= 4:
                break
            await env._let_time_run(0.05)
        await asyncio.sleep(1)
        assert await stepped.complete(cars[0], "block")
        towed = await stepped.start(cars[1], "tow")
        sl = await stepped.start(cars[2], "slow")
        await until(sl, performing)
        await sl.cancel()
        rallied = await stepped.start(cars[0], "rally", cars[1:])
        cycle = await deadlock_across_trees(env, Car)
        handles = (first, second, blocker, towed, sl, rallied, *cycle)
        results = [await h.result() for h in handles]
        print([r.status for r in results])
        ids = [r.id for r in results]
        for r in [*results[:2], *results[-3:]]:
            for s in r.steps:
                ids += list(s.actions)
        ids += ["stepped-lane/Car/1/tour", "stepped-lane/garage", "stepped-lane/K1"]
        ids += ["stepped-lane/K2"]
        OUT.mkdir(parents=True, exist_ok=True)
        n = 0
        for i in dict.fromkeys(ids):
            try:
                h = await env.client.get_workflow_handle(i).fetch_history()
            except Exception as e:
                print("skip", i, e)
                continue
            (OUT / f"{n:02d}.json").write_text(h.to_json())
            n += 1
        print("wrote", n)


async def deadlock_across_trees(env, Car):
    """S4.9: lead(K1) waits on a visit to K2 while lead(K2) waits on one to K1."""
    gate = Car.stepped_action("gate", outbound=True)
    gate.step(lambda car, step: None)
    lead = Car.stepped_action("lead")
    lead.concurrency_key(lambda car, own, other: own)
    lead.step(lambda car, step, own, other: step.do("gate"))
    lead.step(lambda car, step, own, other: step.do("enter", other))
    enter = Car.stepped_action("enter")
    enter.concurrency_key(lambda car, key: key)
    enter.step(lambda car, step, key: car.honk())
    leaders = [env.create(Car, id=n) for n in (4, 5)]
    roots = [
        await stepped.start(leaders[0], "lead", "K1", "K2"),
        await stepped.start(leaders[1], "lead", "K2", "K1"),
    ]
    for root in roots:
        state = await until(root, lambda s: s.steps and s.steps[0].actions)
        await until(stepped.action_handle(state.steps[0].actions[0]), performing)
    for leader in leaders:
        while not await stepped.complete(leader, "gate"):
            await asyncio.sleep(0.05)
    return roots


asyncio.run(main())
