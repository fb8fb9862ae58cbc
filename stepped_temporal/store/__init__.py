"""Stepped's own tables and every statement on them (S1.4, S3.4, S3.5, S4, S5, S6.2, S9.5).

One place for SQL: activities (in the worker) and the client (in the
application) both read and write Stepped's tables only through these modules.

- `schema` — the four tables, their declarative base, `create_tables`.
- `sessions` — `transaction()` (one per unit of work) and a portable `upsert`.
- `achievements` — exists / erase / grant (S5; re-exported by the package's
  `achievements.py`, the user's name for them).
- `claims` — claim / release / holder of an uncontended concurrency key (S4).
- `outbound` — record / find the performing outbound action (S6.2).
- `records` — find / record / prune a committed unit's outcome (S1.4).
"""

from . import achievements, claims, outbound, records
from .schema import (
    Achievement,
    LaneClaim,
    OutboundPerformance,
    SteppedBase,
    StepRecord,
    create_tables,
)
from .sessions import TRANSIENT_DB_ERRORS, is_transient, transaction, upsert

__all__ = [
    "TRANSIENT_DB_ERRORS",
    "Achievement",
    "LaneClaim",
    "OutboundPerformance",
    "StepRecord",
    "SteppedBase",
    "achievements",
    "claims",
    "create_tables",
    "is_transient",
    "outbound",
    "records",
    "transaction",
    "upsert",
]
