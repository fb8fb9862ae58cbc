"""Crash points for the reliability tests: a worker killed exactly in a critical window
(S1.4 exactly-once, S4.2 superseding, S3.9 callbacks then grant, S6.4 job retries).

Off unless the worker's environment names them, and then nothing but a dict
lookup per point. ``STEPPED_FAULTS="step-committed=2,job-retry=1"`` makes the
points of those names kill their process (SIGKILL, as a machine failure would:
no cleanup, no activity completion) that many times in all, counted across
every worker process by marker files in ``STEPPED_FAULTS_DIR``, so a restarted
worker replaying the same code does not crash again. The windows:

- ``step-committed``: a step's transaction committed, its activity not completed;
- ``lane-granted``: a lane let the action perform and its start committed (the
  achievement erased), its first step not run;
- ``supersede-handover``: a lane decided to supersede a pending action, in the
  middle of the workflow task that hands its dependents to the candidate;
- ``callbacks-done``: the after-callbacks committed, the achievement not granted;
- ``job-retry``: a job's retry (attempt 2 or later) committed, its activity not
  completed.

A point inside workflow code (``supersede-handover``) only ends the process: the
workflow task never completes and another worker replays it, which is the
window under test; it changes no command, so it cannot break determinism.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path

__all__ = ["ENV", "ENV_DIR", "WINDOWS", "crash_point", "fired"]

ENV = "STEPPED_FAULTS"
ENV_DIR = "STEPPED_FAULTS_DIR"
WINDOWS = (
    "step-committed",
    "lane-granted",
    "supersede-handover",
    "callbacks-done",
    "job-retry",
)

log = logging.getLogger("stepped_temporal")


def _parse(text: str) -> dict[str, int]:
    armed: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, count = item.partition("=")
        if name not in WINDOWS:
            raise ValueError(f"{ENV}: unknown window {name!r}; known: {', '.join(WINDOWS)}")
        armed[name] = int(count or 1)
    return armed


_armed = _parse(os.environ.get(ENV, ""))


def crash_point(window: str) -> None:
    """Kill this process here if `window` is armed and has firings left."""
    count = _armed.get(window)
    if not count:
        return
    folder = Path(os.environ.get(ENV_DIR) or ".")
    for number in range(count):
        try:
            os.close(os.open(folder / f"{window}.{number}", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            continue
        log.error("fault injection: killing worker %d in window %s", os.getpid(), window)
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    _armed[window] = 0  # every firing used up: back to the fast path


def fired(folder: Path, window: str) -> int:
    """How many times `window` fired (for the tests)."""
    return len(list(folder.glob(f"{window}.*")))
