"""Every activity, listed and registered here; each lives with its lifecycle stage (S1.4).

Activities are the only place user code runs and SQL is touched. Each unit of
user code runs against an actor loaded fresh, in its own transaction,
committed when it returns and rolled back when it raises (`user_code.py`),
in a thread with heartbeats and database outages waited out (`execution.py`).

- `stepped_prepare` (`preparing.py`): before performing — before hooks, keys,
  achievement, claim or lane (S3.2-S3.5, S4.4).
- `stepped_step` (`stepping.py`): one step body and its intents (S3.5-S3.7).
- `stepped_job` (`jobs.py`): a job-backed action's job (S6.4).
- `stepped_finish` (`finishing.py`): after-callbacks, grant, release (S3.9).
- `stepped_step_page` (`step_pages.py`): a page of a wide step's children (S11.1).

Stepped's tables and their statements are in `store/`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .execution import set_executor
from .finishing import finish
from .jobs import run_job
from .preparing import prepare
from .step_pages import read_page
from .stepping import run_step

__all__ = [
    "ALL_ACTIVITIES",
    "finish",
    "prepare",
    "read_page",
    "run_job",
    "run_step",
    "set_executor",
]

ALL_ACTIVITIES: tuple[Callable[..., Any], ...] = (prepare, run_step, run_job, finish, read_page)
