"""S4.1, S4.3, S5: 100 concurrent starts over 10 keys with random checksums, on
SQLite and PostgreSQL. No lane ever has two actions performing at once (checked
from the times each step body recorded in the database), every action ends
final, and each key's achievement is the checksum of the last action of that
key that succeeded."""

from __future__ import annotations

import asyncio
import itertools
import random
import threading
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import stepped_temporal as stepped
from stepped_temporal.achievements import Achievement
from stepped_temporal.checksums import checksum as digest
from tests.support import car_class

KEYS = 10
STARTS = 100


class _Base(DeclarativeBase):
    pass


class Visit(_Base):
    """One performance of a step body: who, which key, when."""

    __tablename__ = "concurrency_visits"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    action_id: Mapped[str] = mapped_column(sa.String(200))
    key: Mapped[str] = mapped_column(sa.String(50))
    started_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    ended_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))


async def test_a_hundred_starts_over_ten_keys(stepped_db_env):
    env = stepped_db_env
    _Base.metadata.create_all(env.engine)
    Car = car_class()
    paint = Car.stepped_action("paint")
    paint.concurrency_key(lambda car, key, colour: key)
    paint.checksum_key(lambda car, key, colour: key)
    paint.checksum(lambda car, key, colour: colour)
    pause = threading.Event()  # never set: a short real wait widens the window for overlap

    @paint.step
    def _(car, step, key, colour):
        from sqlalchemy.orm import object_session

        started = datetime.now(UTC)
        pause.wait(0.01)
        session = object_session(car)
        assert session is not None
        session.add(
            Visit(
                action_id=step.action.id,
                key=key,
                started_at=started,
                ended_at=datetime.now(UTC),
            )
        )

    cars = [env.create(Car, id=n) for n in range(1, 21)]
    rng = random.Random(7)
    plan = [
        (rng.choice(cars), f"key-{rng.randrange(KEYS)}", rng.choice(["red", "green", "blue"]))
        for _ in range(STARTS)
    ]
    handles = await asyncio.gather(*(stepped.start(c, "paint", k, col) for c, k, col in plan))
    results = [await h.result() for h in handles]

    statuses = {r.status for r in results}
    assert statuses <= {"succeeded", "superseded"}, statuses
    with env.session() as session:
        visits = session.scalars(sa.select(Visit).order_by(Visit.started_at)).all()
        rows = session.execute(sa.select(Achievement.checksum_key, Achievement.checksum))
        achieved = {key: value for key, value in rows}
    # performed: not superseded, not sharing another's result, not skipped as achieved
    performed = {r.id for r in results if r.status == "succeeded" and r.steps}
    assert {v.action_id for v in visits} == performed
    assert len(visits) == len(performed), "a step body ran twice"

    for key, group in itertools.groupby(sorted(visits, key=lambda v: v.key), key=lambda v: v.key):
        ordered = sorted(group, key=lambda v: v.started_at)
        for before, after in itertools.pairwise(ordered):
            assert before.ended_at <= after.started_at, f"two actions performed at once on {key}"
        # the achievement is the checksum of the key's last performer
        last = ordered[-1].action_id
        colour = next(col for (c, k, col), h in zip(plan, handles, strict=True) if h.id == last)
        assert achieved[key] == digest(colour), key
