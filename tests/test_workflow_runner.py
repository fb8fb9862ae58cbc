"""Where Stepped's workflows run (worker.py): outside Temporal's sandbox by default —
they hold no user code — and inside it with `STEPPED_WORKFLOW_SANDBOX=1`, as CI's
time-skipping pass runs the suite so the sandbox keeps checking Stepped's own
workflow code. Seen from inside each action's workflow, by an interceptor."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio import workflow
from temporalio.worker import (
    ExecuteWorkflowInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

import stepped_temporal as stepped
from stepped_temporal.testing import SteppedTestEnvironment
from stepped_temporal.worker import SANDBOX_VARIABLE
from stepped_temporal.workflow_support import ACTION_WORKFLOW
from tests.support import car_class

#: (workflow type, whether it ran in the sandbox), appended from workflow code
seen: list[tuple[str, bool]] = []


class _Inbound(WorkflowInboundInterceptor):
    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        seen.append((workflow.info().workflow_type, workflow.unsafe.in_sandbox()))
        return await super().execute_workflow(input)


class SandboxProbe(Interceptor):
    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        return _Inbound


@pytest.mark.parametrize(
    ("variable", "in_sandbox"), [(None, False), ("0", False), ("1", True)], ids=str
)
async def test_stepped_workflows_run_in_the_sandbox_only_when_asked(
    monkeypatch, variable, in_sandbox
):
    if variable is None:
        monkeypatch.delenv(SANDBOX_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(SANDBOX_VARIABLE, variable)
    seen.clear()
    Car = car_class()
    tour = Car.stepped_action("tour")
    Car.stepped_action("drive")  # a generated step calls car.drive(miles)

    @tour.step
    def _(car, step):
        step.do("drive", 5)

    async with SteppedTestEnvironment.start(interceptors=[SandboxProbe()]) as env:
        car = env.create(Car, id=1)
        result = await stepped.run(car, "tour")
        assert result.status == "succeeded"
        assert env.reload(car).mileage == 5
    assert [kind for kind, _ in seen].count(ACTION_WORKFLOW) == 2  # tour and drive
    assert {sandboxed for _, sandboxed in seen} == {in_sandbox}, seen
