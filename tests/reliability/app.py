"""The application the reliability tests' worker subprocesses run (``--app tests.reliability.app``).

A fleet tours with every car; the tree it builds (`EXPECTED_ACTIONS` actions) mixes
uncontended keys (claims, no lane workflow), keys shared by two actions (the lane
workflow takes over from the claim holder), child actions, a durable timer and an
after-callback. Every step body and the callback insert one `Effect` row naming the
action and the unit of work, in the step's own transaction, so "applied exactly
once" is a count: one row per (action, unit), none missing, none twice.

Per car (``CARS`` of them)::

    visit      step 0: effect, do wash, do honk
               step 1: effect, wait WAIT seconds, do inspect
               step 2: effect
               succeeded: effect
    wash       (lane garage/<id // 2>: two washes share it)
               step 0: effect
               step 1: effect, do polish
    polish     step 0: effect
    honk       step 0: effect
    inspect    (lane bay/<id // 2>)
               step 0: effect
               step 1: effect

and the fleet's ``tour``: step 0 effect + ``visit`` on every car, step 1 effect.
No lane ever holds more than two actions, so none is superseded: every action
must end ``succeeded``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

import stepped_temporal as stepped

CARS = 20
WAIT = 0.5


def configure_timeouts() -> None:
    """Activities heartbeat while user code runs, so a killed worker's activity is
    retried after ~2 s instead of the 10 s start-to-close timeout. The starter needs
    them too: a root's prepare activity takes the starting process's settings."""
    stepped.configure(
        activity_timeout=timedelta(seconds=10), heartbeat_timeout=timedelta(seconds=2)
    )


configure_timeouts()


class Base(DeclarativeBase):
    pass


class Effect(Base):
    """One unit of user work that committed: (action, unit) must appear exactly once."""

    __tablename__ = "reliability_effects"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    action_id: Mapped[str] = mapped_column(sa.String(300))
    unit: Mapped[str] = mapped_column(sa.String(40))


class RelFleet(stepped.Actor, Base):
    __tablename__ = "reliability_fleets"
    id: Mapped[int] = mapped_column(primary_key=True)

    def cars(self) -> list[RelCar]:
        session = Session.object_session(self)
        assert session is not None
        return list(session.scalars(sa.select(RelCar).order_by(RelCar.id)))


class RelCar(stepped.Actor, Base):
    __tablename__ = "reliability_cars"
    id: Mapped[int] = mapped_column(primary_key=True)


def effect(actor: Any, action_id: str, unit: str) -> None:
    """Record one unit of work in the running transaction."""
    session = Session.object_session(actor)
    assert session is not None
    session.add(Effect(action_id=action_id, unit=unit))


def step_effect(actor: Any, step: Any) -> None:
    effect(actor, step.action.id, f"step{step.index}")


tour = RelFleet.stepped_action("tour")


@tour.step
def _(fleet: RelFleet, step: Any) -> None:
    step_effect(fleet, step)
    step.on(fleet.cars(), "visit")


@tour.step
def _(fleet: RelFleet, step: Any) -> None:
    step_effect(fleet, step)


visit = RelCar.stepped_action("visit")


@visit.step
def _(car: RelCar, step: Any) -> None:
    step_effect(car, step)
    step.do("wash")
    step.do("honk")


@visit.step
def _(car: RelCar, step: Any) -> None:
    step_effect(car, step)
    step.wait(timedelta(seconds=WAIT))
    step.do("inspect")


@visit.step
def _(car: RelCar, step: Any) -> None:
    step_effect(car, step)


@visit.succeeded
def _(car: RelCar, action: Any) -> None:
    effect(car, action.id, "succeeded")


wash = RelCar.stepped_action("wash")
wash.concurrency_key(lambda car: f"garage/{car.id // 2}")


@wash.step
def _(car: RelCar, step: Any) -> None:
    step_effect(car, step)


@wash.step
def _(car: RelCar, step: Any) -> None:
    step_effect(car, step)
    step.do("polish")


polish = RelCar.stepped_action("polish")


@polish.step
def _(car: RelCar, step: Any) -> None:
    step_effect(car, step)


honk = RelCar.stepped_action("honk")


@honk.step
def _(car: RelCar, step: Any) -> None:
    step_effect(car, step)


inspection = RelCar.stepped_action("inspect")
inspection.concurrency_key(lambda car: f"bay/{car.id // 2}")


@inspection.step
def _(car: RelCar, step: Any) -> None:
    step_effect(car, step)


@inspection.step
def _(car: RelCar, step: Any) -> None:
    step_effect(car, step)


#: the units of work each action records when it succeeds
UNITS: dict[str, tuple[str, ...]] = {
    "tour": ("step0", "step1"),
    "visit": ("step0", "step1", "step2", "succeeded"),
    "wash": ("step0", "step1"),
    "polish": ("step0",),
    "honk": ("step0",),
    "inspect": ("step0", "step1"),
}
#: actions in one tour's tree
EXPECTED_ACTIONS = 1 + 5 * CARS
#: effect rows one tour's tree must leave
EXPECTED_EFFECTS = len(UNITS["tour"]) + CARS * sum(
    len(UNITS[name]) for name in ("visit", "wash", "polish", "honk", "inspect")
)


def create_fleet(engine: sa.Engine) -> None:
    """Create the tables and the fleet with its cars (ids 1..CARS)."""
    Base.metadata.create_all(engine)
    with Session(engine) as session, session.begin():
        session.add(RelFleet(id=1))
        session.add_all(RelCar(id=i) for i in range(1, CARS + 1))
