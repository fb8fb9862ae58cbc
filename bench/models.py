"""The benchmark's actors and Stepped actions.

Both the client and the stepped worker subprocess import this module, so the
actor registry matches on both sides. Every leaf does the same write as the
raw baseline's activity (`bench.raw.visit`): one car's ``visits`` plus one, in
its own transaction.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

import stepped_temporal as stepped
from stepped_temporal.status import LANE_POLICIES


class BenchBase(DeclarativeBase):
    """Tables of the benchmark's models (only these are dropped and created)."""


class Car(stepped.Actor, BenchBase):
    """One row that leaves write to."""

    __tablename__ = "bench_cars"
    __stepped_name__ = "BenchCar"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    visits: Mapped[int] = mapped_column(default=0)

    def visit(self) -> None:
        self.visits += 1

    def next_car(self) -> Car:
        session = Session.object_session(self)
        assert session is not None
        found = session.get(Car, self.id + 1)
        if found is None:
            raise LookupError(f"BenchCar/{self.id + 1} is missing: seed the chain's cars first")
        return found


class Fleet(stepped.Actor, BenchBase):
    """The root of a fan-out: its cars are a block of consecutive ids."""

    __tablename__ = "bench_fleets"
    __stepped_name__ = "BenchFleet"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)

    def cars(self, first: int, count: int) -> list[Car]:
        session = Session.object_session(self)
        assert session is not None
        query = sa.select(Car).where(Car.id.between(first, first + count - 1)).order_by(Car.id)
        return list(session.scalars(query))


# The leaf: no steps, so one generated step calls Car.visit() (one transaction).
Car.stepped_action("visit")

# Fan-out: one root action whose single step starts `visit` on `count` cars
# (distinct actors, so distinct lanes: the visits do not supersede each other).
fanout = Fleet.stepped_action("fanout")


@fanout.step
def _fanout(fleet: Fleet, step: stepped.Step, first: int, count: int) -> None:
    step.on(fleet.cars(first, count), "visit")


# Chain: each level writes its car and starts the same action on the next car.
chain = Car.stepped_action("chain")


@chain.step
def _chain(car: Car, step: stepped.Step, depth: int) -> None:
    car.visit()
    if depth > 1:
        step.on(car.next_car(), "chain", depth - 1)


# Lane: the visit, in the lane named by its argument (one key for all, or one each).
bump = Car.stepped_action("bump")
bump.concurrency_key(lambda car, key: key)
bump.step(lambda car, step, key: car.visit())

# Lane policies (S4.10): the same visit in the named lane, one action per policy
for _policy in LANE_POLICIES[1:]:  # all but the default, which is `bump`
    _bump = Car.stepped_action(f"bump_{_policy}", lane=_policy)
    _bump.concurrency_key(lambda car, key: key)
    _bump.step(lambda car, step, key: car.visit())

# Lane with waiting parents (S4.9): a relay in a lane of its own asks for the bump
# and waits on it, so every contended join carries a dependent (and a probe).
relay = Car.stepped_action("relay")
relay.step(lambda car, step, key: step.do("bump", key))

# Checksum: the visit, skipped when the same `tag` was achieved on this car.
touch = Car.stepped_action("touch")
touch.checksum(lambda car, tag: tag)
touch.step(lambda car, step, tag: car.visit())

# Steps: one action of many steps, each writing its car once (S11.1: past a tenth of
# the history limit it continues as new between steps).
STEP_COUNTS = (200, 1000)
for _count in STEP_COUNTS:
    _steps = Car.stepped_action(f"steps_{_count}")
    for _ in range(_count):
        _steps.step(lambda car, step: car.visit())
