"""No Temporal call under a database lock (issue 27 item 6; S4.1, S4.5).

When a second action finds a key held by claim (store/claims.py), it marks the
key contended and tells the lane who holds it — a signal-with-start of the lane
workflow. That call now runs after its transaction committed and with a
deadline: a slow Temporal no longer holds the claim row (and, on SQLite, the
database's one write lock) while it answers, so the holder's release never
waits for it. The holder may then end before the lane hears of it; the lane
copes: it remembers a release from an action it never held and does not adopt
it (lane_rules.py), and a holder it adopts after it closed frees the lane.
Run on SQLite and PostgreSQL, on the server `--stepped-server` chose.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import ActivityEnvironment

import stepped_temporal as stepped
from stepped_temporal import config, lane_starts, lanes
from stepped_temporal.keys import lane_id
from stepped_temporal.lane_messages import LaneHolder, LaneJoin, LaneRelease, LaneState
from stepped_temporal.messages import ActionContext, PrepareInput
from stepped_temporal.preparing import prepare
from stepped_temporal.shapes import CURRENT_LANE_SHAPE
from stepped_temporal.store import LaneClaim, claims
from stepped_temporal.wire import encode
from tests.support import car_class, performing, until


class SlowProxy:
    """A TCP proxy to the Temporal frontend that holds each request `delay` seconds."""

    def __init__(self, target: str) -> None:
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.delay = 0.0
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.server: asyncio.Server | None = None

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[str]:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        try:
            yield f"127.0.0.1:{self.port}"
        finally:
            self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        with contextlib.suppress(asyncio.CancelledError):  # (the proxy shuts down)
            await asyncio.gather(
                self._pipe(reader, upstream_writer, slow=True),
                self._pipe(upstream_reader, writer, slow=False),
            )

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, slow: bool
    ) -> None:
        try:
            while data := await reader.read(65536):
                if slow and self.delay:
                    await asyncio.sleep(self.delay)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()


def _row(engine, key: str) -> LaneClaim | None:
    with Session(engine) as session:
        return session.get(LaneClaim, key)


async def test_a_slow_temporal_never_holds_the_claim_row(stepped_db_env):
    """The joiner's transaction (claim marked contended) commits before its
    signal-with-start goes out; with Temporal answering 2 s late, the holder's
    release runs meanwhile without waiting, and the join still arrives."""
    env = stepped_db_env
    Car = car_class()
    wash = Car.stepped_action("wash")
    wash.concurrency_key(lambda car: "garage")
    wash.step(lambda car, step: car.honk())
    env.create(Car, id=2)
    engine = config.get_engine()
    with Session(engine) as session, session.begin():
        assert claims.claim(session, "garage", "Car/1/wash/holder", None, None, []).claimed

    proxy = SlowProxy(env.client.service_client.config.target_host)
    async with proxy.running() as address:
        slow = await Client.connect(address, namespace=env.client.namespace)
        proxy.delay = 2.0
        environment = ActivityEnvironment(client=slow)
        environment.info = dataclasses.replace(
            environment.info, workflow_run_id=uuid.uuid4().hex, is_local=True
        )
        context = ActionContext(
            action_id=f"Car/2/wash/{uuid.uuid4().hex[:16]}",
            actor_type="Car",
            actor_id=2,
            name="wash",
            arguments=[],
            root=True,
        )
        task_queue = config.settings().task_queue
        preparing = asyncio.ensure_future(
            environment.run(prepare, encode(PrepareInput(context, task_queue)))
        )
        deadline = time.monotonic() + 10
        while not ((row := await asyncio.to_thread(_row, engine, "garage")) and row.contended):
            assert time.monotonic() < deadline and not preparing.done(), "never marked"
            await asyncio.sleep(0.01)
        committed = time.monotonic()

        def release() -> bool:
            with Session(engine) as session, session.begin():
                return claims.release(session, "garage", "Car/1/wash/holder")

        lane_owned = await asyncio.to_thread(release)
        released = time.monotonic()
        prepared = await asyncio.wait_for(preparing, 30)
        returned = time.monotonic()

    assert lane_owned is True  # the lane owns the key now: the holder tells it
    assert released - committed < 1.0, "the release waited for the joiner's lock"
    assert returned - committed > 1.5, "the joiner's transaction committed after its signal"
    assert prepared["outcome"] == "joined" and prepared["lane_id"] == lane_id("garage")
    history = env.client.get_workflow_handle(lane_id("garage")).fetch_history_events()
    joins = [
        e async for e in history if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    ]
    assert joins, "the join never reached the lane"


async def test_a_holder_that_ends_before_its_lane_hears_of_it(stepped_db_env, monkeypatch):
    """The holder completes while the joiner's join is still on its way (held 3 s):
    its release finds no lane run; the join then starts one, which adopts the
    closed holder, finds it gone and lets the joiner perform. Nothing waits for
    the joiner's signal meanwhile: the holder ends at once."""
    env = stepped_db_env
    Car = car_class()
    hold = Car.stepped_action("hold", outbound=True)
    hold.concurrency_key(lambda car: "garage")
    hold.step(lambda car, step: None)
    wash = Car.stepped_action("wash")
    wash.concurrency_key(lambda car: "garage")
    wash.step(lambda car, step: car.honk())
    boss, car = env.create(Car, id=1), env.create(Car, id=2)
    holder = await stepped.start(boss, "hold")
    await until(holder, performing)

    start_lane = lane_starts._start_lane
    held = threading.Event()

    async def slowly(*args, **kwargs):
        held.set()
        await asyncio.sleep(3)
        await start_lane(*args, **kwargs)

    monkeypatch.setattr(lane_starts, "_start_lane", slowly)
    joiner = await stepped.start(car, "wash")
    while not held.is_set():
        await asyncio.sleep(0.01)

    began = time.monotonic()
    assert await stepped.complete(boss, "hold") is True
    assert (await holder.result()).status == "succeeded"
    assert time.monotonic() - began < 2.5, "the holder waited for the joiner's signal"
    result = await asyncio.wait_for(joiner.result(), 30)
    assert result.status == "succeeded" and env.reload(car).honks == 1
    row = await asyncio.to_thread(_row, config.get_engine(), "garage")
    assert row is not None and row.holder is None and row.contended


async def test_a_lane_does_not_adopt_a_holder_whose_release_came_first(stepped_env):
    """A release from an action the lane never held, then a join naming it as the
    key's holder: the lane remembers the release and does not adopt it (it would
    send it a perform verdict and wait for it for ever if it were still open)."""
    client = stepped_env.client
    key = f"early-{uuid.uuid4().hex[:8]}"
    holder, joiner = f"{key}/holder", f"{key}/joiner"
    state = LaneState(key=key, idle_seconds=1, shape=CURRENT_LANE_SHAPE, revision=1)
    handle = await client.start_workflow(
        lanes.LANE_WORKFLOW,
        encode(state),
        id=lane_id(key),
        task_queue=config.settings().task_queue,
        start_signal="release",
        start_signal_args=[encode(LaneRelease(holder, "succeeded", True))],
    )
    await handle.signal("join", encode(LaneJoin(joiner, holder=LaneHolder(holder))))
    await asyncio.wait_for(handle.result(), 30)  # both sends fail: nobody runs there

    told = []
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED:
            told.append(event.signal_external_workflow_execution_initiated_event_attributes)
    recipients = [attributes.workflow_execution.workflow_id for attributes in told]
    assert holder not in recipients, recipients
    assert recipients == [joiner]  # granted at once


async def test_a_join_gives_up_at_its_deadline_when_temporal_does_not_answer(stepped_env):
    """Every call Stepped makes to Temporal has a deadline (`configure(rpc_timeout=)`):
    a signal-with-start that Temporal answers 5 s late fails after 1 s, and prepare's
    activity is retried, instead of waiting as long as Temporal takes."""
    stepped.configure(rpc_timeout=timedelta(seconds=1))
    proxy = SlowProxy(stepped_env.client.service_client.config.target_host)
    async with proxy.running() as address:
        slow = await Client.connect(address, namespace=stepped_env.client.namespace)
        proxy.delay = 5.0
        began = time.monotonic()
        with pytest.raises(RPCError) as raised:
            await lane_starts.join_lane(
                slow, "deadline", LaneJoin("deadline/1"), task_queue="nobody-polls"
            )
        took = time.monotonic() - began
    error = raised.value  # the client's own deadline: "Timeout expired"
    assert error.status in (RPCStatusCode.CANCELLED, RPCStatusCode.DEADLINE_EXCEEDED), error
    assert "timeout" in str(error).lower() or "deadline" in str(error).lower(), error
    assert took < 4.0, took
