"""An action tree (S3.7) as one OpenTelemetry trace (the `otel` extra, `configure(tracing=True)`).

Temporal's contrib `TracingInterceptor` carries the trace context through
workflow starts, activities, signals and child workflows, so an action tree is
one trace: `stepped.start` opens it with the contrib's ``StartWorkflow`` span
(inside the caller's current span, if any). Stepped adds
spans of its own, each with `stepped.actor`, `stepped.action`,
`stepped.action_id` and `stepped.status`:

- ``stepped.action`` when an action's workflow ends (a zero-length span made
  in workflow code the contrib's replay-safe way; its status is the action's
  final status, and an unsuccessful action records its failure, S9.4);
- ``stepped.step`` around each step body, in the activity that runs it (its
  status is the step's), with ``stepped.step``, the step's index;
- ``stepped.after`` around each after-callback (its status is the final
  status it was registered for).

Tracing is off unless configured; off, the activities' spans cost one check.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import (
    ExecuteWorkflowInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from .config import settings
from .messages import ActionContext
from .workflow_support import ACTION_WORKFLOW

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer

__all__ = ["SteppedSpans", "attributes", "interceptors", "span", "traced_client", "tracer"]

_INSTRUMENTATION = "stepped_temporal"


def tracer() -> Tracer | None:
    """The tracer of the configured provider; None while tracing is off."""
    configured = settings().tracing
    if not configured:
        return None
    from opentelemetry import trace

    provider = None if configured is True else configured
    return trace.get_tracer(_INSTRUMENTATION, tracer_provider=provider)


def attributes(context: ActionContext) -> dict[str, Any]:
    """The attributes every Stepped span of an action carries (its status comes apart)."""
    return {
        "stepped.actor": f"{context.actor_type}/{context.actor_id}",
        "stepped.action": context.name,
        "stepped.action_id": context.action_id,
    }


@contextlib.contextmanager
def span(name: str, context: ActionContext, **extra: Any) -> Iterator[Span | None]:
    """A span around user code in an activity (a child of the contrib's activity span);
    the caller sets ``stepped.status`` on it. Nothing while tracing is off."""
    current = tracer()
    if current is None:
        yield None
        return
    label = f"{name} {context.actor_type}/{context.actor_id} {context.name}"
    with current.start_as_current_span(label, attributes={**attributes(context), **extra}) as made:
        yield made


#: per client, the same client with the contrib's interceptor added (weakly held)
_traced: weakref.WeakKeyDictionary[Client, Client] = weakref.WeakKeyDictionary()


def traced_client(client: Client) -> Client:
    """`client`, or while tracing is on a client like it that also carries the trace
    context: the root action's start opens the trace its whole tree shares."""
    if not settings().tracing:
        return client
    from temporalio.contrib.opentelemetry import TracingInterceptor

    config = client.config()
    if _has_contrib(config["interceptors"]):
        return client
    traced = _traced.get(client)
    if traced is None:
        # its plugins already shaped this config: do not apply them twice
        config["interceptors"] = [*config["interceptors"], TracingInterceptor(tracer())]
        config["plugins"] = []
        traced = _traced[client] = Client(**config)
    return traced


def _has_contrib(interceptors: Iterable[object]) -> bool:
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return any(isinstance(found, TracingInterceptor) for found in interceptors)


def interceptors(present: Iterable[object] = ()) -> list[Interceptor]:
    """The worker interceptors tracing needs beside `present` (the client's and the
    caller's): the contrib's, unless one is there already (it is both kinds), then
    Stepped's action spans."""
    if not settings().tracing:
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    if _has_contrib(present):
        return [SteppedSpans()]
    return [TracingInterceptor(tracer(), always_create_workflow_spans=True), SteppedSpans()]


class SteppedSpans(Interceptor):
    """Adds the ``stepped.action`` span as an action's workflow ends."""

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        return _ActionSpan


class _ActionSpan(WorkflowInboundInterceptor):
    """Runs inside the contrib's workflow interceptor, so its span has the workflow's."""

    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        if workflow.info().workflow_type != ACTION_WORKFLOW:
            return await super().execute_workflow(input)
        from temporalio.contrib.opentelemetry.workflow import completed_span

        from .failures import is_action_failure

        try:
            result = await super().execute_workflow(input)
        except Exception as error:
            details = error.details[0] if is_action_failure(error) else None  # type: ignore[attr-defined]
            completed_span(_name(details), attributes=_attributes(details), exception=error)
            raise
        completed_span(_name(result), attributes=_attributes(result))
        return result


def _name(data: Any) -> str:
    if not isinstance(data, dict):
        return "stepped.action"
    return f"stepped.action {data.get('actor_type')}/{data.get('actor_id')} {data.get('name')}"


def _attributes(data: Any) -> dict[str, Any]:
    info = workflow.info()
    if not isinstance(data, dict):
        return {"stepped.action_id": info.workflow_id, "stepped.status": "failed"}
    return {
        "stepped.actor": f"{data.get('actor_type')}/{data.get('actor_id')}",
        "stepped.action": str(data.get("name")),
        "stepped.action_id": str(data.get("id", info.workflow_id)),
        "stepped.status": str(data.get("status", "pending")),
    }
