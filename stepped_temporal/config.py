"""Process-wide configuration: the Temporal client, the database, the task queue
(S1.4, S2.3, S8.1, S10.3)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from temporalio.client import Client
from temporalio.converter import DataConverter

from .engines import READ_ONLY as READ_ONLY  # (re-exported: they lived here first)
from .engines import create_engine as create_engine
from .errors import NotConfigured
from .shapes import ServerLimits

DEFAULT_DATABASE_URL = "sqlite:///stepped.db"
DEFAULT_TASK_QUEUE = "stepped"
DEFAULT_ADDRESS = "localhost:7233"


@dataclass
class Settings:
    """What `configure()` set. Read it with `settings()`."""

    client: Client | None = None
    address: str = DEFAULT_ADDRESS
    namespace: str = "default"
    #: the data converter `get_client()` connects with (None: Temporal's default)
    data_converter: DataConverter | None = None
    engine: Engine | None = None
    #: the engine was created here from `database_url` (not given by the application)
    engine_from_url: bool = False
    #: threads that use the engine at once, as far as a worker has said (`size_pool`)
    connections: int = 0
    database_url: str = DEFAULT_DATABASE_URL
    task_queue: str = DEFAULT_TASK_QUEUE
    handle_exceptions: tuple[type[BaseException], ...] = (Exception,)
    strict: bool = False
    #: start-to-close timeout of activities that run user code
    activity_timeout: timedelta = timedelta(minutes=10)
    #: activities heartbeat while user code runs: a dead worker's activity is retried
    #: after this long, not after `activity_timeout` (0 turns heartbeats off)
    heartbeat_timeout: timedelta = timedelta(seconds=30)
    #: how long an idle lane waits for a late join before it ends
    lane_idle: timedelta = timedelta(seconds=10)
    #: how often an action waiting on a lane checks the lane still holds it (0: never)
    lane_check: timedelta = timedelta(seconds=60)
    #: the deadline of each call Stepped makes to Temporal (long polls excepted)
    rpc_timeout: timedelta = timedelta(seconds=10)
    #: the cluster's per-execution limits, which size what new runs record (S11.5)
    server_limits: ServerLimits = field(default_factory=ServerLimits)
    #: keep Stepped's search attributes on actions: None = when they are registered
    search_attributes: bool | None = None
    #: a root start that finds its checksum achieved (S3.4) still creates a workflow
    #: (seen in the Web UI, S9.3); False: `start()` returns it settled, no workflow
    record_achieved_starts: bool = True
    #: OpenTelemetry tracing (tracing.py): False, True (the global tracer provider)
    #: or a TracerProvider
    tracing: Any = False
    #: the lane policy of definitions that name none (S4.10)
    lane: str = "supersede"
    #: HOST:PORT where the client Stepped connects serves Prometheus metrics (metrics.py)
    metrics_bind: str | None = None
    #: a unit whose worker dies this many times in a row fails its action (losses.py; 0: never)
    worker_loss_limit: int = 5
    connect_lock: asyncio.Lock | None = field(default=None, repr=False)


_settings = Settings()


def configure(
    *,
    client: Client | None = None,
    address: str | None = None,
    namespace: str | None = None,
    data_converter: DataConverter | None = None,
    database_url: str | None = None,
    engine: Engine | None = None,
    task_queue: str | None = None,
    handle_exceptions: Iterable[type[BaseException]] | None = None,
    strict: bool | None = None,
    activity_timeout: timedelta | None = None,
    lane_idle: timedelta | None = None,
    search_attributes: bool | None = None,
    heartbeat_timeout: timedelta | None = None,
    record_achieved_starts: bool | None = None,
    tracing: Any = None,
    metrics_bind: str | None = None,
    lane: str | None = None,
    lane_check: timedelta | None = None,
    rpc_timeout: timedelta | None = None,
    server_limits: ServerLimits | None = None,
    worker_loss_limit: int | None = None,
) -> None:
    """Configure stepped_temporal for this process.

    Pass a connected `client`, or an `address` (and `namespace`, and a
    `data_converter`, e.g. `stepped_temporal.codec.data_converter()` to encrypt
    payloads) to connect to on first use; a passed `client` keeps its own data
    converter. Pass an `engine`, or a `database_url` (default
    ``sqlite:///stepped.db``). `search_attributes` keeps Stepped's search
    attributes (S9.3) on every action; left None, they are kept when the
    namespace has them registered. `activity_timeout` bounds each activity that
    runs user code; while it runs it heartbeats, and `heartbeat_timeout` (default
    30 s, 0 for none) is how soon a worker that died is noticed and the activity
    retried. `record_achieved_starts=False` makes a `start()` that finds its
    checksum achieved (S3.4) return a settled handle without creating a workflow:
    several times faster, for loops that start the same work over and over, but
    such skips are not seen in the Web UI and cannot be looked up by id later.
    `tracing=True` makes every action tree one OpenTelemetry trace through the
    global tracer provider (or pass a `TracerProvider`); it needs the `otel`
    extra and applies to workers created after it. `metrics_bind="HOST:PORT"`
    serves Temporal's and Stepped's metrics for Prometheus from the client
    Stepped connects (with your own `client`, connect it with
    `metrics.prometheus_runtime(...)` instead). `lane` is the lane policy of
    actions whose definition names none (S4.10, default "supersede"). `lane_check`
    (default 60 s) is how often an action waiting on a lane checks that the lane
    still holds it: one whose lane workflow was terminated, failed or reset ends
    `cancelled` (error `LaneGone`) within about that long. `rpc_timeout` (default
    10 s) is the deadline of every call Stepped makes to Temporal but the long
    polls that wait for a result. `server_limits` declares the per-execution
    limits of the Temporal cluster (S11.5; Temporal's defaults): runs started from
    then on size their windows and continue-as-new thresholds by them (shapes.py).
    `worker_loss_limit` (default 5) ends poison pills: a before hook, step, job or
    after-callback whose worker died that many times in a row while running it
    (killed, out of memory, a crash in native code) fails its action with a
    `WorkerLost` error instead of being retried on worker after worker; 0 never
    gives up. Workers read it. Arguments left out keep their current values.
    """
    global _settings
    changes: dict[str, Any] = {}
    if client is not None:
        changes["client"] = client
    if address is not None:
        changes.update(address=address, client=client)
    if namespace is not None:
        changes["namespace"] = namespace
    if data_converter is not None:
        changes.update(data_converter=data_converter, client=client)
    if engine is not None:
        changes.update(engine=engine, engine_from_url=False)
    if database_url is not None:
        changes.update(database_url=database_url, engine=engine, engine_from_url=False)
    if task_queue is not None:
        changes["task_queue"] = task_queue
    if handle_exceptions is not None:
        classes = tuple(handle_exceptions)
        for cls in classes:
            if not (isinstance(cls, type) and issubclass(cls, BaseException)):
                raise TypeError(f"handle_exceptions takes exception classes, got {cls!r}")
        changes["handle_exceptions"] = classes
    if strict is not None:
        changes["strict"] = strict
    if activity_timeout is not None:
        changes["activity_timeout"] = activity_timeout
    if lane_idle is not None:
        changes["lane_idle"] = lane_idle
    if lane_check is not None:
        changes["lane_check"] = lane_check
    if rpc_timeout is not None:
        changes["rpc_timeout"] = rpc_timeout
    if server_limits is not None:
        if not isinstance(server_limits, ServerLimits):
            raise TypeError(f"server_limits takes a ServerLimits, got {server_limits!r}")
        changes["server_limits"] = server_limits
    if heartbeat_timeout is not None:
        changes["heartbeat_timeout"] = heartbeat_timeout
    if search_attributes is not None:
        changes["search_attributes"] = search_attributes
    if record_achieved_starts is not None:
        if not isinstance(record_achieved_starts, bool):
            raise TypeError(
                f"record_achieved_starts takes True or False, got {record_achieved_starts!r}"
            )
        changes["record_achieved_starts"] = record_achieved_starts
    if lane is not None:
        from .status import LANE_POLICIES

        if lane not in LANE_POLICIES:
            raise ValueError(f"lane must be one of {LANE_POLICIES}, got {lane!r}")
        changes["lane"] = lane
    if worker_loss_limit is not None:
        if isinstance(worker_loss_limit, bool) or not isinstance(worker_loss_limit, int):
            raise TypeError(f"worker_loss_limit takes an int, got {worker_loss_limit!r}")
        if worker_loss_limit < 0:
            raise ValueError(f"worker_loss_limit must be 0 or more, got {worker_loss_limit}")
        changes["worker_loss_limit"] = worker_loss_limit
    if metrics_bind is not None:
        if client is not None:
            raise ValueError(
                "metrics_bind applies to the client Stepped connects; connect yours with "
                "runtime=stepped_temporal.metrics.prometheus_runtime(...) instead"
            )
        changes.update(metrics_bind=metrics_bind, client=None)
    if tracing is not None:
        if tracing is not False:
            _check_tracing(tracing)
        changes["tracing"] = tracing
    _settings = replace(_settings, **changes)


def _check_tracing(tracing: Any) -> None:
    try:
        from opentelemetry.trace import TracerProvider
    except ImportError:
        raise NotConfigured(
            "tracing needs OpenTelemetry: pip install 'stepped_temporal[otel]'"
        ) from None
    if tracing is not True and not isinstance(tracing, TracerProvider):
        raise TypeError(f"tracing takes True, False or a TracerProvider, got {tracing!r}")


def reset() -> None:
    """Forget every setting (tests use it between environments)."""
    global _settings
    _settings = Settings()


def settings() -> Settings:
    """The current settings."""
    return _settings


async def get_client() -> Client:
    """The configured client, connecting to the configured address on first use."""
    current = _settings
    if current.client is not None:
        return current.client
    if current.connect_lock is None:
        current.connect_lock = asyncio.Lock()
    async with current.connect_lock:
        if current.client is None:
            try:
                runtime = None
                if current.metrics_bind:
                    from .metrics import prometheus_runtime

                    runtime = prometheus_runtime(current.metrics_bind)
                current.client = await Client.connect(
                    current.address,
                    namespace=current.namespace,
                    data_converter=current.data_converter or DataConverter.default,
                    runtime=runtime,
                )
            except Exception as error:
                raise NotConfigured(
                    f"cannot connect to Temporal at {current.address} "
                    f"(namespace {current.namespace}): {error}"
                ) from error
        return current.client


@contextmanager
def read_session() -> Iterator[Session]:
    """A session for reads only, on the configured engine.

    On SQLite it takes no write lock (each read runs on its own), so a client
    reading while the application holds a write transaction is not blocked.
    """
    with Session(get_engine().execution_options(**{READ_ONLY: True})) as session:
        yield session


def get_engine() -> Engine:
    """The configured engine, created from the database URL on first use."""
    current = _settings
    if current.engine is None:
        connections = current.connections or None
        current.engine = create_engine(current.database_url, connections=connections)
        current.engine_from_url = True
    return current.engine


def is_handled(error: BaseException) -> bool:
    """Whether `error` is one of the handled exception classes (S8.1)."""
    return isinstance(error, _settings.handle_exceptions)


def heartbeat_seconds() -> float | None:
    """The configured heartbeat timeout in seconds, None when heartbeats are off."""
    seconds = settings().heartbeat_timeout.total_seconds()
    return seconds if seconds > 0 else None
