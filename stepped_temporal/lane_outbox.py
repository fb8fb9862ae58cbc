"""A lane's outbox: its messages to actions go out as signals, at most the shape's
`window` under way at once and one at a time to each recipient, so an action hears the
lane in the order the lane spoke (S4.2: a conclusion never overtakes the
forward before it; S4.3, S4.5, S4.9). A mixin of `LaneWorkflow`, which decides
when to dispatch; a signal to an action that is gone frees what waited on it.
"""

from __future__ import annotations

import asyncio
from collections import Counter

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from .lane_messages import Outgoing, Verdict
    from .lane_probes import LaneProbes
    from .messages import ErrorData
    from .wire import encode

__all__ = ["IN_ORDER", "LaneOutbox"]

#: the patch id of sending a recipient its messages one after the other
IN_ORDER = "stepped-lane-messages-in-order"


class LaneOutbox(LaneProbes):
    """Sends the lane's outbox (the workflow owns the loop)."""

    def _init_outbox(self) -> None:
        self._in_flight = 0
        #: messages under way, by recipient (`_dispatch`: one at a time to each)
        self._busy: Counter[str] = Counter()
        self._in_order = True
        #: the sending tasks, kept referenced until done (never iterated to issue commands)
        self._sending: set[asyncio.Future[None]] = set()

    def _dispatch(self) -> None:
        """Start sending queued messages, at most a window under way at once and one
        per recipient: each action gets the lane's messages in the order they were
        made (a conclusion never overtakes the forward before it; a forward still
        queued takes in the next ones, `_forward`). Lanes recorded before this
        sent in any order, and replay so."""
        outbox = self._state.outbox
        window = self._state.shape.window
        if not outbox or self._in_flight >= window:
            return
        self._in_order = workflow.patched(IN_ORDER)
        if not self._in_order:
            while outbox and self._in_flight < window:
                self._start(outbox.pop(0))
            return
        kept: list[Outgoing] = []
        for index, message in enumerate(outbox):
            if self._in_flight >= window:
                kept += outbox[index:]
                break
            if self._busy[message.workflow_id]:
                kept.append(message)
            else:
                self._start(message)
        self._state.outbox = kept

    def _sendable(self) -> bool:
        """A queued message can go now (see `_dispatch`)."""
        if self._in_flight >= self._state.shape.window:
            return False
        if not self._in_order:
            return bool(self._state.outbox)
        return any(not self._busy[m.workflow_id] for m in self._state.outbox)

    def _start(self, message: Outgoing) -> None:
        self._in_flight += 1
        self._busy[message.workflow_id] += 1
        self._sent(message)
        task = asyncio.ensure_future(self._deliver(message))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _deliver(self, message: Outgoing) -> None:
        try:
            await self._signal(message)
        finally:
            self._in_flight -= 1
            self._busy[message.workflow_id] -= 1
            if not self._busy[message.workflow_id]:
                del self._busy[message.workflow_id]

    async def _signal(self, message: Outgoing) -> None:
        try:
            handle = workflow.get_external_workflow_handle(message.workflow_id)
            if message.cancel:
                await handle.signal(message.signal)
            else:
                await handle.signal(message.signal, encode(message.payload))
        except ApplicationError as error:
            if error.type != "ExternalWorkflowExecutionNotFound":
                raise
            workflow.logger.warning("lane %s: %s is gone", self._state.key, message.workflow_id)
            performing = self._state.performing
            if message.grant and performing and performing.action_id == message.workflow_id:
                # Granted to an action that no longer runs: it will never release,
                # nor tell its own parent.
                self._state.performing = None
                if performing.dependent is not None:
                    performing.inherited.append(performing.dependent)
                self._conclude_entry(
                    performing,
                    Verdict(
                        "resolved",
                        by=performing.action_id,
                        status="failed",
                        successful=False,
                        error=ErrorData("ActionGone", "the action closed before performing"),
                    ),
                )
