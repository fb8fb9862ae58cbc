"""Throw-away models for tests: each call returns fresh classes on a fresh Base.

The test environment forgets actor classes registered during a test, so every
test can declare its own `Car` without clashing with another test's.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

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


def garage(Car, *, checksum: bool = False) -> None:
    """Two actions in the lane "garage": `hold`, outbound (it performs until completed,
    holding the lane), and `visit(place)`, which moves the car (sharing by `place`
    with `checksum`)."""
    hold = Car.stepped_action("hold", outbound=True)
    hold.concurrency_key(lambda car: "garage")
    hold.step(lambda car, step: None)
    visit = Car.stepped_action("visit")
    visit.concurrency_key(lambda car, place: "garage")
    if checksum:
        visit.checksum(lambda car, place: place)
    visit.step(lambda car, step, place: car.change_location(place))


def rally_with_a_crash(Car) -> None:
    """`crash` fails in its step ("hit a wall"); `rally(wrecked, driven)` starts a
    crash on one car and a drive of 5 on another in one step."""
    crash = Car.stepped_action("crash")

    @crash.step
    def _(car, step):
        raise RuntimeError("hit a wall")

    rally = Car.stepped_action("rally")

    @rally.step
    def _(car, step, wrecked, driven):
        step.on(wrecked, "crash")
        step.on(driven, "drive", 5)


async def listed(client, query: str, count: int) -> list[str]:
    """Ids the visibility store lists for `query`, once it lists `count` (it lags)."""
    import asyncio
    import time

    deadline = time.monotonic() + 20
    while True:
        ids = sorted([w.id async for w in client.list_workflows(query)])
        if len(ids) >= count or time.monotonic() > deadline:
            return ids
        await asyncio.sleep(0.2)


def slow_action(Car, gate, entered):
    """`slow`: a first step that says it `entered`, then blocks until `gate` opens
    (20 s at most), on the key garage/<id>. Returns the action, for more steps."""
    slow = Car.stepped_action("slow")
    slow.concurrency_key(lambda car: ["garage", car.id])

    @slow.step
    def _(car, step):
        entered.set()
        assert gate.wait(20), "the test never opened the gate"
        car.honk()

    return slow


async def _activities(workflow) -> list[tuple[str, int]]:
    """Each activity a workflow ran, in order, with its (last) attempt: a regular one
    by its type name, a local one (recorded as a marker) as "local <type>"."""
    import json

    from temporalio.api.enums.v1 import EventType

    history = await workflow.fetch_history()
    found = []
    scheduled = {}
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled[event.event_id] = len(found)
            found.append((event.activity_task_scheduled_event_attributes.activity_type.name, 0))
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            started = event.activity_task_started_event_attributes
            index = scheduled[started.scheduled_event_id]
            found[index] = (found[index][0], started.attempt)
        elif event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            marker = event.marker_recorded_event_attributes
            if marker.marker_name == "core_local_activity":
                data = json.loads(marker.details["data"].payloads[0].data)
                found.append((f"local {data['activity_type']}", data["attempt"]))
    return found


async def activities_run(client, workflow_id: str) -> list[str]:
    """The activities a workflow ran, in order: a regular one by its type name, a
    local one (recorded as a marker) as "local <type>"."""
    return [name for name, _ in await _activities(client.get_workflow_handle(workflow_id))]


async def activity_attempts(handle) -> list[int]:
    """The attempt number each activity of an action ended on (regular or local)."""
    return [attempt for _, attempt in await _activities(handle.workflow)]


@contextmanager
def record_lookups() -> Iterator[list[str]]:
    """The SELECTs on `stepped_step_records` the configured engine runs meanwhile."""
    import sqlalchemy as sa

    from stepped_temporal import config

    lookups: list[str] = []

    def looked(conn, cursor, statement, *_):
        if statement.lstrip().upper().startswith("SELECT") and "stepped_step_records" in statement:
            lookups.append(statement)

    engine = config.get_engine()
    sa.event.listen(engine, "before_cursor_execute", looked)
    try:
        yield lookups
    finally:
        sa.event.remove(engine, "before_cursor_execute", looked)


@asynccontextmanager
async def configured(
    env, folder, database_url: str | None = None, **settings
) -> AsyncIterator[None]:
    """Stepped configured on `env`'s client the way a user would — `database_url` (a
    fresh SQLite file in `folder` by default), a task queue of its own, `settings` —
    with a worker running; every setting and the actor registry are restored after."""
    from stepped_temporal import config, registry

    saved, registered = config.settings(), dict(registry._registry)
    config.reset()
    stepped.configure(
        client=env.client,
        database_url=database_url or f"sqlite:///{folder / 'app.db'}",
        task_queue=f"user-{uuid.uuid4().hex[:8]}",
        **settings,
    )
    try:
        async with stepped.create_worker():
            yield
    finally:
        config.settings().engine.dispose()  # type: ignore[union-attr]
        config._settings = saved
        registry._registry.clear()
        registry._registry.update(registered)


async def run_cli(address: str, database_url: str, *arguments: str) -> str:
    """Run `stepped-temporal …` as a user runs it, against the Temporal at `address`
    and the database at `database_url`; its stdout (it must exit 0, no traceback).
    A subprocess of the event loop: an in-process worker must answer its queries."""
    import asyncio
    import os
    import shutil
    import sys
    from pathlib import Path

    command = shutil.which("stepped-temporal") or str(
        Path(sys.executable).parent / "stepped-temporal"
    )
    environment = {**os.environ, "STEPPED_DATABASE_URL": database_url}
    environment.pop("TEMPORAL_ADDRESS", None)
    process = await asyncio.create_subprocess_exec(
        command, *arguments, "--address", address,
        env=environment, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, out.decode() + err.decode()
    assert b"Traceback" not in err, err.decode()
    return out.decode()
