"""`ActionWorkflow`: the deterministic interpreter of one action (S3, S4.9, S6.1-S6.3,
S7.1, S9.2, S9.4, S11.4).

It never imports user code or reads the registry: it only acts on what the
activities report (how many steps, what each step asked for). So changing a
definition never makes an in-flight workflow non-deterministic.

`run` is the lifecycle of S3, in order; the rest lives in modules of its own:
the state it keeps (`action_run`), its prepare (`action_prepare`), its turn in
the lane (`lane_turns`), its steps and job (`step_runs`), what they wait on
(`dependencies`, `child_starts`), its stop short of the history limits
(`history_limits`) and finishing (`finish`).
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from . import action_probes, history_limits, lane_checks, metrics, timers
    from .action_prepare import prepare
    from .action_run import ActionRun
    from .bounds import bounded, ids_after, step_at
    from .dependencies import Dependencies
    from .endings import Ending, answer_late_adoption, finish
    from .failures import FAILURE_TYPES, PATCH, failure
    from .lane_messages import Conclusion, Forward, Verdict
    from .lane_turns import take_turn
    from .messages import REVISION, ActionData, ActionInput, ErrorData, Prepared
    from .search_attributes import STATUS
    from .step_runs import StepRuns
    from .versioning import marked, refuse_unknown
    from .wait_for import Probe
    from .wire import Json, decode, encode
    from .workflow_support import ACTION_WORKFLOW, accepted, now, received

#: how often an outbound action waiting for completion wakes (costs two events)
OUTBOUND_WAKE = timedelta(days=1)


@workflow.defn(name=ACTION_WORKFLOW)
class ActionWorkflow:
    """One action: prepare, wait for the lane, run steps, finish, notify."""

    @workflow.init
    def __init__(self, input: Json) -> None:
        # an ActionInput, rebuilt by `wire.decode`: Temporal's converter would
        # re-evaluate its type hints on every start (see wire.py)
        self._action = ActionRun(decode(ActionInput, input))
        self._dependencies = Dependencies(self._action.data)
        self._steps = StepRuns(self._action, self._dependencies)

    # -- messages ------------------------------------------------------------
    @workflow.signal
    def verdict(self, verdict: Verdict) -> None:
        """The lane's word: perform, superseded, shared, deadlocked, withdrawn, resolved."""
        if accepted(verdict, Verdict, "verdict"):
            self._action.verdicts.append(verdict)
            if verdict.kind == "perform":  # an adoption after we released: again
                answer_late_adoption(self._action)

    @workflow.signal
    def conclude(self, conclusion: Conclusion) -> None:
        """A dependency of one of this action's steps concluded."""
        if accepted(conclusion, Conclusion, "conclude"):
            self._dependencies.conclude(conclusion.dependency_id, conclusion.successful)

    @workflow.signal
    def joined(self, action_id: str) -> None:
        """A child that later siblings join after has joined its lane (S4.8)."""
        if accepted(action_id, str, "joined"):
            self._dependencies.joined(action_id)

    @workflow.signal
    def forward(self, forward: Forward) -> None:
        """A dependency now waits on a successor: list it in the waiting step (S4.2)."""
        if accepted(forward, Forward, "forward"):
            for successor in [*forward.via, forward.successor]:  # (merged forwards)
                self._dependencies.forward(forward.dependency_id, successor, forward.lane)
            if forward.lane is not None:  # check the lane answering for it now
                lane_checks.check_forwards(self._action, self._dependencies)
            if self._action.probed:  # S4.9: probes that went to the superseded child
                action_probes.forwarded(self._action, self._dependencies, forward.successor)

    @workflow.signal(unfinished_policy=workflow.HandlerUnfinishedPolicy.ABANDON)
    async def probe(self, raw: Json) -> None:
        """A deadlock probe (S4.9): pass it on along what this action waits for."""
        probe = received(Probe, raw, "probe")
        if probe is not None:
            await action_probes.answer(self._action, self._dependencies, probe)

    @workflow.update
    def complete(self, status: str, reason: str | None = None) -> bool:
        """Complete a performing outbound action from outside (S6.1-S6.3), an
        unsuccessful status with the `reason` as its error's message (S9.6).

        True when this call completed it; False when it is not (or no longer)
        performing, not outbound, or was completed already.
        """
        action = self._action
        if (
            action.data.status != "performing"
            or not action.data.outbound
            or action.completion is not None
            or action.cancel_requested
        ):
            return False
        action.completion = status
        action.completion_reason = reason
        return True

    @complete.validator
    def _complete_status(self, status: str, reason: str | None = None) -> None:
        if status not in ("succeeded", "failed", "cancelled", "timed_out"):
            raise ValueError(f"invalid status {status!r}")

    @workflow.signal
    def cancel(self) -> None:
        """Cancel the action (S4.6): pending ones leave the queue, performing ones complete."""
        self._action.cancel_requested = True

    @workflow.query
    def describe(self) -> ActionData:
        """The action's state, at any time (S9.2), each step's ids bounded (S11.2)."""
        return bounded(self._action.data)

    @workflow.query
    def step_actions_after(self, index: int, after: str | None, count: int) -> list[str]:
        """A page of the ids step `index` waited on (`ActionHandle.step_actions`)."""
        step = step_at(self._action.data, index)
        return ids_after(step.actions if step else [], after, count)

    # -- the action ----------------------------------------------------------
    @workflow.run
    async def run(self, input: Json) -> Json:
        """S3 in order: prepare; then achieved, performing at once, pending in the
        lane until its turn, or ended before it began; then finish."""
        action = self._action
        refuse_unknown("action", action.data.id, action.input.revision, REVISION)  # a newer one
        ending: Ending | None
        if action.input.resume is not None:  # an earlier run continued as new (S11.1)
            ending = await self._perform()
        else:
            metrics.started(action.data)
            ending = await self._begin(await prepare(action))
        if ending is not None:
            await finish(action, ending)
        action.upsert(STATUS.value_set(action.data.status))
        metrics.finished(action.data, achieved=action.achieved)
        # the ActionData, written as Temporal would write it, only faster (wire.py)
        result: Json = encode(bounded(action.data))
        if action.data.status in FAILURE_TYPES and marked(action.input.revision, PATCH):
            raise failure(action.data, result)  # S9.4: the Web UI shows it failed
        return result

    async def _begin(self, prepared: Prepared | None) -> Ending | None:
        """What prepare found decides how the action goes on: how it ends, or None
        when it ended already (failed early, or achieved: nothing to finish)."""
        action = self._action
        if prepared is None:  # unreadable input, or prepare failed for good (S8.2)
            return None
        if prepared.outcome == "achieved":  # S3.4: succeeded at once, nothing to finish
            action.achieved = True
            action.data.achieve(now())
            return None
        if prepared.outcome == "claimed":  # nobody else holds the key: no lane to wait in
            action.claimed = True
            return await self._perform()
        if prepared.outcome == "joined":  # S3.5, S4.1: pending until the lane decides
            return await take_turn(action, self._perform)
        # S3.2: before cancelled, completed or failed; S4.4: a deadlock seen at once
        action.data.error = prepared.error
        return Ending(prepared.outcome, release=False, callbacks=False)

    async def _perform(self) -> Ending:
        """Steps, then the job, then (outbound) the completion from outside — raced
        against cancellation, outside completion and the timeout (S3.5, S6, S7)."""
        action = self._action
        data = action.data
        prepared = action.prepared
        assert prepared is not None
        data.status = "performing"
        if action.performing_since is None:  # (else a run before this one began it)
            action.performing_since = workflow.now()
            data.started_at = prepared.first_step_started_at or now()
            if prepared.outcome == "joined":  # its turn in the lane came
                metrics.lane_waited(data, workflow.now() - workflow.info().start_time)
        work = asyncio.ensure_future(self._work())
        if action.input.revision >= 1:
            # let the work run until it waits: done already (its steps ran in
            # prepare), it never shows as performing — its end is upserted next
            await workflow.wait_condition(lambda: True)
            if not work.done():
                action.upsert(STATUS.value_set("performing"))
        else:
            action.upsert(STATUS.value_set("performing"))

        def interrupted() -> bool:
            return (
                work.done()
                or action.cancel_requested
                or action.completion is not None
                or history_limits.reached(action, self._dependencies) is not None  # S11.4
            )

        timed_out = False
        if prepared.timeout is None:
            await workflow.wait_condition(interrupted)
        else:
            # (counted from when it began performing: a run before this one may have)
            left = timedelta(seconds=prepared.timeout) - (workflow.now() - action.performing_since)
            timed_out = not await timers.wait_condition(
                interrupted,
                max(left, timedelta(milliseconds=1)),
                test_server=action.input.test_server,
            )
        if work.done() and not timed_out:
            status, error = work.result()
        else:
            limit = None if timed_out else history_limits.reached(action, self._dependencies)
            action.interrupting = True  # see StepRuns._stop_if_interrupted
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await work
            if limit is not None and action.completion is None and not action.cancel_requested:
                workflow.logger.error("%s: %s", limit.type, limit.message)
                status, error = "failed", limit
            else:
                status, error = action.interruption(timed_out), action.completion_error()
        if status == "achieved":  # S3.4, found only once the lane let it perform
            action.achieved = True
            data.steps.clear()
            data.current_step_index = None
            return Ending("succeeded", release=True, callbacks=False, grant=False)
        data.error = error
        return Ending(status, release=True)

    async def _work(self) -> tuple[str, ErrorData | None]:
        """The steps (S3.6-S3.8), then the job (S6.4), then an outbound action's
        wait for its completion from outside (S6.1)."""
        action = self._action
        prepared = action.prepared
        assert prepared is not None
        status, error = await self._steps.run_steps()
        if status != "succeeded":
            return status, error
        if prepared.job:
            return await self._steps.run_job()
        if prepared.outbound:  # S6.1: performing until completed from outside
            while action.completion is None:
                # Wake daily: a workflow with no timer at all lets the time-skipping
                # test server jump straight to its 10-year execution timeout.
                await timers.wait_condition(
                    lambda: action.completion is not None,
                    OUTBOUND_WAKE,
                    test_server=action.input.test_server,
                )
            return action.completion, action.completion_error()
        return "succeeded", None


__all__ = ["ACTION_WORKFLOW", "ActionWorkflow"]
