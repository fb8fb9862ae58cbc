"""Testing support (S10): a time-skipping Temporal server, a worker and a
throw-away SQLite database in one `async with`.

    async with SteppedTestEnvironment.start(app=[Car]) as env:
        car = env.create(Car)
        await stepped.start(car, "visit", "London")
        await env.perform_stepped_actions()
        assert env.reload(car).location == "London"
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session
from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.testing import WorkflowEnvironment

from . import client, completing, config, registry, search_attributes, time_skipping
from .actors import Actor
from .binaries import dev_server_path, test_server_path
from .client import ActionHandle, SettledActionHandle
from .errors import SteppedError
from .keys import tenancy_key
from .registry import actor_ref, is_mapped, registered_actor_classes
from .results import ActionState
from .worker import activity_threads, create_worker

A = TypeVar("A", bound=Actor)


@contextmanager
def handle_stepped_action_exceptions(
    only: Iterable[type[BaseException]] = (Exception,),
) -> Iterator[None]:
    """Treat only the `only` exception classes as handled inside the block (S8.3)."""
    previous = config.settings().handle_exceptions
    config.configure(handle_exceptions=only)
    try:
        yield
    finally:
        config.configure(handle_exceptions=previous)


#: the servers a test environment can run on
SERVERS = ("time-skipping", "dev")


class SteppedTestEnvironment:
    """A running test setup; create it with `SteppedTestEnvironment.start()`."""

    #: the server `start()` uses when none is named (the pytest plugin's
    #: ``--stepped-server`` sets it)
    default_server = "time-skipping"

    def __init__(self, workflow_environment: WorkflowEnvironment, engine: sa.Engine) -> None:
        self.workflow_environment = workflow_environment
        self.engine = engine
        self.started: list[str] = []
        #: started roots that settled without a workflow (`record_achieved_starts`)
        self._settled: dict[str, SettledActionHandle] = {}
        self._tables_for: set[int] = set()

    @property
    def client(self) -> Client:
        """The Temporal client connected to the test server."""
        return self.workflow_environment.client

    @classmethod
    @asynccontextmanager
    async def start(
        cls,
        app: Iterable[type[Actor] | ModuleType] = (),
        *,
        database_url: str | None = None,
        lane_idle: timedelta = timedelta(0),
        server: str | None = None,
        data_converter: DataConverter | None = None,
        **worker_options: Any,
    ) -> AsyncIterator[SteppedTestEnvironment]:
        """Start the time-skipping server, a worker and a fresh database.

        `app` lists actor classes (or modules declaring them) whose tables are
        created; `create()` also creates tables for a class it has not seen.
        Actor classes registered inside the block are forgotten after it.
        ``server="dev"`` uses the dev server instead (real time, but every
        feature: visibility queries, termination notices); left None, it is
        `default_server`. Lanes end as soon as
        they are idle (`lane_idle`): on the time-skipping server a join that
        arrives while a lane's idle timer runs can leave the lane's workflow task
        started and never completed (seen about once in 10 sequential runs).
        `data_converter` is the client's (and so the worker's), e.g.
        `stepped_temporal.codec.data_converter(key)` to test with encryption.
        """
        server = server or cls.default_server
        if server not in SERVERS:
            raise ValueError(f"server must be 'time-skipping' or 'dev', not {server!r}")
        saved_settings = config.settings()
        saved_registry = dict(registry._registry)
        with tempfile.TemporaryDirectory(prefix="stepped-test-") as folder:
            url = database_url or f"sqlite:///{Path(folder) / 'stepped.db'}"
            # a pool as large as the worker's threads, as create_worker() sizes its own
            engine = config.create_engine(url, connections=activity_threads(worker_options))
            if server == "dev":
                workflow_environment = await WorkflowEnvironment.start_local(
                    data_converter=data_converter or DataConverter.default,
                    dev_server_existing_path=dev_server_path(),
                    dev_server_log_level="error",
                    search_attributes=search_attributes.ALL,
                )
            else:
                workflow_environment = await WorkflowEnvironment.start_time_skipping(
                    data_converter=data_converter or DataConverter.default,
                    test_server_existing_path=test_server_path(),
                )
            env = cls(workflow_environment, engine)
            try:
                config.reset()
                config.configure(
                    client=workflow_environment.client,
                    engine=engine,
                    task_queue=f"stepped-test-{uuid.uuid4().hex[:8]}",
                    handle_exceptions=saved_settings.handle_exceptions,
                    lane_idle=lane_idle,
                    # The time-skipping server may jump past a heartbeat timeout
                    # while a step runs; on the dev server, keep the configured one.
                    heartbeat_timeout=(timedelta(0) if server == "time-skipping" else None),
                )
                for item in app:
                    for actor_cls in _actor_classes(item):
                        env._ensure_tables(actor_cls)
                client.start_listeners.append(env._on_start)
                async with create_worker(**worker_options):
                    yield env
            finally:
                if env._on_start in client.start_listeners:
                    client.start_listeners.remove(env._on_start)
                config.reset()
                config.configure(**_settings_kwargs(saved_settings))
                registry._registry.clear()
                registry._registry.update(saved_registry)
                await workflow_environment.shutdown()
                engine.dispose()

    # -- the database ------------------------------------------------------
    def _ensure_tables(self, cls: type[Actor]) -> None:
        if not is_mapped(cls):
            return
        metadata = cls.metadata  # type: ignore[attr-defined]
        if id(metadata) not in self._tables_for:
            metadata.create_all(self.engine)
            self._tables_for.add(id(metadata))

    def session(self) -> Session:
        """A new session on the test database (objects stay usable after commit)."""
        return Session(self.engine, expire_on_commit=False)

    def create(self, cls: type[A], **attributes: Any) -> A:
        """Create, persist and return an actor (its table is created if needed)."""
        self._ensure_tables(cls)
        instance = cls(**attributes)
        if is_mapped(cls):
            with self.session() as session, session.begin():
                session.add(instance)
        return instance

    def reload(self, actor: A) -> A:
        """The actor as the database holds it now."""
        type_name, actor_id = actor_ref(actor)
        with self.session() as session:
            return registry.load_actor(session, type_name, actor_id)  # type: ignore[return-value]

    # -- actions -----------------------------------------------------------
    async def perform_stepped_actions(self, *, timeout: float = 60.0) -> list[ActionState]:
        """Drive every action started from outside to a final state (S10.1).

        Between waits it calls `complete_stepped_outbound_performances()`, so a
        tree with outbound leaves drains in one call when that hook completes
        them. Results are awaited one after another: the time-skipping server
        mishandles many concurrent waits. Raises if an action is not final
        within `timeout` seconds of wall time.
        """
        deadline = time.monotonic() + timeout
        finished: list[ActionState] = []
        while len(finished) < len(self.started):
            handle = self._handle(self.started[len(finished)])
            await self.complete_stepped_outbound_performances()
            state = await handle.describe()
            if state.final:
                finished.append(await handle.result())
                continue
            if time.monotonic() < deadline:
                # Polling instead of cancelling a waiting result(): the test server
                # mishandles long polls cancelled under it.
                await self._let_time_run()
                continue
            waiting = [a.id for a in await self.performing_outbound_actions()]
            raise SteppedError(
                f"action {handle.id} is still {state.status} after {timeout}s "
                f"(step {state.current_step_index}); outbound actions performing: "
                f"{waiting or 'none'} (complete them in "
                f"complete_stepped_outbound_performances())"
            )
        return finished

    def _on_start(self, handle: ActionHandle) -> None:
        self.started.append(handle.id)
        if isinstance(handle, SettledActionHandle):
            self._settled[handle.id] = handle

    def _handle(self, action_id: str) -> ActionHandle:
        return self._settled.get(action_id) or ActionHandle(self.client, action_id)

    async def _let_time_run(self, seconds: float = 0.05) -> None:
        """Let the server's clock skip ahead for a moment (when it can skip)."""
        gate = time_skipping.gate(self.client)
        if gate is None:
            await asyncio.sleep(seconds)
            return
        async with gate:
            await asyncio.sleep(seconds)

    async def complete_stepped_outbound_performances(self) -> None:
        """Override to complete outbound actions while `perform_stepped_actions` runs.

        For example: ``for state in await self.performing_outbound_actions():
        await self.complete(state)``.
        """

    async def performing_outbound_actions(self) -> list[ActionState]:
        """Outbound actions (of the started trees) that perform now."""
        return [s for s in await self.actions() if s.outbound and s.status == "performing"]

    async def complete(
        self, action: ActionState, status: str = "succeeded", reason: str | None = None
    ) -> bool:
        """`stepped.complete()` for an action's actor and name, loading the actor."""
        with self.session() as session:
            actor = registry.load_actor(session, action.actor_type, action.actor_id)
        return await completing.complete(actor, action.name, status, reason)

    async def actions(self) -> list[ActionState]:
        """Every action started from outside and, recursively, every child."""
        out: list[ActionState] = []
        queue = list(self.started)
        seen: set[str] = set()
        while queue:
            action_id = queue.pop(0)
            if action_id in seen:
                continue
            seen.add(action_id)
            handle = self._handle(action_id)
            state = await handle.describe()
            out.append(state)
            for step in state.steps:
                if step.actions_left_out:  # past 100 (S11.2): every one, a page at a time
                    queue.extend([child async for child in handle.step_actions(step.index)])
                else:
                    queue.extend(step.actions)
        return out

    async def assert_action_started(self, actor: Actor, name: str) -> ActionState:
        """Assert an action `name` on `actor` was started; return the first one."""
        key = tenancy_key(*actor_ref(actor), name)
        for state in await self.actions():
            if state.tenancy_key == key:
                return state
        raise AssertionError(f"no action {key} was started")

    async def assert_action_not_started(self, actor: Actor, name: str) -> None:
        """Assert no action `name` on `actor` was started."""
        key = tenancy_key(*actor_ref(actor), name)
        started = [s.id for s in await self.actions() if s.tenancy_key == key]
        if started:
            raise AssertionError(f"action {key} was started: {started}")


def _actor_classes(item: type[Actor] | ModuleType) -> list[type[Actor]]:
    if isinstance(item, ModuleType):
        registered = registered_actor_classes()
        return [c for c in registered if issubclass(c, Actor) and c.__module__ == item.__name__]
    return [item]


def _settings_kwargs(saved: config.Settings) -> dict[str, Any]:
    return {
        "client": saved.client,
        "address": saved.address if saved.client is None else None,
        "namespace": saved.namespace,
        "data_converter": saved.data_converter,
        "engine": saved.engine,
        "task_queue": saved.task_queue,
        "handle_exceptions": saved.handle_exceptions,
        "strict": saved.strict,
        "activity_timeout": saved.activity_timeout,
        "lane_idle": saved.lane_idle,
        "lane_check": saved.lane_check,
        "rpc_timeout": saved.rpc_timeout,
        "server_limits": saved.server_limits,
        "worker_loss_limit": saved.worker_loss_limit,
        "search_attributes": saved.search_attributes,
        "heartbeat_timeout": saved.heartbeat_timeout,
        "record_achieved_starts": saved.record_achieved_starts,
    }
