"""Completes the fleet's outbound ``hold`` actions from a process of its own, as an
outside system would (S6.1): ``python -m tests.reliability.completer --address A
--database-url U --task-queue Q --fleet F``.

A car's hold is completed once its lane shows the car's last ``work`` pending
and the others superseded — so which work performs never depends on timing. The
lane is read with `stepped.lane()` (a query the workers answer, so it fails while
they are being killed: it is simply asked again). Prints one line per completion
and runs until killed. ``--fleet 0`` serves every fleet, also those created later.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import sqlalchemy as sa
from sqlalchemy.orm import Session
from temporalio.client import Client

import stepped_temporal as stepped
from stepped_temporal import config
from tests.reliability.fleet_app import ProdCar, dock


def ready(state: stepped.LaneState, works: int) -> bool:
    """The last work waits behind the hold; every earlier one was superseded."""
    superseded = [h for h in state.recent if h.how == "superseded"]
    return state.performing is not None and len(state.pending) == 1 and len(superseded) >= works - 1


async def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("--address", "--database-url", "--task-queue"):
        parser.add_argument(name, required=True)
    parser.add_argument("--fleet", type=int, default=0, help="0: every fleet, also later ones")
    args = parser.parse_args()
    client = await Client.connect(args.address)
    config.configure(client=client, database_url=args.database_url, task_queue=args.task_queue)
    engine = config.get_engine()
    done: set[int] = set()
    print(f"completer: fleet {args.fleet or 'every fleet'}", flush=True)
    while True:
        query = sa.select(ProdCar)
        if args.fleet:
            query = query.where(ProdCar.fleet_id == args.fleet)
        with Session(engine) as session:
            cars = [car for car in session.scalars(query) if car.id not in done]
        if args.fleet and not cars and done:
            print("completer: all holds completed", flush=True)
            break
        for car in cars:
            try:
                state = await asyncio.wait_for(stepped.lane(dock(car)), 5)
                if not ready(state, car.works):
                    continue
                if await asyncio.wait_for(stepped.complete(car, "hold"), 10):
                    print(f"completed hold of car {car.id}", flush=True)
                    done.add(car.id)
            except Exception as error:  # workers being killed: ask again later
                print(f"car {car.id}: {error!r}", file=sys.stderr, flush=True)
        await asyncio.sleep(0.2)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
