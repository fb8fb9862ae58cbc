"""How the world learns that a claimed action performs its first step inside
prepare (S9.2).

Prepare runs as a local activity (`ActionInput.revision` 2): it never
heartbeats, and while its first step runs the workflow answers no query, so
`describe()` gives up waiting after `QUERY_PATIENCE` and reads the claim
(prepare_view.py). An action started by an older version (revision 1, still
in flight after an upgrade) runs prepare as a regular activity, which reports
by one heartbeat if the step still runs `REPORT_WITHIN` seconds after the
claim — so a quick leaf costs the server no heartbeat call.

Heartbeats are counted by a worker interceptor, on the server the run chose
(the time-skipping environment runs with heartbeats off, the dev server with
the default 30 s timeout, so both ways of `in_thread` are proven in CI).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from typing import Any

from temporalio import activity
from temporalio.worker import (
    ActivityInboundInterceptor,
    ActivityOutboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

import stepped_temporal as stepped
from stepped_temporal import client as stepped_client
from stepped_temporal.execution import REPORT_WITHIN
from stepped_temporal.prepare_view import QUERY_PATIENCE
from stepped_temporal.testing import SteppedTestEnvironment
from tests.support import activities_run, car_class, performing, slow_action, until


class HeartbeatCounter(Interceptor):
    """Counts the heartbeats each activity type sends, and keeps the last details."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.details: dict[str, tuple[Any, ...]] = {}

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        counter = self

        class Outbound(ActivityOutboundInterceptor):
            def heartbeat(self, *details: Any) -> None:
                name = activity.info().activity_type
                counter.counts[name] += 1
                counter.details[name] = details
                super().heartbeat(*details)

        class Inbound(ActivityInboundInterceptor):
            def init(self, outbound: ActivityOutboundInterceptor) -> None:
                super().init(Outbound(outbound))

            async def execute_activity(self, input: ExecuteActivityInput) -> Any:
                return await super().execute_activity(input)

        return Inbound(next)


async def test_quick_leaves_send_no_heartbeat():
    """Twenty one-step actions, each claiming its key and running its step inside
    prepare in milliseconds: all succeed, and prepare sent no heartbeat at all."""
    counter = HeartbeatCounter()
    async with SteppedTestEnvironment.start(interceptors=[counter]) as env:
        Car = car_class()
        Car.stepped_action("honk").step(lambda car, step: car.honk())
        cars = [env.create(Car, id=n) for n in range(1, 21)]
        results = await asyncio.gather(*(stepped.run(car, "honk") for car in cars))
        assert [r.status for r in results] == ["succeeded"] * 20
        assert [env.reload(car).honks for car in cars] == [1] * 20
        assert counter.counts["stepped_prepare"] == 0


async def test_a_slow_first_step_in_a_local_prepare_is_described_from_its_claim():
    """The workflow is busy in prepare's local activity: describe() waits
    QUERY_PATIENCE, not the seconds the step takes, and says performing, with the
    key the claim holds. No heartbeat is sent."""
    counter = HeartbeatCounter()
    async with SteppedTestEnvironment.start(interceptors=[counter]) as env:
        Car = car_class()
        gate, entered = threading.Event(), threading.Event()
        slow_action(Car, gate, entered)
        car = env.create(Car, id=7)
        handle = await stepped.start(car, "slow")
        assert await asyncio.to_thread(entered.wait, 10)
        began = time.monotonic()
        state = await handle.describe()
        took = time.monotonic() - began
        assert took < QUERY_PATIENCE.total_seconds() + 2, f"describe() waited {took:.1f}s"
        assert performing(state), state
        assert state.concurrency_key == "garage/7"
        assert [(s.index, s.status) for s in state.steps] == [(0, "performing")]
        gate.set()
        result = await handle.result()
        assert result.status == "succeeded"
        assert result.concurrency_key == "garage/7"
        assert env.reload(car).honks == 1
        assert counter.counts["stepped_prepare"] == 0
        assert await activities_run(env.client, handle.id) == ["local stepped_prepare"]


async def test_a_regular_prepare_of_an_older_input_reports_within_a_second(monkeypatch):
    """An action started with revision 1 (by an older version): prepare is a regular
    activity, which reports by one heartbeat within REPORT_WITHIN of the claim, and
    describe() reads it — performing, with keys."""
    monkeypatch.setattr(stepped_client, "REVISION", 1)
    counter = HeartbeatCounter()
    async with SteppedTestEnvironment.start(interceptors=[counter]) as env:
        Car = car_class()
        gate, entered = threading.Event(), threading.Event()
        slow_action(Car, gate, entered)
        car = env.create(Car, id=7)
        handle = await stepped.start(car, "slow")
        assert await asyncio.to_thread(entered.wait, 10)
        began = time.monotonic()
        while counter.counts["stepped_prepare"] == 0:
            assert time.monotonic() - began < REPORT_WITHIN + 2, "no report by heartbeat"
            await asyncio.sleep(0.02)
        state = await until(handle, performing)
        assert state.concurrency_key == "garage/7"
        assert [(s.index, s.status) for s in state.steps] == [(0, "performing")]
        await asyncio.sleep(REPORT_WITHIN * 1.5)
        # one report; no more until a heartbeat is due (off, or every 10 s)
        assert counter.counts["stepped_prepare"] == 1
        assert counter.details["stepped_prepare"], "the heartbeat carried no report"
        gate.set()
        result = await handle.result()
        assert result.status == "succeeded"
        assert env.reload(car).honks == 1
        assert await activities_run(env.client, handle.id) == ["stepped_prepare"]
