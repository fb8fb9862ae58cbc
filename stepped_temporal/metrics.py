"""Stepped's metrics, beside Temporal's own worker metrics (S4.2-S4.4, S3.4 counted).

Recorded from workflow code through `workflow.metric_meter()`: the SDK records
nothing while replaying, so each counts once, and they go wherever the
worker's Temporal runtime sends its metrics — `stepped-temporal worker
--metrics-bind HOST:PORT` (or `configure(metrics_bind=...)`) serves them all
for Prometheus. Labels are the actor type and action name (never ids, so the
series stay few); every metric also carries Temporal's namespace, task queue
and workflow type.

- `stepped_actions_started` (actor, action): an action's workflow began;
- `stepped_actions_finished` (actor, action, status): it ended, by final status;
- `stepped_supersedes`, `stepped_shares`, `stepped_deadlocks` (actor, action):
  it ended superseded (S4.2), mirroring an identical action (S4.3), deadlocked
  (S4.4);
- `stepped_achievement_hits` (actor, action, where): skipped as achieved
  (S3.4), `where` is `workflow`, or `start` for a start settled without a
  workflow (counted by the starting process's Temporal runtime);
- `stepped_lane_wait` (actor, action), a histogram: how long an action was
  pending in its lane before it performed.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import MetricMeter
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from .messages import ActionData

__all__ = ["achieved_at_start", "finished", "lane_waited", "prometheus_runtime", "started"]


def _labels(data: ActionData) -> dict[str, str | int | float | bool]:
    return {"actor": data.actor_type, "action": data.name}


def started(data: ActionData) -> None:
    """An action's workflow began (not counted again on replay)."""
    meter = workflow.metric_meter()
    meter.create_counter("stepped_actions_started").add(1, _labels(data))


def finished(data: ActionData, *, achieved: bool) -> None:
    """An action ended: by status, and as superseded, shared, deadlocked or achieved."""
    meter = workflow.metric_meter()
    labels = _labels(data)
    meter.create_counter("stepped_actions_finished").add(1, {**labels, "status": data.status})
    if data.status == "superseded":
        meter.create_counter("stepped_supersedes").add(1, labels)
    elif data.resolved_by is not None:
        meter.create_counter("stepped_shares").add(1, labels)
    if data.status == "deadlocked":
        meter.create_counter("stepped_deadlocks").add(1, labels)
    if achieved:
        meter.create_counter("stepped_achievement_hits").add(1, {**labels, "where": "workflow"})


def lane_waited(data: ActionData, waited: timedelta) -> None:
    """How long an action that joined a lane was pending before it performed."""
    histogram = workflow.metric_meter().create_histogram_timedelta(
        "stepped_lane_wait", "time pending in a lane before performing"
    )
    histogram.record(max(waited, timedelta(0)), _labels(data))


def achieved_at_start(meter: MetricMeter, actor_type: str, name: str) -> None:
    """A start settled as achieved without a workflow (`record_achieved_starts=False`)."""
    meter.create_counter("stepped_achievement_hits").add(
        1, {"actor": actor_type, "action": name, "where": "start"}
    )


def prometheus_runtime(bind: str) -> Runtime:
    """A Temporal runtime serving its metrics (Temporal's and these) for Prometheus on
    `bind` (``HOST:PORT``) at ``/metrics``; a client connected with it is the worker's."""
    host, _, port = bind.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"metrics bind address {bind!r} is not HOST:PORT")
    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=bind)))
