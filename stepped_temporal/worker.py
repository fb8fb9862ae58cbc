"""`create_worker()`: a Temporal worker with every Stepped workflow and activity (S10.3)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from . import tracing
from .activities import ALL_ACTIVITIES, set_executor
from .config import get_engine, settings
from .errors import NotConfigured
from .lanes import LaneWorkflow
from .store import create_tables, records
from .workflows import ActionWorkflow

#: Workflow code is the package's own deterministic modules (no user code, no I/O);
#: passing the package through keeps the sandbox from re-importing it (and
#: SQLAlchemy) on every run — seconds per task on a worker without a cache.
PASSTHROUGH = ("stepped_temporal", "sqlalchemy", "opentelemetry")
#: how long exactly-once records are kept (pruned when a worker starts)
RECORDS_KEPT = timedelta(days=7)


def create_worker(**kwargs: Any) -> Worker:
    """A `temporalio.worker.Worker` for the configured client and task queue.

    Creates Stepped's own tables in the configured database where they are
    missing; with `configure(tracing=...)` adds the tracing interceptors
    (tracing.py). Keyword arguments pass through to `Worker`.
    """
    current = settings()
    client = kwargs.pop("client", None) or current.client
    if client is None:
        raise NotConfigured(
            "create_worker() needs a connected client: stepped_temporal.configure(client=...)"
        )
    create_tables(get_engine())
    with Session(get_engine()) as session, session.begin():
        # records only matter while an activity may be retried (store/records.py)
        records.prune(session, RECORDS_KEPT)
    slots = kwargs.setdefault("max_concurrent_activities", 100)
    set_executor(ThreadPoolExecutor(max_workers=slots, thread_name_prefix="stepped-activity"))
    kwargs.setdefault("task_queue", current.task_queue)
    kwargs.setdefault(
        "workflow_runner",
        SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)
        ),
    )
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
