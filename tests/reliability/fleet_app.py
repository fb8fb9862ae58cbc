"""The production-shaped application of the many-worker crash tests (``--app
tests.reliability.fleet_app``): a fleet's ``service`` tree of several hundred actions
with contended lanes that supersede and share, outbound actions completed from
another process (``tests/reliability/completer.py``), jobs that fail and are
retried, an action that times out and one that does not.

Each car's row says how its part of the tree looks (chosen from the test's seed),
so the worker needs nothing but the database. Every unit of user work inserts one
`Effect` row (action, unit) in its own transaction: "exactly once" is a count.

Per car::

    visit    step 0: effect; do hold (outbound, lane dock/<car>), then work 1..works
                     (lane dock/<car>: behind hold, each join supersedes the one
                     before it, S4.2 and S4.8; the completer completes hold only once
                     the last has joined, so the last performs and the rest are
                     superseded, whatever the timing)
             step 1: effect; do fuel 7 (checksum, lane pump/<car>; twice when
                     fuel_twice: the second shares the first or finds it achieved,
                     S4.3/S3.4 — succeeded, no effect, either way); do tow (a job
                     failing its first job_failures attempts, retried; a 90 s
                     timeout that never fires); do park when parked (outbound,
                     2 s timeout, never completed: timed_out, S7.1, so this visit
                     fails at step 1 and the fleet's service fails, S3.14);
                     wait 0.3 s
             step 2: effect; do honk
             succeeded / failed: effect
    fuel     step 0: effect; succeeded: effect (then the achievement is granted)

and the fleet's ``service``: step 0 effect + ``visit`` on every car, step 1 effect.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

import stepped_temporal as stepped
from stepped_temporal.config import get_engine

#: Losses in a row that end a unit (losses.py), above the default 5: the many-kills
#: test SIGKILLs one of three workers every half second or so, and a unit slowed by
#: that load loses its worker 4 times in a row at times — every time really lost,
#: but no poison pill, and that test expects every action to end as undisturbed.
LOSS_LIMIT = 20


def configure_timeouts() -> None:
    """A killed worker's activity is retried after ~2 s (heartbeats), not after the
    10 s start-to-close timeout; the starter's prepare takes these too."""
    stepped.configure(
        activity_timeout=timedelta(seconds=10),
        heartbeat_timeout=timedelta(seconds=2),
        worker_loss_limit=LOSS_LIMIT,
    )


configure_timeouts()


class Base(DeclarativeBase):
    pass


class Effect(Base):
    """One unit of user work that committed: (action, unit) must appear exactly once."""

    __tablename__ = "prod_effects"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    action_id: Mapped[str] = mapped_column(sa.String(300))
    unit: Mapped[str] = mapped_column(sa.String(40))


class JobAttempt(Base):
    """One attempt of a job, written outside the job's transaction (which a failing
    attempt rolls back), so an attempt knows how many came before it."""

    __tablename__ = "prod_job_attempts"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    action_id: Mapped[str] = mapped_column(sa.String(300))


class ProdFleet(stepped.Actor, Base):
    __tablename__ = "prod_fleets"
    id: Mapped[int] = mapped_column(primary_key=True)

    def cars(self) -> list[ProdCar]:
        session = Session.object_session(self)
        assert session is not None
        query = sa.select(ProdCar).where(ProdCar.fleet_id == self.id).order_by(ProdCar.id)
        return list(session.scalars(query))


class ProdCar(stepped.Actor, Base):
    __tablename__ = "prod_cars"
    id: Mapped[int] = mapped_column(primary_key=True)
    fleet_id: Mapped[int] = mapped_column()
    works: Mapped[int] = mapped_column()
    fuel_twice: Mapped[bool] = mapped_column()
    job_failures: Mapped[int] = mapped_column()
    parked: Mapped[bool] = mapped_column()


def effect(actor: Any, action_id: str, unit: str) -> None:
    """Record one unit of work in the running transaction."""
    session = Session.object_session(actor)
    assert session is not None
    session.add(Effect(action_id=action_id, unit=unit))


def step_effect(actor: Any, step: Any) -> None:
    effect(actor, step.action.id, f"step{step.index}")


service = ProdFleet.stepped_action("service")


@service.step
def _(fleet: ProdFleet, step: Any) -> None:
    step_effect(fleet, step)
    step.on(fleet.cars(), "visit")


@service.step
def _(fleet: ProdFleet, step: Any) -> None:
    step_effect(fleet, step)


visit = ProdCar.stepped_action("visit")


@visit.step
def _(car: ProdCar, step: Any) -> None:
    step_effect(car, step)
    step.do("hold")
    for number in range(1, car.works + 1):
        step.do("work", number)


@visit.step
def _(car: ProdCar, step: Any) -> None:
    step_effect(car, step)
    step.do("fuel", 7)
    if car.fuel_twice:
        step.do("fuel", 7)
    step.do("tow")
    if car.parked:
        step.do("park")
    step.wait(timedelta(seconds=0.3))


@visit.step
def _(car: ProdCar, step: Any) -> None:
    step_effect(car, step)
    step.do("honk")


@visit.succeeded
def _(car: ProdCar, action: Any) -> None:
    effect(car, action.id, "succeeded")


@visit.failed
def _(car: ProdCar, action: Any) -> None:
    effect(car, action.id, "failed")


def dock(car: ProdCar) -> str:
    return f"dock/{car.id}"


hold = ProdCar.stepped_action("hold", outbound=True)
hold.concurrency_key(dock)
hold.step(lambda car, step: step_effect(car, step))

work = ProdCar.stepped_action("work")
work.concurrency_key(lambda car, number: dock(car))
work.step(lambda car, step, number: step_effect(car, step))

fuel = ProdCar.stepped_action("fuel")
fuel.concurrency_key(lambda car, liters: f"pump/{car.id}")
fuel.checksum(lambda car, liters: liters)
fuel.step(lambda car, step, liters: step_effect(car, step))


@fuel.succeeded
def _(car: ProdCar, action: Any, liters: int) -> None:
    effect(car, action.id, "succeeded")


def tow_job(action: Any) -> None:
    """Fails the car's first `job_failures` attempts, then records its effect."""
    with get_engine().begin() as connection:  # outside the job's transaction
        connection.execute(sa.insert(JobAttempt).values(action_id=action.id))
        attempts = connection.scalar(
            sa.select(sa.func.count()).where(JobAttempt.action_id == action.id)
        )
    if attempts <= action.actor.job_failures:
        raise RuntimeError(f"tow truck broke down (attempt {attempts})")
    effect(action.actor, action.id, "job")


ProdCar.stepped_action(
    "tow",
    job=tow_job,
    timeout=timedelta(seconds=90),
    retry=stepped.RetryPolicy(
        maximum_attempts=40,
        initial_interval=timedelta(milliseconds=200),
        backoff_coefficient=1.0,
    ),
)

park = ProdCar.stepped_action("park", outbound=True, timeout=timedelta(seconds=2))
park.step(lambda car, step: step_effect(car, step))

honk = ProdCar.stepped_action("honk")
honk.step(lambda car, step: step_effect(car, step))


@dataclass(frozen=True)
class Shape:
    """One car's part of the tree."""

    works: int
    fuel_twice: bool
    job_failures: int
    parked: bool


def shapes(seed: int, cars: int, parked: int = 2) -> list[Shape]:
    """The cars of a seed: the same seed, the same tree."""
    rng = random.Random(seed)
    parking = set(rng.sample(range(cars), min(parked, cars)))
    return [
        Shape(rng.randint(1, 4), rng.random() < 0.5, rng.randint(0, 2), n in parking)
        for n in range(cars)
    ]


#: the first car id of fleet `f` is f * CAR_IDS + 1
CAR_IDS = 10_000


def create_fleet(engine: sa.Engine, fleet_id: int, cars: list[Shape]) -> None:
    """Create the tables (once) and fleet `fleet_id` with its cars."""
    Base.metadata.create_all(engine)
    with Session(engine) as session, session.begin():
        session.add(ProdFleet(id=fleet_id))
        session.add_all(
            ProdCar(
                id=fleet_id * CAR_IDS + 1 + number,
                fleet_id=fleet_id,
                works=shape.works,
                fuel_twice=shape.fuel_twice,
                job_failures=shape.job_failures,
                parked=shape.parked,
            )
            for number, shape in enumerate(cars)
        )


def expected_actions(cars: list[Shape]) -> int:
    """Actions in a service tree of these cars (the root included)."""
    per_car = [1 + 1 + s.works + 1 + s.fuel_twice + 1 + s.parked + (not s.parked) for s in cars]
    return 1 + sum(per_car)
