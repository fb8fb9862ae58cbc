"""Tracing (the `otel` extra): with `configure(tracing=provider)` an action tree is one
OpenTelemetry trace — Temporal's contrib spans plus a `stepped.action` span per
action, a `stepped.step` span per step body and a `stepped.after` span per
after-callback, each with the actor, action, action id and status. Checked with
the SDK's in-memory exporter, on Temporal's own `WorkflowEnvironment` (the server
`--stepped-server` chose), configured the way a user would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.testing import WorkflowEnvironment

import stepped_temporal as stepped
from stepped_temporal import binaries, config
from stepped_temporal.testing import SteppedTestEnvironment
from tests.support import car_class, configured, rally_with_a_crash
from tests.test_user_environment import create


@pytest_asyncio.fixture
async def traced(tmp_path) -> AsyncIterator[tuple[WorkflowEnvironment, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    if SteppedTestEnvironment.default_server == "dev":
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=binaries.dev_server_path(), dev_server_log_level="error"
        )
    else:
        env = await WorkflowEnvironment.start_time_skipping(
            test_server_existing_path=binaries.test_server_path()
        )
    try:
        async with configured(env, tmp_path, tracing=provider):
            yield env, exporter
    finally:
        await env.shutdown()


ATTRIBUTES = ("stepped.actor", "stepped.action", "stepped.action_id", "stepped.status")


def _ancestors(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[ReadableSpan]:
    found = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        found.append(span)
    return found


async def test_a_two_level_tree_with_a_failing_leaf_is_one_trace(traced):
    _, exporter = traced
    Car = car_class()
    rally_with_a_crash(Car)
    Car.stepped_definition("rally").failed(lambda car, action, wrecked, driven: car.honk())
    cars = [create(Car, id=n) for n in (1, 2, 3)]

    result = await stepped.run(cars[0], "rally", cars[1], cars[2])
    assert result.status == "failed"
    crashed_id, drove_id = result.steps[0].actions

    spans = exporter.get_finished_spans()
    assert len({span.context.trace_id for span in spans}) == 1, "one trace for the tree"
    by_id = {span.context.span_id: span for span in spans}
    roots = [span for span in spans if not _ancestors(span, by_id) and span.parent is None]
    assert len(roots) == 1 and roots[0].name == "StartWorkflow:SteppedAction", roots

    actions = {
        s.attributes["stepped.action_id"]: s for s in spans if s.name.startswith("stepped.action")
    }
    assert set(actions) == {result.id, crashed_id, drove_id}
    assert actions[result.id].name == "stepped.action Car/1 rally"
    assert {k: actions[result.id].attributes[k] for k in ATTRIBUTES} == {
        "stepped.actor": "Car/1",
        "stepped.action": "rally",
        "stepped.action_id": result.id,
        "stepped.status": "failed",
    }
    assert actions[crashed_id].attributes["stepped.status"] == "failed"
    assert actions[crashed_id].attributes["stepped.actor"] == "Car/2"
    assert actions[drove_id].attributes["stepped.status"] == "succeeded"
    assert any(event.name == "exception" for event in actions[crashed_id].events)

    # the leaves hang under the root's child starts, everything under the start
    def started_by_root(span: ReadableSpan, name: str) -> bool:
        above = _ancestors(span, by_id)
        return roots[0] in above and any(
            s.name == name and s.attributes["temporalWorkflowID"] == result.id for s in above
        )

    for leaf in (crashed_id, drove_id):
        assert started_by_root(actions[leaf], "StartChildWorkflow:SteppedAction"), leaf
    assert roots[0] in _ancestors(actions[result.id], by_id)

    steps = [s for s in spans if s.name.startswith("stepped.step")]
    by_action = {s.attributes["stepped.action_id"]: s for s in steps}
    assert set(by_action) == {result.id, crashed_id, drove_id}
    assert by_action[crashed_id].attributes["stepped.status"] == "failed"
    assert by_action[drove_id].attributes["stepped.status"] == "succeeded"
    assert by_action[result.id].attributes["stepped.step"] == 0
    assert by_action[crashed_id].name == "stepped.step Car/2 crash"

    (after,) = [s for s in spans if s.name.startswith("stepped.after")]
    assert after.attributes["stepped.action_id"] == result.id
    assert after.attributes["stepped.status"] == "failed"
    assert started_by_root(after, "RunActivity:stepped_finish")


def test_tracing_takes_true_false_or_a_provider():
    saved = config.settings()
    try:
        with pytest.raises(TypeError, match="TracerProvider"):
            stepped.configure(tracing="yes")
        stepped.configure(tracing=True)
        assert config.settings().tracing is True
        stepped.configure(tracing=False)
        assert config.settings().tracing is False
    finally:
        config._settings = saved
