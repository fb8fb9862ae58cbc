"""`StepRuns`: a performing action's steps, one at a time, and its job (S3.6-S3.8,
S3.10, S3.12, S6.4, S8.2, S11.1).

Each step body runs in a step activity, under the definition's retry policy;
the workflow then starts the children and timers it asked for and waits until
every one concluded (`StepWaiting`, which may hand the rest of a wide step to
the action's next run: S11.1). A claimed action's
first step may have run in prepare already (`Prepared.first_step`), and its
last step may give up the claim and grant the achievement itself
(`StepInput.as_last`): what it settled is kept on the `ActionRun` for finish.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from . import continuing, timers
    from .action_run import ActionRun
    from .bounds import step_at
    from .dependencies import Dependencies
    from .messages import ErrorData, StepData, StepOutcome
    from .step_waiting import StepWaiting
    from .unit_messages import JobInput, JobOutcome, StepInput
    from .versioning import marked
    from .wire import decode, encode
    from .workflow_support import (
        DEFAULT_RETRY,
        activity_error,
        duration,
        reraise_cancellation,
        retry_policy,
        unit_policy,
    )

__all__ = ["INTERRUPTED_AFTER_UNIT", "StepRuns"]

#: the patch id of `StepRuns._stop_if_interrupted`
INTERRUPTED_AFTER_UNIT = "stepped-interrupted-after-unit"


class _Exhausted(Exception):
    """A step's attempts are used up: it failed with `error`."""

    def __init__(self, error: ErrorData) -> None:
        super().__init__(error.message)
        self.error = error


class StepRuns:
    """Runs an action's steps and its job; each returns (status, error) for finish."""

    def __init__(self, action: ActionRun, dependencies: Dependencies) -> None:
        self._action = action
        self._dependencies = dependencies
        self._waiting = StepWaiting(action, dependencies)

    async def run_steps(self) -> tuple[str, ErrorData | None]:
        """The steps in definition order; the first that fails fails the action (S3.8).
        "achieved" when the first step found the checksum achieved meanwhile (S3.4)."""
        action = self._action
        prepared = action.prepared
        assert prepared is not None
        retry = retry_policy(prepared.retry or DEFAULT_RETRY)
        last = prepared.step_count - 1
        resume = action.input.resume
        first = resume.next_step if resume else 0
        rest = resume.step if resume else None  # it continued as new inside that step
        for index in range(first, prepared.step_count):
            if rest is not None and index == rest.index:
                step = step_at(action.data, index)  # (an earlier run began it)
                assert step is not None
                lost = await self._waiting.resume(step, rest)
                marked_failed = rest.marked_failed
            else:
                if index > first and continuing.due(action):  # S11.1: nothing is open now
                    await continuing.continue_as_new(action, index)
                step = self._begin_step(index)
                if index == 0 and prepared.first_step is not None:
                    outcome = prepared.first_step  # prepare ran it (preparing._perform_first_step)
                else:
                    try:
                        outcome = await self._step_activity(index, index == last, retry)
                    except ActivityError as error:
                        reraise_cancellation(error)
                        return self._step_failed(step, activity_error(error))
                    except _Exhausted as exhausted:
                        return self._step_failed(step, exhausted.error)
                if outcome.released:
                    action.claim_released = True
                    action.lane_owned = action.lane_owned or outcome.lane_owned
                    # it ended when it gave the key up: the next holder may start then
                    action.released_at = outcome.released_at
                action.granted = action.granted or outcome.granted
                ended = self._take(step, outcome)
                self._stop_if_interrupted()
                if ended is not None:
                    return ended
                lost = await self._waiting.wait(step, outcome)
                marked_failed = outcome.marked_failed
            if lost is not None:  # its pages of children could not be read
                return self._step_failed(step, lost)
            step.completed_at = action.released_at or action.now()
            if marked_failed or step.unsuccessful_actions_count:
                step.status = "failed"
                reason = (
                    f"step {index} set its status to failed"
                    if marked_failed
                    else f"{step.unsuccessful_actions_count} of its dependencies concluded "
                    f"unsuccessfully"
                )
                return "failed", ErrorData("StepFailed", f"step {index} failed: {reason}")
            step.status = "succeeded"
        return "succeeded", None

    async def run_job(self) -> tuple[str, ErrorData | None]:
        """The job (S6.4), as the step after the prepended ones."""
        action = self._action
        prepared = action.prepared
        assert prepared is not None
        step = self._begin_step(prepared.step_count)
        try:
            raw = await workflow.execute_activity(
                "stepped_job",
                encode(
                    JobInput(
                        action.context(),
                        erase_achievement=prepared.step_count == 0 and not action.claimed,
                        budget=(prepared.retry or DEFAULT_RETRY).maximum_attempts,
                    )
                ),
                result_type=dict,
                start_to_close_timeout=timedelta(seconds=prepared.activity_timeout),
                heartbeat_timeout=duration(prepared.heartbeat_timeout),
                retry_policy=unit_policy(retry_policy(prepared.retry or DEFAULT_RETRY)),
                cancellation_type=timers.activity_cancellation(action.input.test_server),
            )
        except ActivityError as error:
            reraise_cancellation(error)
            return self._step_failed(step, activity_error(error))
        outcome = decode(JobOutcome, raw)
        ended = self._take(step, outcome)
        self._stop_if_interrupted()
        if ended is not None:
            return ended
        step.status = "succeeded"
        step.completed_at = self._action.now()
        return outcome.status or "succeeded", None

    def _stop_if_interrupted(self) -> None:
        """Stop the work if the action was interrupted while its unit ran (S4.6, S6, S7).

        The cancel of the work reaches an activity's await, but when the activity's
        result arrives in the same workflow task the SDK returns that result and
        the cancel is spent: without this the work would go on (run the next step,
        or wait for an outbound completion forever) while its action ends. Asked
        only in that race, so other histories carry no marker."""
        action = self._action
        if action.interrupting and marked(action.input.revision, INTERRUPTED_AFTER_UNIT):
            raise asyncio.CancelledError()

    def _take(
        self, step: StepData, outcome: StepOutcome | JobOutcome
    ) -> tuple[str, ErrorData | None] | None:
        """Take in what a step's or job's unit reported: new arguments; how the action
        ends when the work was achieved meanwhile (S3.4) or the unit failed."""
        if outcome.achieved:
            return "achieved", None
        if outcome.arguments is not None:
            self._action.data.arguments = list(outcome.arguments)
        if outcome.error is not None:
            return self._step_failed(step, outcome.error)
        return None

    def _begin_step(self, index: int) -> StepData:
        """Step `index` starts performing (the claimed first one when prepare claimed)."""
        data = self._action.data
        prepared = self._action.prepared
        assert prepared is not None
        data.current_step_index = index
        started_at = prepared.first_step_started_at if index == 0 else None
        step = StepData(
            index=index, status="performing", started_at=started_at or self._action.now()
        )
        data.steps.append(step)
        return step

    async def _step_activity(self, index: int, last: bool, retry: RetryPolicy) -> StepOutcome:
        action = self._action
        prepared = action.prepared
        assert prepared is not None
        if index == 0 and prepared.first_step_failure is not None:
            # Prepare ran the first step and it raised an error that is retried:
            # that was its first attempt, so the activity has one attempt less.
            retry = await self._after_first_attempt(
                retry, prepared.first_step_failure, action.input.test_server
            )
        step = StepInput(
            action.context(),
            index,
            erase_achievement=index == 0 and not action.claimed,
            budget=retry.maximum_attempts,
            page_children=action.input.revision >= continuing.PAGED_REVISION,
        )
        outcome = await workflow.execute_activity(
            "stepped_step",
            encode(step.as_last(prepared, action.claimed) if last else step),
            result_type=dict,
            start_to_close_timeout=timedelta(seconds=prepared.activity_timeout),
            heartbeat_timeout=duration(prepared.heartbeat_timeout),
            retry_policy=unit_policy(retry),
            cancellation_type=timers.activity_cancellation(action.input.test_server),
        )
        return decode(StepOutcome, outcome)

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
        step.completed_at = self._action.released_at or self._action.now()
        workflow.logger.warning(
            "action %s: step %d failed: %s: %s",
            self._action.data.id,
            step.index,
            error.type,
            error.message,
        )
        return "failed", error
