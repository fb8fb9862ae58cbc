"""Time skipping while someone waits (S10.2, S10.3), on any time-skipping client.

Temporal's `WorkflowEnvironment.start_time_skipping()` gives a client whose
`start_workflow` handles unlock the test server's clock while their `result()`
is awaited (and lock it again after), so a workflow sleeping for hours ends
at once — but only handles that client's `start_workflow` returned, and each
call unlocks and locks on its own. Stepped's waits (`ActionHandle.result()`,
`run()`, `*_now`, handles looked up by id) go through `gate(client)` instead:
it finds the environment behind the client the same way (its client
interceptor) and keeps one count per environment, so any number of
concurrent waiters unlock the clock once and lock it once — the Java test
server refuses unbalanced lock and unlock calls. The environment's
`auto_time_skipping_disabled()` is honoured. Any other client (a dev server,
a real cluster) gets no gate and nothing changes.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from temporalio.api.testservice.v1 import LockTimeSkippingRequest, UnlockTimeSkippingRequest
from temporalio.client import Client

__all__ = ["TimeSkippingGate", "gate", "skips_time"]


class TimeSkippingGate:
    """Counts concurrent waits on one time-skipping server: unlock once, lock once."""

    def __init__(self, environment: Any) -> None:
        # weakly: the maps below hold gates weakly by their environment and client
        self._environment = weakref.ref(environment)
        self._waiting = 0
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[None]:
        environment = self._environment()
        # `WorkflowEnvironment.auto_time_skipping_disabled()` clears `_auto_time_skipping`
        if environment is None or not getattr(environment, "_auto_time_skipping", True):
            yield
            return
        service = environment.client.test_service
        async with self._lock:
            self._waiting += 1
            if self._waiting == 1:
                await service.unlock_time_skipping(UnlockTimeSkippingRequest())
        try:
            yield
        finally:
            async with self._lock:
                self._waiting -= 1
                if self._waiting == 0:
                    await service.lock_time_skipping(LockTimeSkippingRequest())


#: per client: its environment's gate, or None (weakly held: clients come and go)
_by_client: weakref.WeakKeyDictionary[Client, TimeSkippingGate | None] = weakref.WeakKeyDictionary()
#: per environment: one gate, shared by every client of that environment
_by_environment: weakref.WeakKeyDictionary[Any, TimeSkippingGate] = weakref.WeakKeyDictionary()


def _environment(client: Client) -> Any:
    """The time-skipping `WorkflowEnvironment` behind `client`, or None."""
    for interceptor in client.config().get("interceptors", ()):
        environment = getattr(interceptor, "env", None)
        if environment is not None and getattr(environment, "supports_time_skipping", False):
            return environment
    return None


def _gate_for(client: Client) -> TimeSkippingGate | None:
    if client not in _by_client:
        environment = _environment(client)
        found: TimeSkippingGate | None = None
        if environment is not None:
            found = _by_environment.get(environment)
            if found is None:
                found = _by_environment[environment] = TimeSkippingGate(environment)
        _by_client[client] = found
    return _by_client[client]


def gate(client: Client) -> AbstractAsyncContextManager[None] | None:
    """Enter around a wait on `client` so the server's clock runs; None when it
    cannot skip time (then just wait)."""
    found = _gate_for(client)
    return found() if found is not None else None


def skips_time(client: Client) -> bool:
    """Whether `client` talks to a time-skipping test server (see timers.py)."""
    return _gate_for(client) is not None
