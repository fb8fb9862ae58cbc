"""What a workflow does with a history another release wrote (S10.3; the versioning
rule of docs/architecture.md).

Three duties, all on the workflow side:

- **Refuse what this worker does not know.** An input asks for a behaviour by
  its `revision` (`ActionInput.revision`, `LaneState.revision`). A worker of an
  older release that is handed a newer revision — a rolling upgrade, where old
  and new workers poll one task queue — must not run it the old way: it fails
  the workflow *task* (never the workflow) with an error that says why, and
  Temporal hands the task to another worker, until a newer one takes it.

- **Replay the one change that was shipped unversioned.** Lane runs that
  recorded no continue-as-new threshold were written with 2,000 (0013fc8 and
  later) or 3,000 (before): nothing in such a history says which, and replaying
  it with the other fails with a non-determinism error. So a worker tries the
  newer threshold first and, when Temporal evicts that run for
  non-determinism, remembers to try the older one (`learn`), which the
  retried task then replays with. At most one failed task per such run and
  worker, only for runs older than shapes, and never for new ones: their
  threshold is in their state (`shapes.LaneShape`). This memory is the one
  thing workflow code reads that is not in the history; it only ever selects
  which of the two recorded pasts the run had, and a wrong guess cannot pass
  replay unnoticed.

- **Mark a behaviour where replay finds it again** (`marked`). A patch
  marker is looked for in the workflow task that recorded it, but Temporal
  (SDK 1.35) may hand a local activity's result to the workflow one task
  later than it first did, when that result crossed a task boundary (a busy
  worker): a `workflow.patched` call right after a local activity then
  replays a task too early, finds no marker, and the run fails with
  "Non-deprecated patch marker encountered … but there is no corresponding
  change command". The markers older releases record after a local activity
  (prepare, finish) go through `marked`: from `ActionInput.revision` 3 the
  action takes the behaviour and records a *deprecated* marker, which replay
  accepts wherever it lies — and which also matches the marker an older
  worker of a mixed fleet records there, as it takes the same path. A
  behaviour older releases never had keeps `workflow.patched`, asked where no
  local activity's result precedes it: a revision-3 input that an older worker
  ran (it does not refuse it) has no such marker and replays without it.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict

from temporalio import workflow

from .shapes import LEGACY_LANE_HISTORY_LIMITS

__all__ = [
    "MARKED_DEPRECATED",
    "UnknownRevision",
    "learn",
    "legacy_lane_limit",
    "marked",
    "refuse_unknown",
]

#: the first `ActionInput.revision` whose runs record their behaviours deprecated
MARKED_DEPRECATED = 3

log = logging.getLogger("stepped_temporal")

#: how many legacy lane runs a worker remembers (each a few dozen bytes)
_REMEMBERED = 10_000
_lock = threading.Lock()
#: run id -> index into LEGACY_LANE_HISTORY_LIMITS, for the runs that asked
_legacy_runs: OrderedDict[str, int] = OrderedDict()


class UnknownRevision(RuntimeError):
    """A workflow input asks for a revision newer than this worker knows.

    Not a Temporal failure type: raised from workflow code it fails the
    workflow task, not the workflow, so the task goes to another worker."""


def refuse_unknown(kind: str, workflow_id: str, revision: int, known: int) -> None:
    """Raise `UnknownRevision` (and say so in the log) when `revision` > `known`."""
    if revision <= known:
        return
    message = (
        f"{kind} {workflow_id} was started with revision {revision}, and this worker "
        f"knows revisions up to {known}: it leaves the task to a newer worker "
        f"(upgrade stepped_temporal on this worker)"
    )
    log.error(message)
    raise UnknownRevision(message)


def marked(revision: int, patch_id: str) -> bool:
    """Whether an action of `revision` takes the behaviour `patch_id` names (see above):
    always from `MARKED_DEPRECATED` on (a deprecated marker records it), else as
    `workflow.patched` says."""
    if revision >= MARKED_DEPRECATED:
        workflow.deprecate_patch(patch_id)
        return True
    return workflow.patched(patch_id)


def legacy_lane_limit(run_id: str) -> int:
    """The continue-as-new threshold to replay a lane run that recorded none with."""
    with _lock:
        index = _legacy_runs.setdefault(run_id, 0)
        _legacy_runs.move_to_end(run_id)
        while len(_legacy_runs) > _REMEMBERED:
            _legacy_runs.popitem(last=False)
    return LEGACY_LANE_HISTORY_LIMITS[index]


def learn(run_id: str, message: str) -> None:
    """Temporal evicted run `run_id` for non-determinism: if it is a lane run that
    recorded no threshold, its next replay tries the next older one."""
    with _lock:
        index = _legacy_runs.get(run_id)
        if index is None or index + 1 >= len(LEGACY_LANE_HISTORY_LIMITS):
            return  # not a legacy lane run, or every threshold tried: a real bug
        _legacy_runs[run_id] = index + 1
    log.warning(
        "lane run %s, recorded by a release before 0013fc8, did not replay with a "
        "continue-as-new threshold of %d events; its next task replays it with %d (%s)",
        run_id,
        LEGACY_LANE_HISTORY_LIMITS[index],
        LEGACY_LANE_HISTORY_LIMITS[index + 1],
        message,
    )
