"""Throw-away models for tests: each call returns fresh classes on a fresh Base.

The test environment forgets actor classes registered during a test, so every
test can declare its own `Car` without clashing with another test's.
"""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import stepped_temporal as stepped


def car_class() -> type:
    """A `Car` actor like the one in API.md: mileage, honks, location."""

    class Base(DeclarativeBase):
        pass

    class Car(stepped.Actor, Base):
        __tablename__ = "cars"
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

    return Car


async def until(handle, predicate, *, seconds: float = 10.0):
    """Poll `handle.describe()` until `predicate(state)` holds; return that state.

    Time skipping stays locked while polling, so durable timers do not fire.
    """
    import asyncio
    import time

    from temporalio.service import RPCError, RPCStatusCode

    deadline = time.monotonic() + seconds
    state = None
    while True:
        try:
            state = await handle.describe()
        except RPCError as error:
            # a parent lists a child as it asks Temporal to start it: the child's
            # workflow exists a moment later
            if error.status != RPCStatusCode.NOT_FOUND or time.monotonic() > deadline:
                raise
        else:
            if predicate(state):
                return state
        if time.monotonic() > deadline:
            raise AssertionError(f"{handle.id} never got there; it is {state}")
        await asyncio.sleep(0.02)


def joined(state) -> bool:
    """The action has joined its lane (prepare computed its keys)."""
    return state.concurrency_key is not None


def performing(state) -> bool:
    """The action performs."""
    return state.status == "performing"


async def until_true(check, *, seconds: float = 10.0):
    """Await `check()` until it returns something other than None; return that."""
    import asyncio
    import time

    deadline = time.monotonic() + seconds
    while True:
        found = await check()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{check} never held (last: {found!r})")
        await asyncio.sleep(0.02)


def achievement(env, checksum_key: str) -> str | None:
    """The checksum the achievement under `checksum_key` holds, or None."""
    import sqlalchemy as sa

    from stepped_temporal.achievements import Achievement

    with env.session() as session:
        return session.scalar(
            sa.select(Achievement.checksum).where(Achievement.checksum_key == checksum_key)
        )


def grant(env, checksum_key: str, checksum: str) -> None:
    """Store an achievement directly."""
    from stepped_temporal import achievements

    with env.session() as session, session.begin():
        achievements.grant(session, checksum_key, checksum)


async def first_child(parent):
    """A handle on the first child a parent's first step started, once it is listed."""
    import stepped_temporal as stepped

    state = await until(parent, lambda s: s.steps and s.steps[0].actions)
    return stepped.action_handle(state.steps[0].actions[0])
