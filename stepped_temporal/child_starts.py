"""`ChildStarts`: starting the child actions a step asked for, and watching them
(S3.7, S3.11, S3.13, S3.14, S4.8, S9.4).

Children start in call order, each after the earlier calls on its lane have
joined theirs (S4.8), at most the action's `shape.child_window` open at once
and — where the `BATCHED_STARTS` patch marker is recorded — at most its
`shape.start_batch` per workflow task (both recorded in its input, shapes.py).
A child that ends without concluding (terminated, timed out, crashed) concludes
unsuccessfully, so its parent step never waits for it forever; so does a child
whose workflow failed because the action was unsuccessful (S9.4).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from temporalio import workflow
from temporalio.exceptions import ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from .action_run import ActionRun
    from .dependencies import Dependencies
    from .failures import is_action_failure
    from .keys import tenancy_key
    from .messages import REVISION, ActionInput, ChildIntent, Dependency
    from .search_attributes import initial_search_attributes, summary
    from .versioning import marked
    from .wire import Json, encode
    from .workflow_support import ACTION_WORKFLOW

#: the patch id of starting at most `ActionShape.start_batch` children per workflow task
BATCHED_STARTS = "stepped-batched-child-starts"

__all__ = ["BATCHED_STARTS", "ChildStarts", "new_child_id"]


def new_child_id(intent: ChildIntent) -> str:
    """A child's workflow id: its tenancy key and a (deterministic) unique suffix."""
    return (
        f"{tenancy_key(intent.actor_type, intent.actor_id, intent.name)}/"
        f"{workflow.uuid4().hex[:16]}"
    )


class ChildStarts:
    """Starts an action's children as child workflows and concludes them when they end."""

    def __init__(self, action: ActionRun, dependencies: Dependencies) -> None:
        self._action = action
        self._dependencies = dependencies
        self._open = 0
        #: children asked for whose start Temporal has not confirmed yet
        self._starting = 0
        #: the first child `start` was told not to start (`pause`), if any
        self.paused_at: int | None = None

    async def start(
        self,
        children: list[tuple[str, ChildIntent]],
        after: list[list[str]] | None,
        reporting: set[int],
        pause: Callable[[int], bool] | None = None,
    ) -> list[asyncio.Task[None]]:
        """Start `children` (id, intent) of a step in call order; `after` names, per
        child, the ids of earlier ones that join their lanes first (S4.8; None when
        they may join in any order), and `reporting` the children (by place in
        `children`) such later ones wait for. Returns the tasks that watch them.

        Before each child after the first, `pause(children not started)` may say
        to start no more: `paused_at` is then the first child not started."""
        self.paused_at = None
        tasks: list[asyncio.Task[None]] = []
        shape = self._action.input.shape
        # (a patch marker only where batching changes anything: more than one batch)
        batched = len(children) > shape.start_batch and marked(
            self._action.input.revision, BATCHED_STARTS
        )
        for number, (child_id, intent) in enumerate(children):
            if batched and number and number % shape.start_batch == 0:
                await workflow.wait_condition(lambda: self._starting == 0)
            await workflow.wait_condition(lambda: self._open < shape.child_window)
            if number and pause is not None and pause(len(children) - number):
                self.paused_at = number
                break
            self._open += 1
            earlier = after[number] if after else []
            tasks.append(
                asyncio.ensure_future(self._start(child_id, intent, earlier, number in reporting))
            )
        return tasks

    async def _start(
        self, child_id: str, intent: ChildIntent, after: list[str], report_joined: bool
    ) -> None:
        action = self._action
        data = action.data
        dependencies = self._dependencies
        if after:  # S4.8: earlier calls on the same lane join first
            await workflow.wait_condition(lambda: all(dependencies.in_lane(a) for a in after))
            if data.status != "performing":
                self._open -= 1
                return  # the action ended meanwhile (cancelled, timed out): start nothing
        self._starting += 1
        try:
            handle = await workflow.start_child_workflow(
                ACTION_WORKFLOW,
                encode(self._input(child_id, intent, report_joined)),
                id=child_id,
                static_summary=summary(
                    intent.actor_type, intent.actor_id, intent.name, intent.arguments
                ),
                search_attributes=(
                    initial_search_attributes(intent.actor_type, intent.actor_id, intent.name)
                    if action.input.search_attributes
                    else None
                ),
                task_queue=action.input.task_queue,
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                # a concluded step stops watching its children; that must not cancel them
                cancellation_type=workflow.ChildWorkflowCancellationType.ABANDON,
                # only its status counts here: a full ActionData is not decoded (wire.py)
                result_type=dict,
            )
        except Exception as error:
            self._open -= 1
            workflow.logger.error("action %s: child %s did not start: %s", data.id, child_id, error)
            dependencies.list_started(child_id)
            dependencies.conclude(child_id, False)
            return
        finally:
            self._starting -= 1
        dependencies.list_started(child_id)
        try:
            result: Json = await handle
        except ChildWorkflowError as error:
            if dependencies.concluded(child_id):
                return  # we stopped watching (abandon, not cancel) after it concluded
            if not is_action_failure(error.cause):  # S9.4: unsuccessful children fail
                # The child ended without concluding (terminated, timed out, crashed):
                # it can no longer conclude, so the step must not wait for it.
                workflow.logger.error(
                    "action %s: child %s ended abnormally: %s", data.id, child_id, error
                )
            dependencies.conclude(child_id, False)
        else:
            # A superseded child handed this dependency to its successor, which
            # the lane tells us about (S4.2); any other final status concludes it.
            # (fields holding their defaults are left out of the result: wire.encode)
            if result.get("status", "pending") != "superseded":
                dependencies.conclude(child_id, bool(result.get("successful", False)))
        finally:
            self._open -= 1

    def drained(self) -> bool:
        """No child is starting or running, nor waiting to start (S4.8)."""
        return self._open == 0

    def _input(self, child_id: str, intent: ChildIntent, report_joined: bool) -> ActionInput:
        """The child's input: a non-root action (S3.13) that inherits the parent's
        settings and carries its ancestry (S4.4)."""
        action = self._action
        prepared = action.prepared
        return ActionInput(
            action_id=child_id,
            actor_type=intent.actor_type,
            actor_id=intent.actor_id,
            name=intent.name,
            arguments=intent.arguments,
            task_queue=action.input.task_queue,
            parent=Dependency(action.data.id, child_id),
            ancestry=[*action.input.ancestry, action.data.id],
            search_attributes=action.input.search_attributes,
            revision=REVISION,
            shape=action.input.shape,  # sized for the cluster when the root started
            retry=intent.retry,
            activity_timeout=prepared.activity_timeout if prepared else None,
            heartbeat_timeout=prepared.heartbeat_timeout if prepared else None,
            test_server=action.input.test_server,
            report_joined=report_joined,
        )
