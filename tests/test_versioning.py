"""The versioning rule, kept mechanically (issue 27; docs/architecture.md "Versioning").

Whatever decides which commands a workflow issues is recorded per run: numbers
in `shapes` (whose defaults are what older runs used, pinned here), behaviours
behind patch markers (each listed in the architecture page), and no workflow
module grows an integer constant that replay would read. The one unversioned
change of the past (the lane's 3,000 → 2,000 threshold) replays through
`versioning`'s fallback, which this file drives directly; tests/test_replay.py
replays the recorded histories themselves.
"""

from __future__ import annotations

import ast
import base64
import json
import re
import uuid
from collections import OrderedDict
from dataclasses import astuple
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from stepped_temporal import versioning
from stepped_temporal.lanes import LaneWorkflow
from stepped_temporal.shapes import (
    CURRENT_ACTION_SHAPE,
    CURRENT_LANE_SHAPE,
    LEGACY_LANE_HISTORY_LIMITS,
    ActionShape,
    LaneShape,
)
from stepped_temporal.worker import workflow_runner
from stepped_temporal.workflows import ActionWorkflow
from tests.test_package_structure import GRAPH, MODULES

ROOT = Path(__file__).resolve().parents[1]
ARCHITECTURE = (ROOT / "docs" / "architecture.md").read_text()

#: integer constants workflow modules may keep, and why replay never reads them
#: to decide a command
ALLOWED = {
    "stepped_temporal.messages.PAYLOAD_VERSION": "checked at the boundary, fails the action",
    "stepped_temporal.messages.REVISION": "written into new inputs; runs read their own",
    "stepped_temporal.lane_messages.LANE_REVISION": "written into new lane runs",
    "stepped_temporal.lane_rules.HANDOVERS": "the length of a list in the lane's state",
    "stepped_temporal.bounds.SHOWN_IDS": "the length of id lists in query answers and results",
    "stepped_temporal.bounds.SHOWN_STEPS": "the steps in query answers, results and a continued "
    "run's input (recorded there: the next run reads what it was given)",
    "stepped_temporal.workflow_support.SIGNAL_PAUSE": "a timer's duration: not replayed",
    "stepped_temporal.workflow_support.SIGNAL_PAUSE_MAX": "a timer's duration, as above",
    "stepped_temporal.wait_for.MAX_HOPS": "the default of Probe.well_formed; workflows pass theirs",
    "stepped_temporal.versioning._REMEMBERED": "how many legacy lane runs a worker remembers",
    "stepped_temporal.versioning.MARKED_DEPRECATED": "a revision: runs read their own",
    "stepped_temporal.history_limits.STOPPING_REVISION": "a revision: runs read their own",
    "stepped_temporal.continuing.CONTINUING_REVISION": "a revision: runs read their own",
    "stepped_temporal.history_limits.AHEAD_REVISION": "a revision: runs read their own",
    "stepped_temporal.continuing.STEP_REVISION": "a revision: runs read their own",
    "stepped_temporal.continuing.PAGED_REVISION": "a revision: runs read their own",
}


def _workflow_modules() -> set[str]:
    """Every package module the two workflows import, transitively."""
    seen: set[str] = set()
    todo = ["stepped_temporal.workflows", "stepped_temporal.lanes"]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(GRAPH[name])
    return seen - {"stepped_temporal.shapes", "stepped_temporal"}


def _int_constants(path: Path) -> list[str]:
    found = []
    for node in ast.parse(path.read_text()).body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        value = node.value if isinstance(node, ast.Assign) else None
        if isinstance(value, ast.Constant) and type(value.value) in (int, float):
            found += [t.id for t in targets if isinstance(t, ast.Name) and t.id.isupper()]
    return found


def test_workflow_modules_keep_no_number_that_replay_would_read():
    """A number that shapes commands lives in shapes.py and travels in the input."""
    offenders = [
        f"{name}.{constant}"
        for name in sorted(_workflow_modules())
        for constant in _int_constants(MODULES[name])
        if f"{name}.{constant}" not in ALLOWED
    ]
    assert not offenders, (
        f"{offenders}: a number in a workflow module is read again at replay; put it "
        f"in shapes.py (see docs/architecture.md, Versioning) or explain it in ALLOWED"
    )


def test_every_patch_marker_is_listed_in_the_architecture_page():
    ids = set()
    for path in MODULES.values():
        ids.update(re.findall(r'^[A-Z_]+ = "(stepped-[a-z-]+)"', path.read_text(), re.M))
    ids.discard("stepped-lane/")  # keys.LANE_PREFIX, not a marker
    assert len(ids) >= 11
    missing = sorted(i for i in ids if f"`{i}`" not in ARCHITECTURE)
    assert not missing, f"patch markers missing from docs/architecture.md: {missing}"


def test_shape_defaults_are_what_runs_before_shapes_used():
    """Defaults decode every input written before shapes: never change them."""
    # (the stops are read from revision 4 on, continue_events from 5, step_events and
    # the events a step's rest adds from 6: older inputs decode to them unread)
    assert astuple(ActionShape()) == (
        *(1000, 50, 256, 64, 60, 40_960, 41_943_040, 5_120),
        *(10_140, 45, 20),
    )
    assert astuple(LaneShape()) == (None, 200, 1000, 64)
    assert LEGACY_LANE_HISTORY_LIMITS == (2000, 3000)
    assert ActionShape() == CURRENT_ACTION_SHAPE  # nothing travels yet
    assert CURRENT_LANE_SHAPE.history_limit == 2000


def test_a_legacy_lane_run_tries_the_older_threshold_after_a_nondeterminism_error():
    run = uuid.uuid4().hex
    assert versioning.legacy_lane_limit(run) == 2000
    versioning.learn(run, "Nondeterminism error: No command scheduled for event 2043")
    assert versioning.legacy_lane_limit(run) == 3000
    versioning.learn(run, "again")  # both tried: a real bug, left to fail loudly
    assert versioning.legacy_lane_limit(run) == 3000
    other = uuid.uuid4().hex
    versioning.learn(other, "a run that never asked")  # not a legacy lane run
    assert versioning.legacy_lane_limit(other) == 2000


@pytest.mark.parametrize("sandboxed", [False, True], ids=["unsandboxed", "sandboxed"])
async def test_a_lane_run_recorded_with_the_older_threshold_replays_after_one_eviction(
    monkeypatch, sandboxed
):
    """Through Temporal's own Replayer and Stepped's runner: a lane run that recorded
    no threshold, replayed with one it passed without continuing (here 30 events,
    standing in for 2,000), fails with a non-determinism error; the runner tells
    `versioning`, and the next replay takes the older threshold and succeeds —
    what a worker does with a lane run written before 0013fc8."""
    monkeypatch.setattr(versioning, "LEGACY_LANE_HISTORY_LIMITS", (30, 3000))
    monkeypatch.setattr(versioning, "_legacy_runs", OrderedDict())  # a fresh worker
    recorded = ROOT / "tests" / "histories" / "f11ba91-dev" / "28.json"
    history = WorkflowHistory.from_json(f"lane-{uuid.uuid4().hex}", recorded.read_text())
    assert len(history.events) > 30 and "SteppedLane" in recorded.read_text()
    replayer = Replayer(
        workflows=[ActionWorkflow, LaneWorkflow], workflow_runner=workflow_runner(sandboxed)
    )
    first = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert first.replay_failure is not None and "ondeterminism" in str(first.replay_failure)
    second = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert second.replay_failure is None, second.replay_failure


SPLIT = ROOT / "tests" / "data" / "split-task-unsuccessful.json"


def _as_written_now(text: str) -> str:
    """The split history as this release writes it: input revision 3, and the
    patch marker after the local activity recorded deprecated."""
    history = json.loads(text)
    started = history["events"][0]["workflowExecutionStartedEventAttributes"]
    payload = started["input"]["payloads"][0]
    data = json.loads(base64.b64decode(payload["data"]))
    payload["data"] = base64.b64encode(json.dumps({**data, "revision": 3}).encode()).decode()
    for event in history["events"]:
        marker = event.get("markerRecordedEventAttributes")
        if marker and marker["markerName"] == "core_patch":
            patch = marker["details"]["patch-data"]["payloads"][0]
            details = json.loads(base64.b64decode(patch["data"]))
            patch["data"] = base64.b64encode(
                json.dumps({**details, "deprecated": True}).encode()
            ).decode()
    return json.dumps(history)


async def test_a_marker_after_a_local_activity_replays_wherever_its_task_fell():
    """Recorded at fda2b05 on a starved machine: an unsuccessful action whose finish
    (a local activity) returned one workflow task after its marker was recorded,
    so its PATCH marker and ending sit in the next task. Temporal's replay hands
    the activity's result over a task earlier and the `patched` call finds no
    marker yet: that history (revision 2) can never replay — `describe()` of such
    an action fails. Written by this release (revision 3: a deprecated marker),
    the same history replays."""
    replayer = Replayer(workflows=[ActionWorkflow, LaneWorkflow], workflow_runner=workflow_runner())
    text = SPLIT.read_text()
    recorded = WorkflowHistory.from_json("split", text)
    assert "core_local_activity" in text and "core_patch" in text
    old = await replayer.replay_workflow(recorded, raise_on_replay_failure=False)
    assert "patch marker encountered" in str(old.replay_failure), old.replay_failure
    now = WorkflowHistory.from_json("split-now", _as_written_now(text))
    result = await replayer.replay_workflow(now, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure
