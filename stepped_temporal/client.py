"""Starting, waiting for, inspecting and completing actions (S9.1, S9.2, S9.4, S6)."""

from __future__ import annotations

import asyncio
import logging
import uuid
import weakref
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.common import MetricMeter
from temporalio.runtime import Runtime
from temporalio.service import RPCError, RPCStatusCode

from . import metrics, time_skipping, tracing
from .action_keys import achieved_before_start
from .arguments import encode_arguments
from .config import get_client, heartbeat_seconds, settings
from .definitions import resolve_definition
from .errors import ArgumentTypeError
from .failures import action_data
from .keys import tenancy_key
from .messages import REVISION, ActionData, ActionInput, Prepared
from .paging import step_ids
from .prepare_view import QUERY_PATIENCE, in_prepare, query_timed_out
from .registry import ActorBase, actor_ref
from .results import ActionResult, ActionState
from .search_attributes import SEARCH_ATTRIBUTES, initial_search_attributes, summary
from .shapes import action_shape
from .wire import encode
from .workflows import ACTION_WORKFLOW

log = logging.getLogger("stepped_temporal")

#: ids per page of `ActionHandle.step_actions` (about 25 KB)
STEP_PAGE = 500

#: Called with the handle of each started root action (the test environment listens).
start_listeners: list[Callable[[ActionHandle], None]] = []


class ActionHandle:
    """A started action: wait for its result, describe it, cancel it."""

    def __init__(self, client: Client, action_id: str) -> None:
        self._client = client
        self.id = action_id

    def __repr__(self) -> str:
        return f"<ActionHandle {self.id}>"

    @property
    def workflow_id(self) -> str:
        """The Temporal workflow id (the same as the action id)."""
        return self.id

    @property
    def workflow(self) -> WorkflowHandle[Any, ActionData]:
        """The underlying Temporal workflow handle. Its `result()` raises
        `WorkflowFailureError` for an unsuccessful action (S9.4); this handle's
        `result()` returns an `ActionResult` for every final status."""
        return self._client.get_workflow_handle(self.id, result_type=ActionData)

    async def result(self) -> ActionResult:
        """Wait until the action is final and return its result."""
        # on a time-skipping server the clock runs while someone waits (S10.3)
        gate = time_skipping.gate(self._client)
        if gate is None:
            data = await self._wait()
        else:
            async with gate:
                data = await self._wait()
        return ActionResult.from_data(data)

    async def _wait(self) -> ActionData:
        while True:
            try:
                return await self.workflow.result()
            except WorkflowFailureError as error:
                # S9.4: an unsuccessful action fails its workflow, with its result
                data = action_data(error.cause)
                if data is None:
                    raise
                return data
            except RuntimeError as error:
                # The time-skipping test server ends a long poll after 20 s with
                # an empty page, which the SDK reports this way: poll again.
                if "No completion event found" not in str(error):
                    raise

    async def describe(self) -> ActionState:
        """The action's state now; works after completion too."""
        try:
            data: ActionData | None = await self._query(QUERY_PATIENCE)
        except RPCError as error:
            if not query_timed_out(error):
                raise
            data = None  # busy in a workflow task: a local prepare running the first step
        if data is None or (data.status == "pending" and data.concurrency_key is None):
            # prepare has not returned: it may have claimed the key and be running
            # the first step already (the workflow cannot know yet: prepare_view.py)
            seen = await in_prepare(self._client, self.id)
            if seen is not None:
                return ActionState.from_data(seen)
            if data is None:
                data = await self._query()
            if data.status == "pending" and data.concurrency_key is None:
                # a regular prepare activity (revision 1) says so by heartbeat
                prepared = await self._performing_in_prepare()
                data = data.performing_in_prepare(prepared) if prepared else await self._query()
        return ActionState.from_data(data)

    async def _query(self, patience: timedelta | None = None) -> ActionData:
        data: ActionData = await self.workflow.query(
            "describe", result_type=ActionData, rpc_timeout=patience or settings().rpc_timeout
        )
        return data

    async def _performing_in_prepare(self) -> Prepared | None:
        """What the running prepare activity reported once it claimed the key."""
        description = await self.workflow.describe(rpc_timeout=settings().rpc_timeout)
        for pending in description.raw_description.pending_activities:
            details = pending.heartbeat_details.payloads
            if pending.activity_type.name == "stepped_prepare" and details:
                decoded = await self._client.data_converter.decode(details, [Prepared])
                if decoded and isinstance(decoded[0], Prepared):
                    return decoded[0]
        return None

    async def step_actions(self, index: int) -> AsyncIterator[str]:
        """Every id step `index` waited or waits on, in call order (S11.2), however
        many: the action answers a page at a time (`describe()` shows at most 100)."""
        state = await self.describe()
        step = state.step(index)
        if step is not None and not step.actions_left_out:  # all of them are here
            for action_id in step.actions:
                yield action_id
            return
        if step is None and not 0 <= index < state.steps_count:
            return  # no such step (yet)
        # (runs it continued as new through each hold part of them: paging.step_ids)
        async for action_id in step_ids(self._client, self.id, index, STEP_PAGE):
            yield action_id

    async def cancel(self) -> bool:
        """Cancel the action (S4.6); False when it had already ended."""
        try:
            await self.workflow.signal("cancel", rpc_timeout=settings().rpc_timeout)
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        return True


class SettledActionHandle(ActionHandle):
    """A start that found its work achieved (S3.4) while `record_achieved_starts` is
    off: final from the start, with no workflow behind it (so not in the Web UI,
    and `action_handle(id)` cannot find it later)."""

    def __init__(self, client: Client, data: ActionData) -> None:
        super().__init__(client, data.id)
        self._data = data

    def __repr__(self) -> str:
        return f"<SettledActionHandle {self.id}>"

    async def result(self) -> ActionResult:
        """The result: succeeded, nothing run."""
        return ActionResult.from_data(self._data)

    async def describe(self) -> ActionState:
        """The same state as `result()`."""
        return ActionState.from_data(self._data)

    async def cancel(self) -> bool:
        """False: it ended when it started."""
        return False


def action_handle(action_id: str, client: Client | None = None) -> ActionHandle:
    """A handle for an existing action id (needs a configured client unless given)."""
    if client is None:
        client = settings().client
        if client is None:
            from .errors import NotConfigured

            raise NotConfigured("configure(client=...) before looking up actions by id")
    return ActionHandle(client, action_id)


async def start(actor: ActorBase, name: str, *arguments: Any) -> ActionHandle:
    """Start action `name` on `actor` with `arguments`; return once durably started."""
    type_name, actor_id = actor_ref(actor)
    if not isinstance(name, str):
        raise ArgumentTypeError(f"action name must be a str, got {type(name).__name__}")
    definition = resolve_definition(type(actor), name, strict=settings().strict)
    tenancy = tenancy_key(type_name, actor_id, name)
    encoded = encode_arguments(arguments, culprit=f"start({tenancy})")
    client = await get_client()
    action_id = f"{tenancy}/{uuid.uuid4().hex[:16]}"
    task_queue = settings().task_queue
    attributes = await _search_attributes_enabled(client)
    achieved = await asyncio.to_thread(
        achieved_before_start, definition, type_name, actor_id, encoded
    )
    if achieved is not None and not settings().record_achieved_starts:
        data = ActionData(action_id, type_name, actor_id, name, list(encoded))
        data.take(achieved)
        data.achieve(datetime.now(UTC).isoformat())
        metrics.achieved_at_start(_meter(client), type_name, name)
        return _started(SettledActionHandle(client, data))
    await tracing.traced_client(client).start_workflow(
        ACTION_WORKFLOW,
        encode(
            ActionInput(
                action_id=action_id,
                actor_type=type_name,
                actor_id=actor_id,
                name=name,
                arguments=encoded,
                task_queue=task_queue,
                search_attributes=attributes,
                revision=REVISION,
                shape=action_shape(settings().server_limits),
                retry=definition.retry_data(),
                prepared=achieved,
                activity_timeout=settings().activity_timeout.total_seconds(),
                heartbeat_timeout=heartbeat_seconds(),
                test_server=time_skipping.skips_time(client),
            )
        ),
        id=action_id,
        task_queue=task_queue,
        static_summary=summary(type_name, actor_id, name, encoded),
        search_attributes=(
            initial_search_attributes(type_name, actor_id, name) if attributes else None
        ),
        rpc_timeout=settings().rpc_timeout,
    )
    return _started(ActionHandle(client, action_id))


def _meter(client: Client) -> MetricMeter:
    runtime = client.service_client.config.runtime or Runtime.default()
    return runtime.metric_meter


def _started(handle: ActionHandle) -> ActionHandle:
    for listener in list(start_listeners):
        listener(handle)
    return handle


#: Per client (weakly held: a closed client's id() may be reused by a new one
#: that talks to another server), whether the namespace registered Stepped's
#: search attributes.
_registered: weakref.WeakKeyDictionary[Client, bool] = weakref.WeakKeyDictionary()


async def _search_attributes_enabled(client: Client) -> bool:
    """S9.3: configured, or (once per client) whether the namespace registered them."""
    configured = settings().search_attributes
    if configured is not None:
        return configured
    known = _registered.get(client)
    if known is None:
        try:
            response = await client.operator_service.list_search_attributes(
                ListSearchAttributesRequest(namespace=client.namespace),
                timeout=settings().rpc_timeout,
            )
            registered = set(response.custom_attributes)
        except RPCError:
            registered = set()
        missing = sorted(set(SEARCH_ATTRIBUTES) - registered)
        known = not missing
        if missing and len(missing) < len(SEARCH_ATTRIBUTES):
            log.warning(
                "namespace %s registers some of Stepped's search attributes but not %s: "
                "actions start without any until it does (temporal operator "
                "search-attribute create --name NAME --type Keyword)",
                client.namespace,
                ", ".join(missing),
            )
        _registered[client] = known
    return known


async def run(actor: ActorBase, name: str, *arguments: Any) -> ActionResult:
    """Start action `name` and wait for its final result."""
    handle = await start(actor, name, *arguments)
    return await handle.result()
