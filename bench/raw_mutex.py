"""The raw lane baseline: a hand-written Temporal per-key mutex with Stepped's rule.

What a Temporal user writes instead of a Stepped lane, after the resource-pool
pattern of Temporal's Python samples: one long-lived `RawMutex` workflow per key
(id ``raw-mutex/<key>``) that requesters reach by signal-with-start (from an
activity: a workflow cannot signal-with-start), state changed only in signal
handlers, `wait_condition` in the loop, continue-as-new when the server suggests
it and every handler finished, and an end once idle.

The rule is Stepped's (S4.1, S4.2): one holder at a time; while it holds the
lock, a newer waiter replaces the pending one, which is told "superseded" and
ends at once without writing. A granted requester does the same write as a
performed Stepped action (`raw.visit`: one activity, its own transaction) and
signals "release".
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import activity, workflow

from . import raw

#: how long an idle mutex waits for a newer requester before it ends
IDLE = timedelta(seconds=5)


@activity.defn(name="bench_raw_acquire")
async def acquire(key: str, requester: str) -> None:
    """Join the key's mutex: signal-with-start, as Stepped's prepare joins a lane."""
    await activity.client().start_workflow(
        RawMutex.run,
        key,
        id=f"raw-mutex/{key}",
        task_queue=activity.info().task_queue,
        start_signal="acquire",
        start_signal_args=[requester],
    )


@workflow.defn(name="BenchRawMutex")
class RawMutex:
    """One key's lock: a holder, at most one pending requester (the newest)."""

    @workflow.init
    def __init__(self, key: str, holder: str | None = None, pending: str | None = None) -> None:
        # A continued run carries the lock's state. It is restored here, not in
        # `run`: signals delivered in the first task run before `run` starts, and
        # would otherwise grant a lock the carried holder still holds.
        self.holder: str | None = holder
        self.pending: str | None = pending
        self.outgoing: list[tuple[str, str]] = []

    @workflow.signal
    def acquire(self, requester: str) -> None:
        if requester in (self.holder, self.pending):
            return  # a retried acquire activity signalled twice
        if self.holder is None:
            self.holder = requester
            self.outgoing.append((requester, "granted"))
            return
        if self.pending is not None:  # the newer waiter replaces the older one
            self.outgoing.append((self.pending, "superseded"))
        self.pending = requester

    @workflow.signal
    def release(self, requester: str) -> None:
        if self.holder != requester:
            return
        self.holder, self.pending = self.pending, None
        if self.holder is not None:
            self.outgoing.append((self.holder, "granted"))

    @workflow.run
    async def run(self, key: str, holder: str | None = None, pending: str | None = None) -> None:
        while True:
            idle = await self._wait()
            sends = [
                workflow.get_external_workflow_handle(requester).signal("verdict", verdict)
                for requester, verdict in self.outgoing
            ]
            self.outgoing.clear()
            await asyncio.gather(*sends)  # one task issues them all, as Stepped's lane does
            if idle and self._quiet():
                await workflow.wait_condition(workflow.all_handlers_finished)
                if self._quiet():
                    return
            if workflow.info().is_continue_as_new_suggested() and not self.outgoing:
                await workflow.wait_condition(workflow.all_handlers_finished)
                if not self.outgoing:
                    workflow.continue_as_new(args=[key, self.holder, self.pending])

    async def _wait(self) -> bool:
        """Wait for something to send; True when the lock stayed idle for IDLE."""
        suggested = workflow.info().is_continue_as_new_suggested
        if not self._quiet():
            await workflow.wait_condition(
                lambda: bool(self.outgoing) or suggested() or self._quiet()
            )
            return False
        try:
            await workflow.wait_condition(lambda: not self._quiet() or suggested(), timeout=IDLE)
        except TimeoutError:
            return True
        return False

    def _quiet(self) -> bool:
        return self.holder is None and self.pending is None and not self.outgoing


@workflow.defn(name="BenchRawLaneAction")
class RawLaneAction:
    """A requester: acquire the key, then write and release, or end superseded."""

    def __init__(self) -> None:
        self.verdict: str | None = None

    @workflow.signal(name="verdict")
    def verdict_signal(self, verdict: str) -> None:
        self.verdict = verdict

    @workflow.run
    async def run(self, car_id: int, key: str) -> str:
        me = workflow.info().workflow_id
        await workflow.execute_activity(
            acquire,
            args=[key, me],
            start_to_close_timeout=raw.ACTIVITY_TIMEOUT,
            retry_policy=raw.RETRY,
        )
        await workflow.wait_condition(lambda: self.verdict is not None)
        if self.verdict != "granted":
            raw.final_status("superseded")
            return "superseded"
        await raw._visit(car_id)
        await workflow.get_external_workflow_handle(f"raw-mutex/{key}").signal("release", me)
        raw.final_status("succeeded")
        return "performed"


WORKFLOWS = (RawMutex, RawLaneAction)
ACTIVITIES = (acquire,)
