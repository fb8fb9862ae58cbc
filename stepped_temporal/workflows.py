"""`ActionWorkflow`: the deterministic interpreter of one action (S3).

It never imports user code or reads the registry: it only acts on what the
activities report (how many steps, what each step asked for). So changing a
definition never makes an in-flight workflow non-deterministic. What its
steps wait on is counted in `dependencies`.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from . import timers
    from .action_run import ActionRun
    from .dependencies import Dependencies
    from .messages import (
        PAYLOAD_VERSION,
        ActionData,
        ActionInput,
        Conclusion,
        ErrorData,
        FinishInput,
        FinishOutcome,
        Forward,
        LaneRelease,
        LaneWithdraw,
        Prepared,
        PrepareInput,
        Verdict,
    )
    from .search_attributes import (
        CONCURRENCY_KEY,
        STATUS,
    )
    from .step_runs import StepRuns
    from .workflow_support import (
        ACTION_WORKFLOW,
        DEFAULT_RETRY,
        SYSTEM_RETRY,
        activity_error,
        duration,
        now,
        retry_policy,
        signal,
    )

#: how often an outbound action waiting for completion wakes (costs two events)
OUTBOUND_WAKE = timedelta(days=1)


@workflow.defn(name=ACTION_WORKFLOW)
class ActionWorkflow:
    """One action: prepare, wait for the lane, run steps, finish, notify."""

    @workflow.init
    def __init__(self, input: ActionInput) -> None:
        self._action = ActionRun(input)
        self._dependencies = Dependencies(self._action.data)
        self._steps = StepRuns(self._action, self._dependencies)
        self._withdrawing = False

    # -- messages ------------------------------------------------------------
    @workflow.signal
    def verdict(self, verdict: Verdict) -> None:
        """The lane's word: perform, superseded, shared, deadlocked, withdrawn, resolved."""
        self._action.verdicts.append(verdict)

    @workflow.signal
    def conclude(self, conclusion: Conclusion) -> None:
        """A dependency of one of this action's steps concluded."""
        self._dependencies.conclude(conclusion.dependency_id, conclusion.successful)

    @workflow.signal
    def joined(self, action_id: str) -> None:
        """A child that later siblings join after has joined its lane (S4.8)."""
        self._dependencies.joined(action_id)

    @workflow.signal
    def forward(self, forward: Forward) -> None:
        """A dependency now waits on a successor: list it in the waiting step (S4.2)."""
        self._dependencies.forward(forward.dependency_id, forward.successor)

    @workflow.update
    def complete(self, status: str) -> bool:
        """Complete a performing outbound action from outside (S6.1-S6.3).

        True when this call completed it; False when it is not (or no longer)
        performing, not outbound, or was completed already.
        """
        if (
            self._action.data.status != "performing"
            or not self._action.data.outbound
            or self._action.completion is not None
            or self._action.cancel_requested
        ):
            return False
        self._action.completion = status
        return True

    @complete.validator
    def _complete_status(self, status: str) -> None:
        if status not in ("succeeded", "failed", "cancelled", "timed_out"):
            raise ValueError(f"invalid status {status!r}")

    @workflow.signal
    def cancel(self) -> None:
        """Cancel the action (S4.6): pending ones leave the queue, performing ones complete."""
        self._action.cancel_requested = True

    @workflow.query
    def describe(self) -> ActionData:
        """The action's state, at any time (S9.2)."""
        return self._action.data

    # -- the action ----------------------------------------------------------
    @workflow.run
    async def run(self, input: ActionInput) -> ActionData:
        data = await self._act(input)
        self._action.upsert(STATUS.value_set(data.status))
        return data

    async def _act(self, input: ActionInput) -> ActionData:
        if input.version != PAYLOAD_VERSION:
            return await self._fail_early(
                ErrorData(
                    "PayloadVersionError",
                    f"action input has payload version {input.version!r}; this worker reads "
                    f"version {PAYLOAD_VERSION}",
                )
            )
        try:
            prepared = input.prepared or await workflow.execute_activity(
                "stepped_prepare",
                PrepareInput(
                    self._action.context(),
                    input.task_queue,
                    input.parent,
                    list(input.ancestry),
                    # a sibling waits for our join: report it without running a step
                    perform_first_step=not input.report_joined,
                ),
                result_type=Prepared,
                start_to_close_timeout=timedelta(seconds=input.activity_timeout or 600.0),
                heartbeat_timeout=duration(input.heartbeat_timeout),
                retry_policy=retry_policy(input.retry or DEFAULT_RETRY),
            )
        except ActivityError as error:
            await self._report_joined()
            return await self._fail_early(activity_error(error))
        await self._report_joined()
        self._action.prepared = prepared
        data = self._action.data
        if prepared.concurrency_key is not None:
            self._action.upsert(CONCURRENCY_KEY.value_set(prepared.concurrency_key))
        data.take(prepared)
        if prepared.outcome == "achieved":  # S3.4
            data.achieve(now())
            return data
        if prepared.outcome == "claimed":  # nobody else holds the key: no lane to wait in
            self._action.claimed = True
            return await self._perform()
        if prepared.outcome == "joined":
            return await self._take_turn()
        # S3.2: before cancelled, completed or failed; S4.4: a deadlock seen at once
        data.error = prepared.error
        return await self._finish(prepared.outcome, release=False, callbacks=False)

    async def _report_joined(self) -> None:
        """Tell the parent we are in our lane (or done), so the next sibling joins (S4.8)."""
        if self._action.input.report_joined and self._action.input.parent is not None:
            await signal(self._action.input.parent.workflow_id, "joined", self._action.data.id)

    async def _fail_early(self, error: ErrorData) -> ActionData:
        self._action.data.error = error
        self._action.data.status = "failed"
        self._action.data.completed_at = now()
        workflow.logger.error(
            "action %s failed: %s: %s", self._action.data.id, error.type, error.message
        )
        return self._action.data

    async def _take_turn(self) -> ActionData:
        """Wait in the lane as pending, then perform or end as the lane decides."""
        self._withdrawing = False

        # The lane sends its signals concurrently, and Temporal may deliver two to us
        # in either order: a "resolved" can overtake the "shared" it follows, so it
        # stays in the list for `_follow` instead of being taken as a turn.
        def turn() -> Verdict | None:
            return next((v for v in self._action.verdicts if v.kind != "resolved"), None)

        while True:
            await workflow.wait_condition(
                lambda: (
                    turn() is not None or (self._action.cancel_requested and not self._withdrawing)
                )
            )
            verdict = turn()
            if verdict is None:
                self._withdrawing = True
                await self._action.signal_lane("withdraw", LaneWithdraw(self._action.data.id))
                continue
            self._action.verdicts.remove(verdict)
            if verdict.kind == "perform":
                return await self._perform()
            if verdict.kind == "superseded":
                return self._end_resolved("superseded", verdict.by)
            if verdict.kind == "withdrawn":
                return await self._finish("cancelled", release=False)
            if verdict.kind == "deadlocked":
                self._action.data.error = ErrorData("Deadlock", verdict.message or "deadlock")
                workflow.logger.error(
                    "action %s deadlocked: %s", self._action.data.id, verdict.message
                )
                return await self._finish("deadlocked", release=False, callbacks=False)
            if verdict.kind == "shared":
                return await self._follow(verdict.by)

    def _end_resolved(self, status: str, by: str | None) -> ActionData:
        """Superseded (S4.2): final at once; the lane moved our dependents to `by`."""
        self._action.data.status = status
        self._action.data.resolved_by = by
        self._action.data.completed_at = now()
        return self._action.data

    async def _follow(self, shared_with: str | None) -> ActionData:
        """Shared (S4.3): mirror the final result of the action we share with."""
        self._action.data.resolved_by = shared_with
        await workflow.wait_condition(
            lambda: (
                self._action.cancel_requested
                or any(v.kind == "resolved" for v in self._action.verdicts)
            )
        )
        resolved = next((v for v in self._action.verdicts if v.kind == "resolved"), None)
        if resolved is None:
            return await self._finish("cancelled", release=False, callbacks=False)
        self._action.data.status = resolved.status or "failed"
        self._action.data.error = resolved.error
        self._action.data.resolved_by = resolved.by or shared_with
        self._action.data.completed_at = now()
        self._action.data.successful = resolved.successful
        return self._action.data

    async def _perform(self) -> ActionData:
        """Steps, then the job, then (outbound) the completion from outside — raced
        against cancellation, outside completion and the timeout (S3, S6, S7)."""
        data = self._action.data
        prepared = self._action.prepared
        assert prepared is not None
        data.status = "performing"
        data.started_at = prepared.first_step_started_at or now()
        self._action.upsert(STATUS.value_set("performing"))
        work = asyncio.ensure_future(self._work())

        def interrupted() -> bool:
            return (
                work.done() or self._action.cancel_requested or self._action.completion is not None
            )

        timed_out = False
        if prepared.timeout is None:
            await workflow.wait_condition(interrupted)
        else:
            timed_out = not await timers.wait_condition(
                interrupted,
                timedelta(seconds=prepared.timeout),
                test_server=self._action.input.test_server,
            )
        if work.done() and not timed_out:
            status, error = work.result()
        else:
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await work
            status, error = self._interruption(timed_out), None
        if status == "achieved":  # S3.4, found only once the lane let it perform
            data.steps.clear()
            data.current_step_index = None
            return await self._finish("succeeded", release=True, callbacks=False, grant=False)
        data.error = error
        return await self._finish(status, release=True)

    def _interruption(self, timed_out: bool) -> str:
        if self._action.completion is not None:
            return self._action.completion
        if self._action.cancel_requested:
            return "cancelled"
        assert timed_out
        workflow.logger.warning("action %s timed out", self._action.data.id)
        return "timed_out"

    async def _work(self) -> tuple[str, ErrorData | None]:
        prepared = self._action.prepared
        assert prepared is not None
        status, error = await self._steps.run_steps()
        if status != "succeeded":
            return status, error
        if prepared.job:
            return await self._steps.run_job()
        if prepared.outbound:  # S6.1: performing until completed from outside
            while self._action.completion is None:
                # Wake daily: a workflow with no timer at all lets the time-skipping
                # test server jump straight to its 10-year execution timeout.
                await timers.wait_condition(
                    lambda: self._action.completion is not None,
                    OUTBOUND_WAKE,
                    test_server=self._action.input.test_server,
                )
            return self._action.completion, None
        return "succeeded", None

    async def _finish(
        self, status: str, *, release: bool, callbacks: bool = True, grant: bool = True
    ) -> ActionData:
        """Complete with a final status (S3.9): callbacks, achievement, parent, lane."""
        data = self._action.data
        data.status = status
        data.completed_at = self._action.released_at or now()
        prepared = self._action.prepared
        run_callbacks = callbacks and prepared is not None and status in prepared.callback_statuses
        grant = (
            grant
            and status == "succeeded"
            and data.checksum is not None
            and not self._action.granted
        )
        release_claim = release and self._action.claimed and not self._action.claim_released
        failed_callbacks = 0
        if run_callbacks or grant or release_claim:
            outcome = await workflow.execute_activity(
                "stepped_finish",
                FinishInput(
                    self._action.context(),
                    status,
                    grant_achievement=grant,
                    release_claim=release_claim,
                ),
                result_type=FinishOutcome,
                start_to_close_timeout=timedelta(
                    seconds=prepared.activity_timeout if prepared else 600.0
                ),
                heartbeat_timeout=duration(prepared.heartbeat_timeout if prepared else None),
                retry_policy=SYSTEM_RETRY,
            )
            failed_callbacks = outcome.failed
            self._action.lane_owned = self._action.lane_owned or outcome.lane_owned
            if run_callbacks:
                # like the gem's counters: None until something is counted (S3.9)
                data.after_callbacks_succeeded_count = outcome.succeeded or None
                data.after_callbacks_failed_count = outcome.failed or None
        data.successful = status == "succeeded" and failed_callbacks == 0
        # A claimed action tells the lane only if the lane took it over (the
        # release found the key contended, or the lane's perform verdict came).
        adopted = self._action.lane_owned or any(v.kind == "perform" for v in self._action.verdicts)
        if release and (not self._action.claimed or adopted):
            await self._action.signal_lane(
                "release",
                LaneRelease(data.id, status, data.successful, data.error, data.completed_at),
            )
        return data


__all__ = ["ACTION_WORKFLOW", "ActionWorkflow"]
