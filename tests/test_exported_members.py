"""The public surface: `__all__` is pinned, and covers every name API.md uses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import stepped_temporal
import stepped_temporal.testing

API_MD = Path(__file__).resolve().parents[2] / "shared" / "spec" / "API.md"

EXPORTED = [
    "Action",
    "ActionError",
    "ActionHandle",
    "ActionNotFound",
    "ActionResult",
    "ActionState",
    "Actor",
    "ActorNotFound",
    "ActorRef",
    "ArgumentTypeError",
    "ArgumentValueError",
    "Deadlock",
    "Definition",
    "DefinitionError",
    "InvalidStatus",
    "LaneHandover",
    "LaneState",
    "NotConfigured",
    "RetryPolicy",
    "ServerLimits",
    "SettledActionHandle",
    "Status",
    "Step",
    "StepState",
    "SteppedError",
    "UnknownActorType",
    "WorkerLost",
    "action_handle",
    "checksum",
    "complete",
    "configure",
    "create_worker",
    "lane",
    "lane_pending",
    "performing_outbound",
    "run",
    "start",
]


def test_all_is_pinned_and_sorted():
    assert stepped_temporal.__all__ == EXPORTED
    assert sorted(EXPORTED) == EXPORTED
    for name in EXPORTED:
        assert getattr(stepped_temporal, name).__doc__, f"{name} has no docstring"


def test_error_hierarchy():
    errors = [
        stepped_temporal.ActorNotFound,
        stepped_temporal.ActionNotFound,
        stepped_temporal.Deadlock,
        stepped_temporal.ArgumentTypeError,
        stepped_temporal.InvalidStatus,
        stepped_temporal.WorkerLost,
    ]
    assert all(issubclass(e, stepped_temporal.SteppedError) for e in errors)
    assert issubclass(stepped_temporal.ArgumentTypeError, TypeError)
    assert issubclass(stepped_temporal.ArgumentValueError, ValueError)
    assert issubclass(stepped_temporal.ArgumentValueError, stepped_temporal.SteppedError)
    assert issubclass(stepped_temporal.InvalidStatus, ValueError)


def test_status_is_a_str_enum_of_the_eight_statuses():
    """S3.1."""
    assert stepped_temporal.Status.SUCCEEDED == "succeeded"
    assert [s.value for s in stepped_temporal.Status] == [
        "pending",
        "performing",
        "succeeded",
        "failed",
        "cancelled",
        "superseded",
        "timed_out",
        "deadlocked",
    ]
    assert [s.final for s in stepped_temporal.Status] == [False, False] + [True] * 6


@pytest.mark.skipif(not API_MD.exists(), reason=f"the specification is not at {API_MD}")
def test_every_name_api_md_uses_is_exported():
    text = API_MD.read_text()
    used = set(re.findall(r"(?<![/\w])stepped\.([A-Za-z_][A-Za-z0-9_]*)", text))
    assert used, "API.md names no stepped.X at all: the pattern is wrong"
    missing = sorted(name for name in used if not hasattr(stepped_temporal, name))
    assert missing == []
    for name in ("SteppedTestEnvironment", "handle_stepped_action_exceptions"):
        assert name in text and hasattr(stepped_temporal.testing, name)
