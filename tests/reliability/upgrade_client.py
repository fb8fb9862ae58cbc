"""An application server of one version in the rolling-upgrade test (issue 27, item 3;
tests/reliability/test_rolling_upgrade.py): run by the previous release's Python or
the new code's, beside a copy of ``upgrade_app``, as ``python upgrade_client.py
--address A --database-url U --task-queue Q --fleets 11,13 --every 3.5 --delay 1``.

After `delay` seconds it starts one fleet's ``service`` every `every` seconds
(``stepped.start``, S9.1), printing ``started FLEET ROOT_ID``, and completes each car's
outbound ``hold`` from outside (``stepped.complete``, S6.1) once the car's lane shows
the last ``work`` pending and every earlier one superseded (``stepped.lane``, S9.5) —
so which work performs never depends on timing, nor on which version's worker answers.
Calls that fail (a worker stopping, a version that cannot answer) are printed and
asked again. Exits once every hold of its fleets is completed. Public API only.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import sqlalchemy as sa
from sqlalchemy.orm import Session
from temporalio.client import Client
from upgrade_app import UpgradeCar, UpgradeFleet, dock, version

import stepped_temporal as stepped


def ready(state: stepped.LaneState, works: int) -> bool:
    """The last work waits behind the hold; every earlier one was superseded. (As in
    completer.py, which this file cannot import: it runs beside upgrade_app alone.)"""
    superseded = [h for h in state.recent if h.how == "superseded"]
    return state.performing is not None and len(state.pending) == 1 and len(superseded) >= works - 1


async def start_trees(engine: sa.Engine, fleets: list[int], every: float, delay: float) -> None:
    await asyncio.sleep(delay)
    for number, fleet_id in enumerate(fleets):
        if number:
            await asyncio.sleep(every)
        with Session(engine) as session:
            fleet = session.get_one(UpgradeFleet, fleet_id)
        while True:
            try:
                handle = await asyncio.wait_for(stepped.start(fleet, "service"), 30)
                break
            except Exception as error:
                print(f"fleet {fleet_id}: start: {error!r}", file=sys.stderr, flush=True)
                await asyncio.sleep(0.5)
        print(f"started {fleet_id} {handle.id}", flush=True)


async def complete_holds(
    engine: sa.Engine, fleets: list[int], starting: asyncio.Task[None]
) -> None:
    """Complete each car's hold once it is ready, until all are and every tree started.

    A call that failed (e.g. an update that timed out while a worker was stopped) may
    still have completed the hold, after which its lane no longer looks ready: such a
    car is asked again whatever its lane shows, and False then means "already" (S6.3).
    """
    done: set[int] = set()
    tried: set[int] = set()
    query = sa.select(UpgradeCar).where(UpgradeCar.fleet_id.in_(fleets))
    while True:
        with Session(engine) as session:
            cars = [car for car in session.scalars(query) if car.id not in done]
        if not cars and starting.done():
            return
        for car in cars:
            try:
                if car.id not in tried:
                    state = await asyncio.wait_for(stepped.lane(dock(car)), 5)
                    if not ready(state, car.works):
                        continue
                    tried.add(car.id)
                if await asyncio.wait_for(stepped.complete(car, "hold"), 10):
                    print(f"completed hold of car {car.id}", flush=True)
                else:
                    print(f"hold of car {car.id} completed by an earlier call", flush=True)
                done.add(car.id)
            except Exception as error:
                print(f"car {car.id}: {error!r}", file=sys.stderr, flush=True)
        await asyncio.sleep(0.2)


async def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("--address", "--database-url", "--task-queue", "--fleets"):
        parser.add_argument(name, required=True)
    parser.add_argument("--every", type=float, default=3.0)
    parser.add_argument("--delay", type=float, default=0.0)
    args = parser.parse_args()
    fleets = [int(f) for f in args.fleets.split(",")]
    client = await Client.connect(args.address)
    engine = sa.create_engine(args.database_url)
    stepped.configure(client=client, engine=engine, task_queue=args.task_queue)
    print(f"client: stepped_temporal {version()}; fleets {fleets}", flush=True)
    starting = asyncio.create_task(start_trees(engine, fleets, args.every, args.delay))
    await complete_holds(engine, fleets, starting)
    await starting
    print("client: every hold completed", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
