"""`create_worker()`: a Temporal worker with every Stepped workflow and activity (S10.3).

Stepped's workflows run outside Temporal's sandbox by default. The sandbox
guards *user* workflow code — it re-creates the code's modules per run and
refuses wall-clock time, I/O and randomness — and Stepped runs no user code
in a workflow: its workflow modules only interpret what activities report
(ARCHITECTURE: determinism), and they were passed through the sandbox anyway.
What the sandbox still cost was about a quarter of a fan-out's worker CPU
(every activation and every payload sequence re-enters it; bench/RESULTS.md).
CI runs the suite on the time-skipping server with `STEPPED_WORKFLOW_SANDBOX=1`,
so the sandbox keeps checking Stepped's own workflow code; users may set it too.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session
from temporalio.bridge.proto.workflow_activation import RemoveFromCache, WorkflowActivation
from temporalio.bridge.proto.workflow_completion import WorkflowActivationCompletion
from temporalio.worker import (
    UnsandboxedWorkflowRunner,
    Worker,
    WorkflowInstance,
    WorkflowInstanceDetails,
    WorkflowRunner,
)
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from . import tracing, versioning
from .activities import ALL_ACTIVITIES, set_executor
from .config import get_engine, settings
from .engines import pool_capacity
from .errors import NotConfigured
from .lanes import LaneWorkflow
from .store import create_tables, records
from .workflows import ActionWorkflow

#: Workflow code is the package's own deterministic modules (no user code, no I/O);
#: passing the package through keeps the sandbox from re-importing it (and
#: SQLAlchemy) on every run — seconds per task on a worker without a cache.
PASSTHROUGH = ("stepped_temporal", "sqlalchemy", "opentelemetry")
#: set to 1 to run Stepped's workflows in Temporal's sandbox (see above)
SANDBOX_VARIABLE = "STEPPED_WORKFLOW_SANDBOX"
#: how long exactly-once records are kept (pruned when a worker starts)
RECORDS_KEPT = timedelta(days=7)
#: activity slots and local-activity slots of a worker unless told otherwise
SLOTS = 100


def create_worker(**kwargs: Any) -> Worker:
    """A `temporalio.worker.Worker` for the configured client and task queue.

    Creates Stepped's own tables in the configured database where they are
    missing; with `configure(tracing=...)` adds the tracing interceptors
    (tracing.py). Keyword arguments pass through to `Worker`; the default
    `workflow_runner` is `workflow_runner()`.
    """
    current = settings()
    client = kwargs.pop("client", None) or current.client
    if client is None:
        raise NotConfigured(
            "create_worker() needs a connected client: stepped_temporal.configure(client=...)"
        )
    kwargs.setdefault("max_concurrent_activities", SLOTS)
    kwargs.setdefault("max_concurrent_local_activities", SLOTS)
    slots = activity_threads(kwargs)
    _size_pool(slots)
    create_tables(get_engine())
    with Session(get_engine()) as session, session.begin():
        # records only matter while an activity may be retried (store/records.py)
        records.prune(session, RECORDS_KEPT)
    set_executor(ThreadPoolExecutor(max_workers=slots, thread_name_prefix="stepped-activity"))
    kwargs.setdefault("task_queue", current.task_queue)
    kwargs.setdefault("workflow_runner", workflow_runner())
    if current.tracing:
        given = list(kwargs.get("interceptors", ()))
        present = [*client.config().get("interceptors", ()), *given]
        kwargs["interceptors"] = [*given, *tracing.interceptors(present)]
    return Worker(
        client,
        workflows=[ActionWorkflow, LaneWorkflow],
        activities=list(ALL_ACTIVITIES),
        **kwargs,
    )


def workflow_runner(sandboxed: bool | None = None) -> WorkflowRunner:
    """The runner `create_worker()` gives Stepped's workflows: unsandboxed, unless
    `sandboxed` (default: whether `STEPPED_WORKFLOW_SANDBOX` is set to anything but
    0 or nothing, such as 1)."""
    if sandboxed is None:
        sandboxed = os.environ.get(SANDBOX_VARIABLE, "") not in ("", "0")
    if not sandboxed:
        return _Learning(UnsandboxedWorkflowRunner())
    return _Learning(
        SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)
        )
    )


class _Learning(WorkflowRunner):
    """A runner that tells `versioning.learn` when Temporal evicts a run for
    non-determinism (a lane recorded before shapes replays with the other
    threshold next time); otherwise the runner it wraps, unchanged."""

    def __init__(self, runner: WorkflowRunner) -> None:
        self._runner = runner

    def prepare_workflow(self, defn: Any) -> None:
        self._runner.prepare_workflow(defn)

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        return _Instance(self._runner.create_instance(det))

    def set_worker_level_failure_exception_types(self, types: Any) -> None:
        self._runner.set_worker_level_failure_exception_types(types)


class _Instance(WorkflowInstance):
    def __init__(self, instance: WorkflowInstance) -> None:
        self._instance = instance

    def activate(self, act: WorkflowActivation) -> WorkflowActivationCompletion:
        for job in act.jobs:
            evicted = job.remove_from_cache if job.HasField("remove_from_cache") else None
            if evicted and evicted.reason == RemoveFromCache.EvictionReason.NONDETERMINISM:
                versioning.learn(act.run_id, evicted.message)
        return self._instance.activate(act)

    def get_serialization_context(self, command_info: Any) -> Any:
        return self._instance.get_serialization_context(command_info)

    def get_external_store_context(self, command_info: Any) -> Any:
        return self._instance.get_external_store_context(command_info)

    def get_info(self) -> Any:
        return self._instance.get_info()

    def get_thread_id(self) -> int | None:
        return self._instance.get_thread_id()


def activity_threads(options: dict[str, Any]) -> int:
    """The threads a worker made with `options` runs activities on: one per slot, since
    prepare runs as a local activity beside the activities."""
    activities = options.get("max_concurrent_activities", SLOTS)
    return int(activities) + int(options.get("max_concurrent_local_activities", SLOTS))


def _size_pool(connections: int) -> None:
    """Let `connections` threads use the engine at once (a worker's activity slots):
    one created here from the URL is made again with a pool that large; one the
    application gave is only warned about when its pool is smaller."""
    current = settings()
    current.connections = max(current.connections, connections)
    engine = current.engine
    if engine is None:
        return
    capacity = pool_capacity(engine)
    if capacity is None or capacity >= current.connections:
        return
    if current.engine_from_url:
        engine.dispose()
        current.engine = None
        return
    logging.getLogger("stepped_temporal").warning(
        "the engine given to configure() lends %d connections at once, but the worker runs "
        "%d activity threads that each use one: they will queue for connections; create it "
        "with pool_size=%d",
        capacity,
        current.connections,
        current.connections,
    )
