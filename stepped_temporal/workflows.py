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
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from . import timers
    from .action_run import ActionRun
    from .dependencies import Dependencies
    from .keys import tenancy_key
    from .messages import (
        PAYLOAD_VERSION,
        ActionData,
        ActionInput,
        ChildIntent,
        Conclusion,
        Dependency,
        ErrorData,
        FinishInput,
        FinishOutcome,
        Forward,
        JobInput,
        JobOutcome,
        LaneRelease,
        LaneWithdraw,
        Prepared,
        PrepareInput,
        StepData,
        StepInput,
        StepOutcome,
        Verdict,
    )
    from .search_attributes import (
        CONCURRENCY_KEY,
        STATUS,
        initial_search_attributes,
        summary,
    )
    from .workflow_support import (
        ACTION_WORKFLOW,
        DEFAULT_RETRY,
        SYSTEM_RETRY,
        activity_error,
        duration,
        now,
        reraise_cancellation,
        retry_policy,
        signal,
    )

#: how often an outbound action waiting for completion wakes (costs two events)
OUTBOUND_WAKE = timedelta(days=1)
#: Children open at once per action; Temporal refuses more than 2,000 pending children.
CHILD_WINDOW = 1000
#: Child starts issued per workflow task. Each start's input travels in the
#: parent's history and the server reads the start from there: hundreds in one
#: task make one large batch of events that it reads once per child.
START_BATCH = 50
BATCHED_STARTS = "stepped-batched-child-starts"


class _Exhausted(Exception):
    """A step's attempts are used up: it failed with `error`."""

    def __init__(self, error: ErrorData) -> None:
        super().__init__(error.message)
        self.error = error


@workflow.defn(name=ACTION_WORKFLOW)
class ActionWorkflow:
    """One action: prepare, wait for the lane, run steps, finish, notify."""

    @workflow.init
    def __init__(self, input: ActionInput) -> None:
        self._action = ActionRun(input)
        self._dependencies = Dependencies(self._action.data)
        self._open_children = 0
        #: children asked for whose start Temporal has not confirmed yet
        self._starting = 0
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
        status, error = await self._run_steps()
        if status != "succeeded":
            return status, error
        if prepared.job:
            return await self._run_job()
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

    def _begin_step(self, index: int) -> StepData:
        """Step `index` starts performing (the claimed first one when prepare claimed)."""
        prepared = self._action.prepared
        assert prepared is not None
        self._action.data.current_step_index = index
        started_at = prepared.first_step_started_at if index == 0 else None
        step = StepData(index=index, status="performing", started_at=started_at or now())
        self._action.data.steps.append(step)
        return step

    async def _run_job(self) -> tuple[str, ErrorData | None]:
        """The job (S6.4), as the step after the prepended ones."""
        prepared = self._action.prepared
        assert prepared is not None
        step = self._begin_step(prepared.step_count)
        try:
            outcome = await workflow.execute_activity(
                "stepped_job",
                JobInput(
                    self._action.context(),
                    erase_achievement=prepared.step_count == 0 and not self._action.claimed,
                ),
                result_type=JobOutcome,
                start_to_close_timeout=timedelta(seconds=prepared.activity_timeout),
                heartbeat_timeout=duration(prepared.heartbeat_timeout),
                retry_policy=retry_policy(prepared.retry or DEFAULT_RETRY),
                cancellation_type=timers.activity_cancellation(self._action.input.test_server),
            )
        except ActivityError as error:
            reraise_cancellation(error)
            return self._step_failed(step, activity_error(error))
        if outcome.achieved:
            return "achieved", None
        if outcome.arguments is not None:
            self._action.data.arguments = list(outcome.arguments)
        if outcome.error is not None:
            return self._step_failed(step, outcome.error)
        step.status = "succeeded"
        step.completed_at = now()
        return outcome.status or "succeeded", None

    async def _run_steps(self) -> tuple[str, ErrorData | None]:
        prepared = self._action.prepared
        assert prepared is not None
        retry = retry_policy(prepared.retry or DEFAULT_RETRY)
        last = prepared.step_count - 1
        for index in range(prepared.step_count):
            step = self._begin_step(index)
            if index == 0 and prepared.first_step is not None:
                outcome = prepared.first_step  # prepare ran it (activities._perform_first_step)
            else:
                try:
                    outcome = await self._step_activity(index, index == last, retry)
                except ActivityError as error:
                    reraise_cancellation(error)
                    return self._step_failed(step, activity_error(error))
                except _Exhausted as exhausted:
                    return self._step_failed(step, exhausted.error)
            if outcome.released:
                self._action.claim_released = True
                self._action.lane_owned = self._action.lane_owned or outcome.lane_owned
                # it ended when it gave the key up: the next holder may start then
                self._action.released_at = outcome.released_at
            self._action.granted = self._action.granted or outcome.granted
            if outcome.achieved:
                return "achieved", None
            if outcome.arguments is not None:
                self._action.data.arguments = list(outcome.arguments)
            if outcome.error is not None:
                return self._step_failed(step, outcome.error)
            await self._await_dependencies(step, outcome)
            step.completed_at = self._action.released_at or now()
            if outcome.marked_failed or step.unsuccessful_actions_count:
                step.status = "failed"
                reason = (
                    f"step {index} set its status to failed"
                    if outcome.marked_failed
                    else f"{step.unsuccessful_actions_count} of its dependencies concluded "
                    f"unsuccessfully"
                )
                return "failed", ErrorData("StepFailed", f"step {index} failed: {reason}")
            step.status = "succeeded"
        return "succeeded", None

    async def _step_activity(self, index: int, last: bool, retry: RetryPolicy) -> StepOutcome:
        prepared = self._action.prepared
        assert prepared is not None
        if index == 0 and prepared.first_step_failure is not None:
            # Prepare ran the first step and it raised an error that is retried:
            # that was its first attempt, so the activity has one attempt less.
            retry = await self._after_first_attempt(
                retry, prepared.first_step_failure, self._action.input.test_server
            )
        step = StepInput(
            self._action.context(), index, erase_achievement=index == 0 and not self._action.claimed
        )
        outcome: StepOutcome = await workflow.execute_activity(
            "stepped_step",
            step.as_last(prepared, self._action.claimed) if last else step,
            result_type=StepOutcome,
            start_to_close_timeout=timedelta(seconds=prepared.activity_timeout),
            heartbeat_timeout=duration(prepared.heartbeat_timeout),
            retry_policy=retry,
            cancellation_type=timers.activity_cancellation(self._action.input.test_server),
        )
        return outcome

    @staticmethod
    async def _after_first_attempt(
        retry: RetryPolicy, failure: ErrorData, test_server: bool
    ) -> RetryPolicy:
        """The policy for attempts 2.. of a step whose first attempt failed with
        `failure`; raises `_Exhausted` when it allows no more."""
        if retry.maximum_attempts == 1 or failure.type in (retry.non_retryable_error_types or ()):
            raise _Exhausted(failure)
        assert retry.initial_interval is not None
        await timers.sleep(retry.initial_interval.total_seconds(), test_server=test_server)
        interval = retry.initial_interval * retry.backoff_coefficient
        if retry.maximum_interval is not None:
            interval = min(interval, retry.maximum_interval)
        return RetryPolicy(
            initial_interval=interval,
            backoff_coefficient=retry.backoff_coefficient,
            maximum_interval=retry.maximum_interval,
            maximum_attempts=retry.maximum_attempts - 1 if retry.maximum_attempts else 0,
            non_retryable_error_types=retry.non_retryable_error_types,
        )

    def _step_failed(self, step: StepData, error: ErrorData) -> tuple[str, ErrorData]:
        step.status = "failed"
        step.completed_at = self._action.released_at or now()
        workflow.logger.warning(
            "action %s: step %d failed: %s: %s",
            self._action.data.id,
            step.index,
            error.type,
            error.message,
        )
        return "failed", error

    async def _await_dependencies(self, step: StepData, outcome: StepOutcome) -> None:
        """Start the children and timers a step asked for; wait until all concluded (S3.7)."""
        children: list[tuple[str, ChildIntent]] = []
        order = outcome.join_after  # S4.8: None when they may join in any order
        for number, intent in enumerate(outcome.children):
            child_id = (
                f"{tenancy_key(intent.actor_type, intent.actor_id, intent.name)}/"
                f"{workflow.uuid4().hex[:16]}"
            )
            # listed in `step.actions` once Temporal started it (so it can be described)
            self._dependencies.add(child_id, step.index, number)
            children.append((child_id, intent))
        waits: list[tuple[str, float]] = []
        for number, seconds in enumerate(outcome.waits):
            wait_id = f"wait/{step.index}/{number}"
            self._dependencies.add(wait_id, step.index)
            step.waits.append(seconds)
            waits.append((wait_id, seconds))
        step.pending_actions_count = len(children) + len(waits)
        tasks = [asyncio.ensure_future(self._wait(wait_id, s)) for wait_id, s in waits]
        # (a patch marker only where batching changes anything: more than one batch)
        batched = len(children) > START_BATCH and workflow.patched(BATCHED_STARTS)
        reporting = {i for earlier in order or () for i in earlier}
        for number, (child_id, intent) in enumerate(children):
            if batched and number and number % START_BATCH == 0:
                await workflow.wait_condition(lambda: self._starting == 0)
            await workflow.wait_condition(lambda: self._open_children < CHILD_WINDOW)
            self._open_children += 1
            after = [children[i][0] for i in order[number]] if order else []
            tasks.append(
                asyncio.ensure_future(
                    self._start_child(child_id, intent, after, number in reporting)
                )
            )
        await workflow.wait_condition(lambda: step.pending_actions_count == 0)
        for task in tasks:  # children abandoned past this point are not ours to watch
            if not task.done():
                task.cancel()

    async def _wait(self, wait_id: str, seconds: float) -> None:
        await workflow.sleep(timedelta(seconds=seconds))
        self._dependencies.conclude(wait_id, True)

    async def _start_child(
        self, child_id: str, intent: ChildIntent, after: list[str], report_joined: bool
    ) -> None:
        if after:  # S4.8: earlier calls on the same lane join first
            await workflow.wait_condition(lambda: all(self._dependencies.in_lane(a) for a in after))
            if self._action.data.status != "performing":
                self._open_children -= 1
                return  # the action ended meanwhile (cancelled, timed out): start nothing
        ancestry = [*self._action.input.ancestry, self._action.data.id]
        self._starting += 1
        try:
            handle = await workflow.start_child_workflow(
                ACTION_WORKFLOW,
                ActionInput(
                    action_id=child_id,
                    actor_type=intent.actor_type,
                    actor_id=intent.actor_id,
                    name=intent.name,
                    arguments=intent.arguments,
                    task_queue=self._action.input.task_queue,
                    parent=Dependency(self._action.data.id, child_id),
                    ancestry=ancestry,
                    search_attributes=self._action.input.search_attributes,
                    retry=intent.retry,
                    activity_timeout=self._action.prepared.activity_timeout
                    if self._action.prepared
                    else None,
                    heartbeat_timeout=(
                        self._action.prepared.heartbeat_timeout if self._action.prepared else None
                    ),
                    test_server=self._action.input.test_server,
                    report_joined=report_joined,
                ),
                id=child_id,
                static_summary=summary(
                    intent.actor_type, intent.actor_id, intent.name, intent.arguments
                ),
                search_attributes=(
                    initial_search_attributes(intent.actor_type, intent.actor_id, intent.name)
                    if self._action.input.search_attributes
                    else None
                ),
                task_queue=self._action.input.task_queue,
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                # a concluded step stops watching its children; that must not cancel them
                cancellation_type=workflow.ChildWorkflowCancellationType.ABANDON,
                result_type=ActionData,
            )
        except Exception as error:
            self._open_children -= 1
            workflow.logger.error(
                "action %s: child %s did not start: %s", self._action.data.id, child_id, error
            )
            self._dependencies.list_started(child_id)
            self._dependencies.conclude(child_id, False)
            return
        finally:
            self._starting -= 1
        self._dependencies.list_started(child_id)
        try:
            result: ActionData = await handle
        except ChildWorkflowError as error:
            if self._dependencies.concluded(child_id):
                return  # we stopped watching (abandon, not cancel) after it concluded
            # The child ended without concluding (terminated, timed out, crashed):
            # it can no longer conclude, so the step must not wait for it.
            workflow.logger.error(
                "action %s: child %s ended abnormally: %s", self._action.data.id, child_id, error
            )
            self._dependencies.conclude(child_id, False)
        else:
            # A superseded child handed this dependency to its successor, which
            # the lane tells us about (S4.2); any other final status concludes it.
            if result.status != "superseded":
                self._dependencies.conclude(child_id, result.successful)
        finally:
            self._open_children -= 1

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
