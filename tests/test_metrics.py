"""`stepped-temporal worker --metrics-bind HOST:PORT` serves Prometheus metrics:
Temporal's own worker metrics and Stepped's counters and lane-wait histogram
(metrics.py), scraped after a small tree ran on a dev server; a bad address is
one error line.
"""

from __future__ import annotations

import asyncio
import re
import signal
import time
import urllib.request
from collections.abc import Callable

from sqlalchemy.orm import Session

import stepped_temporal
import stepped_temporal as stepped
from tests.test_cli import (  # noqa: F401  (app is a fixture)
    app,
    dev_server,
    finish,
    free_port,
    loaded_app,
    one_error_line,
    read_until,
    reap,
    run_command,
    spawn,
)


def _scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return str(response.read().decode())


async def _scrape_until(port: int, ready: Callable[[str], bool], seconds: float = 10) -> str:
    """The metrics once `ready` holds of them, or the last scrape after `seconds`.

    The worker process counts on its own schedule: Temporal's `workflow_completed`
    only once the server has accepted the completion, so a client waiting on the
    result can see it ended before the counter moves. Callers assert afterwards."""
    deadline = time.monotonic() + seconds
    while True:
        metrics = await asyncio.to_thread(_scrape, f"http://127.0.0.1:{port}/metrics")
        if ready(metrics) or time.monotonic() > deadline:
            return metrics
        await asyncio.sleep(0.1)


def _value(metrics: str, name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels`."""
    total = 0.0
    for line in metrics.splitlines():
        match = re.match(rf"^{name}(?:{{(.*)}})? (\S+)$", line)
        if not match:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(match.group(2))
    return total


async def test_worker_serves_temporal_and_stepped_metrics(app):  # noqa: F811
    folder, url, env = app
    port = free_port()
    async with dev_server() as server:
        address = server.client.service_client.config.target_host
        worker = await spawn(
            "worker", "--app", "myapp", "--address", address, "--task-queue", "metrics",
            "--metrics-bind", f"127.0.0.1:{port}", cwd=folder, env=env,
        )  # fmt: skip
        try:
            banner = await read_until(worker, "worker:", 30)
            assert f"metrics on http://127.0.0.1:{port}/metrics" in banner
            with loaded_app(folder, url) as (module, engine):
                stepped_temporal.configure(
                    client=server.client, database_url=url, task_queue="metrics"
                )
                with Session(engine) as session:
                    car = session.get_one(module.Car, 1)
                for _ in range(2):
                    result = await asyncio.wait_for(stepped.run(car, "tour"), 30)
                    assert result.status == "succeeded"
            finished = "stepped_actions_finished"
            metrics = await _scrape_until(
                port,
                lambda m: (
                    _value(m, finished, action="tour") >= 2
                    and _value(m, finished, action="honk") >= 2
                    and _value(m, "temporal_workflow_completed", workflow_type="SteppedAction") >= 4
                ),
            )
            assert _value(metrics, finished, actor="Car", action="tour", status="succeeded") == 2
            assert _value(metrics, finished, actor="Car", action="honk", status="succeeded") == 2
            assert _value(metrics, "stepped_actions_started", action="tour") == 2
            assert _value(metrics, "stepped_deadlocks") == 0
            # Temporal's own worker metrics, from the same runtime
            assert (
                _value(metrics, "temporal_workflow_completed", workflow_type="SteppedAction") >= 4
            )
            worker.send_signal(signal.SIGTERM)
            status, out, err = await finish(worker, 30)
            assert status == 0, out + err
        finally:
            await reap(worker)


def test_a_bad_metrics_address_is_one_error_line(app):  # noqa: F811
    folder, _, env = app
    completed = run_command(
        "worker", "--app", "myapp", "--metrics-bind", "nowhere", cwd=folder, env=env
    )
    line = one_error_line(completed, "worker")
    assert "cannot serve metrics on nowhere" in line and "HOST:PORT" in line


async def test_lane_metrics_count_supersedes_shares_and_lane_waits(tmp_path):
    """In-process, on a runtime serving Prometheus: a contended lane records its
    supersede, its share and the lane wait of the action that performed after waiting."""
    from temporalio.testing import WorkflowEnvironment

    from stepped_temporal import binaries
    from stepped_temporal.metrics import prometheus_runtime
    from tests.support import car_class, configured, garage, joined, performing, until
    from tests.test_user_environment import create

    port = free_port()
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=binaries.dev_server_path(),
        dev_server_log_level="error",
        runtime=prometheus_runtime(f"127.0.0.1:{port}"),
    )
    try:
        async with configured(env, tmp_path):  # declare inside: it restores the registry
            Car = car_class()
            garage(Car, checksum=True)
            car = create(Car, id=1)
            holder = await stepped.start(car, "hold")
            await until(holder, performing)
            first = await stepped.start(car, "visit", "Oslo")
            await until(first, joined)
            second = await stepped.start(car, "visit", "Paris")  # supersedes the first
            await until(second, joined)  # before the third: it must share this one
            third = await stepped.start(car, "visit", "Paris")  # shares the second
            await until(third, lambda s: s.resolved_by is not None)
            assert await stepped.complete(car, "hold") is True
            statuses = [(await h.result()).status for h in (first, second, third)]
            assert statuses == ["superseded", "succeeded", "succeeded"]
            # hold's own end is not awaited (complete() returns once it is told)
            metrics = await _scrape_until(
                port,
                lambda m: (
                    _value(m, "stepped_shares") >= 1
                    and _value(m, "stepped_actions_finished", action="hold") >= 1
                ),
            )
        assert _value(metrics, "stepped_supersedes", action="visit") == 1
        assert _value(metrics, "stepped_shares", action="visit") == 1
        assert _value(metrics, "stepped_lane_wait_count", action="visit") == 1  # the second
        assert _value(metrics, "stepped_actions_finished", action="hold") == 1
    finally:
        await env.shutdown()
