"""What a rolling upgrade must leave (issue 27, item 3; test_rolling_upgrade.py):
every tree ends exactly as the same tree did on the new code alone — each action, by
its place in the tree (outcomes.py), with the same Stepped status and the same
Temporal close status, the same effects, none twice — and what the workflow
histories say about the upgrade: which version ran each workflow task and activity,
how many workflow tasks failed or timed out (acceptable during an upgrade: Temporal
retries them), and whether a workflow was run by both versions.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from temporalio.api.enums.v1 import TimeoutType, WorkflowTaskFailedCause
from temporalio.client import Client, WorkflowExecutionStatus

from stepped_temporal.lanes import LANE_WORKFLOW
from stepped_temporal.trees import collect_tree
from stepped_temporal.workflows import ACTION_WORKFLOW
from tests.reliability.outcomes import Outcome, flatten, places
from tests.reliability.upgrade import Tree, UpgradeRig, Workload, task_failures, upgrade_app

#: Temporal's close statuses a lane workflow may end with
LANE_ENDS = {WorkflowExecutionStatus.COMPLETED, WorkflowExecutionStatus.CONTINUED_AS_NEW}


@dataclass
class TreeRun:
    """A finished tree: its outcome by place, and each place's actions."""

    tree: Tree
    outcome: Outcome
    #: place -> sorted (Stepped status, Temporal status, action id) of its actions
    actions: dict[str, list[tuple[str, str, str]]]


async def closed_statuses(client: Client, workflow_type: str) -> dict[str, str]:
    """Workflow id -> Temporal status of its latest run, for one workflow type."""
    found: dict[str, str] = {}
    async for execution in client.list_workflows(f'WorkflowType="{workflow_type}"'):
        status = execution.status
        if status is not None and status is not WorkflowExecutionStatus.CONTINUED_AS_NEW:
            found[execution.id] = status.name
    return found


async def tree_run(rig: UpgradeRig, tree: Tree, temporal: dict[str, str]) -> TreeRun:
    node = await collect_tree(rig.client, tree.root, limit=100_000)
    states = flatten(node)
    where = places(node, tree.fleet * upgrade_app.CAR_IDS, fleet_type="UpgradeFleet")
    with rig.engine.connect() as connection:
        rows = connection.execute(
            sa.select(upgrade_app.Effect.action_id, upgrade_app.Effect.unit)
        ).all()
    ours = Counter((a, unit) for a, unit in rows if a in where)
    actions: dict[str, list[tuple[str, str, str]]] = {}
    for s in states:
        actions.setdefault(where[s.id], []).append((str(s.status), temporal.get(s.id, "?"), s.id))
    outcome = Outcome(
        node.state,
        states,
        Counter((where[s.id], str(s.status)) for s in states),
        Counter({(where[a], unit): n for (a, unit), n in ours.items()}),
        {key: n for key, n in ours.items() if n > 1},
    )
    return TreeRun(tree, outcome, {place: sorted(found) for place, found in actions.items()})


async def compare(
    rig: UpgradeRig,
    reference: list[Tree],
    upgraded: list[Tree],
    shapes: list[list[upgrade_app.Shape]],
) -> list[str]:
    """Every difference between each upgraded tree and its reference tree (the trees
    ended and their workflows closed: Temporal's statuses are read once)."""
    temporal = await closed_statuses(rig.client, ACTION_WORKFLOW)
    gate = asyncio.Semaphore(8)

    async def run(tree: Tree) -> TreeRun:
        async with gate:
            return await tree_run(rig, tree, temporal)

    wanted = await asyncio.gather(*map(run, reference))
    got = await asyncio.gather(*map(run, upgraded))
    problems = []
    for want, have, cars in zip(wanted, got, shapes, strict=True):
        problems += differences(want, have, upgrade_app.expected_actions(cars))
    return problems


def differences(reference: TreeRun, got: TreeRun, expected_actions: int) -> list[str]:
    """Every way `got` ended otherwise than the same tree on the new code alone."""
    tree = got.tree
    label = (
        f"tree {tree.number} (fleet {tree.fleet}, started by the {tree.client} client, "
        f"root {tree.root})"
    )
    problems = []
    for name, run in (("reference", reference), ("upgraded", got)):
        if len(run.outcome.states) != expected_actions:
            problems.append(
                f"{label}: {name} run has {len(run.outcome.states)} actions, "
                f"expected {expected_actions}"
            )
        waiting = [
            f"{s.id} {s.status} step={s.current_step_index}"
            for s in run.outcome.states
            if not s.final or any(step.pending_actions_count for step in s.steps)
        ]
        if waiting:
            problems.append(f"{label}: {name} run: not final or still waiting: {waiting[:5]}")
        if run.outcome.twice:
            problems.append(f"{label}: {name} run applied effects twice: {run.outcome.twice}")
    for place in sorted(set(reference.actions) | set(got.actions)):
        want = [(status, temporal) for status, temporal, _ in reference.actions.get(place, [])]
        have = [(status, temporal) for status, temporal, _ in got.actions.get(place, [])]
        if want != have:
            ids = [action_id for _, _, action_id in got.actions.get(place, [])]
            problems.append(
                f"{label}: {place}: expected (status, Temporal status) {want}, got {have} "
                f"(action {', '.join(ids) or 'missing'})"
            )
    if got.outcome.effects != reference.outcome.effects:
        missing = reference.outcome.effects - got.outcome.effects
        extra = got.outcome.effects - reference.outcome.effects
        problems.append(
            f"{label}: effects missing {sorted(missing.items())[:10]}; "
            f"extra {sorted(extra.items())[:10]}"
        )
    return problems


@dataclass
class Tasks:
    """What the histories of one run's workflows say (its actions and lanes)."""

    executions: int = 0
    #: version -> workflow tasks it completed, activity attempts it started
    workflow_tasks: Counter[str] = field(default_factory=Counter)
    activities: Counter[str] = field(default_factory=Counter)
    #: workflow tasks that failed, by cause; and those that timed out
    failed: Counter[str] = field(default_factory=Counter)
    timed_out: Counter[str] = field(default_factory=Counter)
    #: workflows whose next workflow task went from one version to the other, by direction
    crossed: Counter[str] = field(default_factory=Counter)
    #: the first failed tasks: workflow, version, cause, message
    samples: list[str] = field(default_factory=list)
    #: lanes that closed otherwise than completed (or continued as new)
    lanes_ended_badly: list[str] = field(default_factory=list)

    def summary(self) -> str:
        failed = ", ".join(f"{n} {cause}" for cause, n in self.failed.most_common()) or "none"
        return (
            f"{self.executions} workflow runs; workflow tasks completed {dict(self.workflow_tasks)}"
            f", activity attempts {dict(self.activities)}; workflows that went from one version "
            f"to the other {dict(self.crossed)}; workflow tasks failed: {failed}; "
            f"timed out: {dict(self.timed_out) or 'none'}"
        )


async def tasks(rig: UpgradeRig, since: datetime, until: datetime | None = None) -> Tasks:
    """Scan the histories of every workflow started from `since` (before `until`)."""
    found = Tasks()
    gate = asyncio.Semaphore(8)

    async def scan(workflow_id: str, run_id: str | None, workflow_type: str) -> None:
        async with gate:
            handle = rig.client.get_workflow_handle(workflow_id, run_id=run_id)
            history = await handle.fetch_history()
        moves: set[str] = set()
        before = None
        for event in history.events:
            if event.HasField("workflow_task_completed_event_attributes"):
                ran = rig.version_of(event.workflow_task_completed_event_attributes.identity)
                if before is not None and ran != before:
                    moves.add(f"{before}->{ran}")
                before = ran
                found.workflow_tasks[ran] += 1
            elif event.HasField("activity_task_started_event_attributes"):
                ran = rig.version_of(event.activity_task_started_event_attributes.identity)
                found.activities[ran] += 1
            elif event.HasField("workflow_task_timed_out_event_attributes"):
                kind = event.workflow_task_timed_out_event_attributes.timeout_type
                found.timed_out[TimeoutType.Name(kind).removeprefix("TIMEOUT_TYPE_")] += 1
            elif event.HasField("workflow_task_failed_event_attributes"):
                failure = event.workflow_task_failed_event_attributes
                cause = WorkflowTaskFailedCause.Name(failure.cause)
                found.failed[cause.removeprefix("WORKFLOW_TASK_FAILED_CAUSE_")] += 1
                if len(found.samples) < 5:
                    message = failure.failure.message.splitlines()[:1]
                    found.samples.append(
                        f"{workflow_type} {workflow_id} on "
                        f"{rig.version_of(failure.identity)}: {cause} {message}"
                    )
        found.crossed.update(moves)

    query = f'StartTime >= "{since.isoformat()}"'
    if until is not None:
        query += f' AND StartTime < "{until.isoformat()}"'
    jobs = []
    async for execution in rig.client.list_workflows(query):
        found.executions += 1
        jobs.append(scan(execution.id, execution.run_id, execution.workflow_type))
        if execution.workflow_type == LANE_WORKFLOW and execution.status not in (
            *LANE_ENDS,
            WorkflowExecutionStatus.RUNNING,
        ):
            found.lanes_ended_badly.append(f"{execution.id}: {execution.status}")
    await asyncio.gather(*jobs)
    return found


def logged_failures(rig: UpgradeRig) -> dict[str, int]:
    """Worker -> workflow task failures its log reports."""
    counts = {worker.name: len(task_failures(worker.log)) for worker in rig.workers}
    return {name: n for name, n in counts.items() if n}


async def ended(rig: UpgradeRig, workload: Workload, seconds: float = 300.0) -> list[Tree]:
    """Wait for every tree of `workload` to end (its root closed); its trees in order.
    Raises naming the trees still open, their actions not final, the workflows whose
    workflow task keeps failing, and every log's tail."""
    deadline = time.monotonic() + seconds
    while True:
        trees = workload.trees()
        open_trees = [tree for tree in trees.values() if not await rig.closed(tree.root)]
        if len(trees) == len(workload.fleets) and not open_trees:
            return [trees[fleet] for fleet in workload.fleets]
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    lines = [f"trees not ended within {seconds}s:"]
    lines += [f"  fleet {fleet}: never started" for fleet in workload.fleets if fleet not in trees]
    for tree in open_trees:
        lines.append(
            f"  tree {tree.number} (fleet {tree.fleet}, started by the {tree.client} client, "
            f"root {tree.root}):"
        )
        lines += [f"    {line}" for line in await progress(rig.client, tree.root)]
    lines += await wedged(rig)
    raise AssertionError("\n".join([*lines, rig.logs()]))


async def progress(client: Client, root: str) -> list[str]:
    """For a failure message: the actions of a tree not final yet."""
    try:
        node = await asyncio.wait_for(collect_tree(client, root, limit=100_000), 30)
    except Exception as error:
        return [f"(tree not readable: {error!r})"]
    states = flatten(node)
    waiting = [s for s in states if not s.final]
    lines = [f"{len(waiting)} of {len(states)} actions not final:"]
    return lines + [f"{s.status} {s.name} {s.id} step={s.current_step_index}" for s in waiting[:12]]


async def wedged(rig: UpgradeRig, shown: int = 12) -> list[str]:
    """Running workflows whose latest workflow task failed: which, on which version,
    why (read from their histories, so also when no worker can answer a query)."""
    found: list[str] = []
    query = 'ExecutionStatus="Running"'
    async for execution in rig.client.list_workflows(query):
        history = await rig.client.get_workflow_handle(execution.id).fetch_history()
        last = None
        for event in history.events:
            if event.HasField("workflow_task_completed_event_attributes"):
                last = None
            elif event.HasField("workflow_task_failed_event_attributes"):
                last = event.workflow_task_failed_event_attributes
        if last is not None:
            message = last.failure.message.splitlines()[0] if last.failure.message else ""
            found.append(f"  {execution.id}: fails on {rig.version_of(last.identity)}: {message}")
    if not found:
        return ["no running workflow's latest workflow task failed"]
    return [f"{len(found)} running workflows whose latest workflow task failed:", *found[:shown]]
