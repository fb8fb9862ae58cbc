"""The application of the poison-pill crash tests (``--app tests.reliability.poison_app``):
units of user code that kill their own worker (issue 27, item 5; S8.2, losses.py).

Each `Lab` row carries a *script*: what its dosed unit does at each run, in order
— ``kill`` (SIGKILL its own worker process, as the kernel's OOM killer would),
``raise`` (a failure of its code: an unhandled RuntimeError, retried) or ``ok`` —
the last entry repeating.
Every run of a dosed unit is counted in `Dose`, committed outside the unit's
transaction (which a killed or failing run never commits), so a test knows how
many times each unit ran. Units that finish insert an `Effect` row.

    ward        step 0: do pill                    (its parent: fails with it, S3.14)
    pill        step 0: dosed                      (a claimed leaf: run inside prepare)
    late_pill   step 0: effect; step 1: dosed      (a step activity)
    job_pill    job: dosed                         (a job activity)
    hooked      before: dosed; step 0: effect      (a before hook, inside prepare)
    after_pill  step 0: effect; succeeded: dosed   (an after-callback: the finish activity)
    tick(n)     step 0: effect                     (healthy work beside the pills, each
                                                    on a key of its own)

Workers give up on a unit after `LIMIT` losses in a row
(`configure(worker_loss_limit=LIMIT)`), so the tests stay short.
"""

from __future__ import annotations

import os
import signal
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

import stepped_temporal as stepped
from stepped_temporal.config import get_engine

#: losses in a row that end a unit (the default is 5)
LIMIT = 3
#: retries come at once: the tests wait for lost workers, not for backoff
FAST = stepped.RetryPolicy(initial_interval=timedelta(milliseconds=200), backoff_coefficient=1.0)


def configure() -> None:
    """A lost worker's activity is retried after ~2 s (heartbeats); the starter's
    prepare takes these too. The workers read the loss limit, and retry a dose's
    RuntimeError (only ValueError is handled: it would fail the action at once)."""
    stepped.configure(
        activity_timeout=timedelta(seconds=10),
        heartbeat_timeout=timedelta(seconds=2),
        worker_loss_limit=LIMIT,
        handle_exceptions=[ValueError],
    )


configure()


class Base(DeclarativeBase):
    pass


class Effect(Base):
    """A unit of user work that committed."""

    __tablename__ = "poison_effects"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    action_id: Mapped[str] = mapped_column(sa.String(300))
    unit: Mapped[str] = mapped_column(sa.String(40))


class Dose(Base):
    """One run of a dosed unit, committed before it does what its script says."""

    __tablename__ = "poison_doses"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    action_id: Mapped[str] = mapped_column(sa.String(300))
    unit: Mapped[str] = mapped_column(sa.String(40))
    fate: Mapped[str] = mapped_column(sa.String(10))


class Lab(stepped.Actor, Base):
    __tablename__ = "poison_labs"
    id: Mapped[int] = mapped_column(primary_key=True)
    #: what the dosed unit does at each run, comma-separated; the last repeats
    script: Mapped[str] = mapped_column(sa.String(200), default="ok")


def effect(lab: Lab, action_id: str, unit: str) -> None:
    session = Session.object_session(lab)
    assert session is not None
    session.add(Effect(action_id=action_id, unit=unit))


def dose(lab: Lab, action_id: str, unit: str) -> None:
    """Run `unit` as the lab's script says for this run."""
    fates = lab.script.split(",")
    with get_engine().begin() as connection:  # outside the unit's transaction
        runs = connection.scalar(
            sa.select(sa.func.count()).where(Dose.action_id == action_id, Dose.unit == unit)
        )
        fate = fates[min(int(runs or 0), len(fates) - 1)]
        connection.execute(sa.insert(Dose).values(action_id=action_id, unit=unit, fate=fate))
    if fate == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if fate == "raise":
        raise RuntimeError(f"{unit} of {action_id} failed (run {runs})")
    effect(lab, action_id, unit)


ward = Lab.stepped_action("ward", retry=FAST)


@ward.step
def _(lab: Lab, step: Any) -> None:
    step.do("pill")


pill = Lab.stepped_action("pill", retry=FAST)


@pill.step
def _(lab: Lab, step: Any) -> None:
    dose(lab, step.action.id, "step0")


late_pill = Lab.stepped_action("late_pill", retry=FAST)


@late_pill.step
def _(lab: Lab, step: Any) -> None:
    effect(lab, step.action.id, "step0")


@late_pill.step
def _(lab: Lab, step: Any) -> None:
    dose(lab, step.action.id, "step1")


def dosed_job(action: Any) -> None:
    dose(action.actor, action.id, "job")


Lab.stepped_action("job_pill", job=dosed_job, retry=FAST)

hooked = Lab.stepped_action("hooked", retry=FAST)


@hooked.before
def _(lab: Lab, action: Any) -> None:
    dose(lab, action.id, "before0")


@hooked.step
def _(lab: Lab, step: Any) -> None:
    effect(lab, step.action.id, "step0")


after_pill = Lab.stepped_action("after_pill", retry=FAST)


@after_pill.step
def _(lab: Lab, step: Any) -> None:
    effect(lab, step.action.id, "step0")


@after_pill.succeeded
def _(lab: Lab, action: Any) -> None:
    dose(lab, action.id, "succeeded")


tick = Lab.stepped_action("tick")
tick.concurrency_key(lambda lab, number: f"tick/{number}")  # none supersedes another


@tick.step
def _(lab: Lab, step: Any, number: int) -> None:
    effect(lab, step.action.id, "step0")


def create_labs(engine: sa.Engine, scripts: dict[int, str]) -> None:
    """Create the tables and a lab per id with its script."""
    Base.metadata.create_all(engine)
    with Session(engine) as session, session.begin():
        session.add_all(Lab(id=lab_id, script=script) for lab_id, script in scripts.items())


def doses(engine: sa.Engine, action_id: str) -> list[str]:
    """The fates of the dosed runs of `action_id`, in order."""
    with engine.connect() as connection:
        query = sa.select(Dose.fate).where(Dose.action_id == action_id).order_by(Dose.id)
        return list(connection.scalars(query))
