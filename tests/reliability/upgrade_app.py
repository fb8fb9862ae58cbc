"""The application of the rolling-upgrade test (issue 27, item 3;
tests/reliability/test_rolling_upgrade.py). Workers and clients of the previous
release and of the new code import it side by side — as the top-level module
``upgrade_app``, copied out of the work tree so that the previous release's
processes never see the new package — so it uses only what both have: the public
API of the release it was written against (fda2b05: `stepped.Actor`,
`stepped_action(outbound=, timeout=, job=, retry=, lane=)`, `Definition`'s
decorators, `stepped.RetryPolicy`, `stepped.configure`) and SQLAlchemy. It repeats
the shape of fleet_app.py on purpose: that one evolves with the new code (and may use
its internals); this one must stay importable, alone, by the previous release.

Each car's row says how its part of the tree looks, so a worker of either version
needs nothing but the database. Every unit of user work inserts one `Effect` row
(action, unit) in its own transaction, so "exactly once" and "the same effects as
on one version" are counts. Per car::

    visit  step 0: effect; do hold (outbound, lane dock/<car>), then work 1..works
                   (lane dock/<car>, policy supersede: the last survives, S4.2,
                   S4.8); the client that started the tree completes hold from
                   outside once the last work is pending (S6.1)
           step 1: effect; do fuel 7 (checksum, lane pump/<car>; twice when
                   fuel_twice: the second shares or finds it achieved, S4.3/S3.4);
                   do tow (a job failing its first job_failures attempts, retried,
                   S6.4/S8.4); do wash 1..washes (lane wash/<car>, policy queue:
                   all perform, in order, S4.10); do park when parked (outbound,
                   2 s timeout, never completed: timed_out, S7.1, and so the visit
                   and the fleet's service fail, S3.14); wait pause seconds (S3.12)
           step 2: effect; do honk
           succeeded / failed: effect
    wash   step 0: effect; wait 0.3 s      fuel  step 0: effect; succeeded: effect

and a fleet's ``service``: step 0 effect + ``visit`` on every car; step 1 effect.
"""

from __future__ import annotations

import importlib.metadata
import random
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

import stepped_temporal as stepped


def configure_timeouts() -> None:
    """A killed worker's activity is retried after ~2 s (heartbeats), not after the
    10 s start-to-close timeout."""
    stepped.configure(
        activity_timeout=timedelta(seconds=10), heartbeat_timeout=timedelta(seconds=2)
    )


def version() -> str:
    """Which stepped_temporal this process runs: its version and where it lives."""
    return f"{importlib.metadata.version('stepped_temporal')} at {stepped.__file__}"


configure_timeouts()
if __name__ == "upgrade_app":  # in a worker or client: say which code runs it
    print(f"upgrade_app: stepped_temporal {version()}", flush=True)


class Base(DeclarativeBase):
    pass


class Effect(Base):
    """One unit of user work that committed: (action, unit) must appear exactly once."""

    __tablename__ = "upgrade_effects"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    action_id: Mapped[str] = mapped_column(sa.String(300))
    unit: Mapped[str] = mapped_column(sa.String(40))


class JobAttempt(Base):
    """One attempt of a job, written outside the job's transaction (which a failing
    attempt rolls back), so an attempt knows how many came before it."""

    __tablename__ = "upgrade_job_attempts"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    action_id: Mapped[str] = mapped_column(sa.String(300))


class UpgradeFleet(stepped.Actor, Base):
    __tablename__ = "upgrade_fleets"
    id: Mapped[int] = mapped_column(primary_key=True)

    def cars(self) -> list[UpgradeCar]:
        session = Session.object_session(self)
        assert session is not None
        query = sa.select(UpgradeCar).where(UpgradeCar.fleet_id == self.id)
        return list(session.scalars(query.order_by(UpgradeCar.id)))


class UpgradeCar(stepped.Actor, Base):
    __tablename__ = "upgrade_cars"
    id: Mapped[int] = mapped_column(primary_key=True)
    fleet_id: Mapped[int] = mapped_column()
    works: Mapped[int] = mapped_column()
    fuel_twice: Mapped[bool] = mapped_column()
    job_failures: Mapped[int] = mapped_column()
    washes: Mapped[int] = mapped_column()
    parked: Mapped[bool] = mapped_column()
    pause: Mapped[float] = mapped_column()


def effect(actor: Any, action_id: str, unit: str) -> None:
    """Record one unit of work in the running transaction."""
    session = Session.object_session(actor)
    assert session is not None
    session.add(Effect(action_id=action_id, unit=unit))


def step_effect(actor: Any, step: Any) -> None:
    effect(actor, step.action.id, f"step{step.index}")


service = UpgradeFleet.stepped_action("service")


@service.step
def _(fleet: UpgradeFleet, step: Any) -> None:
    step_effect(fleet, step)
    step.on(fleet.cars(), "visit")


service.step(step_effect)

visit = UpgradeCar.stepped_action("visit")


@visit.step
def _(car: UpgradeCar, step: Any) -> None:
    step_effect(car, step)
    step.do("hold")
    for number in range(1, car.works + 1):
        step.do("work", number)


@visit.step
def _(car: UpgradeCar, step: Any) -> None:
    step_effect(car, step)
    step.do("fuel", 7)
    if car.fuel_twice:
        step.do("fuel", 7)
    step.do("tow")
    for number in range(1, car.washes + 1):
        step.do("wash", number)
    if car.parked:
        step.do("park")
    step.wait(timedelta(seconds=car.pause))


@visit.step
def _(car: UpgradeCar, step: Any) -> None:
    step_effect(car, step)
    step.do("honk")


@visit.succeeded
def _(car: UpgradeCar, action: Any) -> None:
    effect(car, action.id, "succeeded")


@visit.failed
def _(car: UpgradeCar, action: Any) -> None:
    effect(car, action.id, "failed")


def dock(car: UpgradeCar) -> str:
    return f"dock/{car.id}"


hold = UpgradeCar.stepped_action("hold", outbound=True)
hold.concurrency_key(dock)
hold.step(step_effect)

work = UpgradeCar.stepped_action("work", lane="supersede")
work.concurrency_key(lambda car, number: dock(car))
work.step(lambda car, step, number: step_effect(car, step))

fuel = UpgradeCar.stepped_action("fuel")
fuel.concurrency_key(lambda car, liters: f"pump/{car.id}")
fuel.checksum(lambda car, liters: liters)
fuel.step(lambda car, step, liters: step_effect(car, step))


@fuel.succeeded
def _(car: UpgradeCar, action: Any, liters: int) -> None:
    effect(car, action.id, "succeeded")


wash = UpgradeCar.stepped_action("wash", lane="queue")
wash.concurrency_key(lambda car, number: f"wash/{car.id}")


@wash.step
def _(car: UpgradeCar, step: Any, number: int) -> None:
    step_effect(car, step)
    step.wait(timedelta(seconds=0.3))


def tow_job(action: Any) -> None:
    """Fails the car's first `job_failures` attempts, then records its effect."""
    session = Session.object_session(action.actor)
    assert session is not None
    bind = session.get_bind()
    engine = bind if isinstance(bind, sa.Engine) else bind.engine
    with engine.begin() as connection:  # outside the job's transaction
        connection.execute(sa.insert(JobAttempt).values(action_id=action.id))
        attempts = connection.scalar(
            sa.select(sa.func.count()).where(JobAttempt.action_id == action.id)
        )
    if attempts <= action.actor.job_failures:
        raise RuntimeError(f"tow truck broke down (attempt {attempts})")
    effect(action.actor, action.id, "job")


UpgradeCar.stepped_action(
    "tow",
    job=tow_job,
    timeout=timedelta(seconds=90),
    retry=stepped.RetryPolicy(
        maximum_attempts=40,
        initial_interval=timedelta(milliseconds=200),
        backoff_coefficient=1.0,
    ),
)

park = UpgradeCar.stepped_action("park", outbound=True, timeout=timedelta(seconds=2))
park.step(step_effect)

honk = UpgradeCar.stepped_action("honk")
honk.step(step_effect)


@dataclass(frozen=True)
class Shape:
    """One car's part of the tree."""

    works: int
    fuel_twice: bool
    job_failures: int
    washes: int
    parked: bool
    pause: float


def shapes(seed: int, cars: int) -> list[Shape]:
    """The cars of one tree: the same seed, the same tree; one car in three parked."""
    rng = random.Random(seed)
    return [
        Shape(
            works=rng.randint(1, 3),
            fuel_twice=rng.random() < 0.5,
            job_failures=rng.randint(0, 2),
            washes=rng.randint(2, 3),
            parked=rng.random() < 1 / 3,
            pause=rng.choice((0.5, 2.0, 4.0)),
        )
        for _ in range(cars)
    ]


def expected_actions(cars: list[Shape]) -> int:
    """Actions in a service tree of these cars (the root included)."""
    # visit, hold, works, fuel (twice), tow, washes, and park (the visit fails) or honk
    per_car = [1 + 1 + s.works + 1 + s.fuel_twice + 1 + s.washes + 1 for s in cars]
    return 1 + sum(per_car)


#: the first car id of fleet `f` is f * CAR_IDS + 1
CAR_IDS = 1_000


def create_fleet(engine: sa.Engine, fleet_id: int, cars: list[Shape]) -> None:
    """Create the tables (once) and fleet `fleet_id` with its cars."""
    Base.metadata.create_all(engine)
    with Session(engine) as session, session.begin():
        session.add(UpgradeFleet(id=fleet_id))
        session.add_all(
            UpgradeCar(id=fleet_id * CAR_IDS + 1 + number, fleet_id=fleet_id, **vars(shape))
            for number, shape in enumerate(cars)
        )
