"""Step records on `stepped_step_records`: exactly-once effects of user code (S1.4).

Temporal runs an activity at least once: a worker that dies after a step's
transaction committed, but before Temporal heard the activity complete, runs
the activity again. So each unit of user code that commits — a before hook, a
step body, an after-callback, a job — records its outcome *in its own
transaction*, under a key unique to the workflow run and the unit. A retried
activity finds the record and returns the recorded outcome instead of running
the body again; two attempts racing (a heartbeat timeout while the first still
runs) collide on the key, and the loser's transaction rolls back.

What this covers is exactly the effects made through the configured engine's
session. Calls to outside systems are not covered; pass them the unit's
idempotency key (`step.idempotency_key`, `action.idempotency_key`).

The same table keeps two tallies under keys of their own, so existing databases
need no new column: attempts whose code failed (`count_failure`, budgets.py)
and a unit's streak of lost workers (`count_loss`, losses.py; S8.2).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session
from temporalio.api.common.v1 import Payload
from temporalio.converter import JSONPlainPayloadConverter

from ..wire import encode
from .schema import StepRecord
from .sessions import upsert

__all__ = [
    "count_failure",
    "count_loss",
    "failure_key",
    "find",
    "forget",
    "found_at",
    "keep",
    "prune",
    "record",
    "record_key",
]

T = TypeVar("T")
_json = JSONPlainPayloadConverter()
_TABLE = cast(sa.Table, StepRecord.__table__)
#: built once, run with bound values (no ORM on the hot path)
_RECORD = sa.insert(_TABLE).values(
    {name: sa.bindparam(name) for name in ("key", "action_id", "outcome", "created_at")}
)
_FIND = sa.select(_TABLE.c.outcome).where(_TABLE.c.key == sa.bindparam("key"))


def record_key(run_id: str, unit: str) -> str:
    """The key of `unit` ("step/0", "before/1", "after/succeeded/0", "job") in a run."""
    return f"{run_id}/{unit}"


def find(session: Session, key: str, result_type: type[T], *, attempt: int = 0) -> T | None:
    """The recorded outcome under `key`, if its transaction committed.

    On an activity's first attempt (`attempt` 1) there is nothing to find — no
    earlier attempt ran — so the lookup is skipped; an attempt racing it still
    collides on the key when it records.
    """
    if attempt == 1:
        return None
    found = session.connection().scalar(_FIND, {"key": key})
    if found is None:
        return None
    payload = Payload(metadata={"encoding": b"json/plain"}, data=found.encode())
    decoded: T = _json.from_payload(payload, result_type)
    return decoded


def found_at(session: Session, key: str) -> datetime | None:
    """When the record under `key` was written, if its transaction committed."""
    found: datetime | None = session.scalar(
        sa.select(_TABLE.c.created_at).where(_TABLE.c.key == key)
    )
    return found


def record(session: Session, key: str, action_id: str, outcome: Any) -> None:
    """Record `outcome` under `key`, in the caller's transaction (flushed now, so a
    concurrent attempt's duplicate fails here, before either commits twice)."""
    payload = _json.to_payload(encode(outcome))  # no asdict deep copy (wire.py)
    assert payload is not None
    # a Core insert built once, executed now: cheaper than the ORM's unit of work
    session.connection().execute(
        _RECORD,
        {
            "key": key,
            "action_id": action_id,
            "outcome": payload.data.decode(),
            "created_at": datetime.now(UTC),
        },
    )


def failure_key(run_id: str, activity_id: str, attempt: int) -> str:
    """The key recording that `attempt` of an activity failed in user code."""
    return f"{run_id}/failed/{activity_id}/{attempt}"


def count_failure(
    session: Session, run_id: str, activity_id: str, attempt: int, action_id: str
) -> int:
    """Record that `attempt` of an activity failed in user code; how many of its
    attempts so far did (budgets.py). Idempotent per attempt."""
    now = datetime.now(UTC)
    values = {
        "key": failure_key(run_id, activity_id, attempt),
        "action_id": action_id,
        "outcome": "",
        "created_at": now,
    }
    upsert(session, StepRecord, values, key="key", changes={"created_at": now})
    keys = [failure_key(run_id, activity_id, number) for number in range(1, attempt + 1)]
    counted = session.scalar(sa.select(sa.func.count()).where(_TABLE.c.key.in_(keys)))
    return int(counted or 0)


def count_loss(session: Session, key: str, action_id: str, loss: str, follows: str | None) -> int:
    """Add `loss` (the id of an attempt whose worker was lost) to the streak under `key`;
    how long the streak is now (losses.py). With `follows` (the id of the attempt just
    before it) the streak goes on only if that one was lost too, and counting a loss
    twice counts it once; without, it goes on until `forget`."""
    found = session.connection().scalar(_FIND, {"key": key})
    streak: dict[str, Any] = json.loads(found) if found else {"count": 0, "last": None}
    if follows is not None and streak["last"] == loss:
        return int(streak["count"])
    count = int(streak["count"]) + 1 if follows is None or streak["last"] == follows else 1
    now = datetime.now(UTC)
    outcome = json.dumps({"count": count, "last": loss})
    values = {"key": key, "action_id": action_id, "outcome": outcome, "created_at": now}
    upsert(session, StepRecord, values, key="key", changes={"outcome": outcome, "created_at": now})
    return count


def keep(session: Session, keys: list[str]) -> None:
    """Keep the records under `keys` as long again as a new one (see `prune`)."""
    refreshed = sa.update(_TABLE).where(_TABLE.c.key.in_(keys))
    session.connection().execute(refreshed.values(created_at=datetime.now(UTC)))


def forget(session: Session, key: str) -> None:
    """Delete the record under `key` (a streak of losses that ended: losses.py)."""
    session.connection().execute(sa.delete(_TABLE).where(_TABLE.c.key == key))


def prune(session: Session, older_than: timedelta) -> int:
    """Delete records older than `older_than` (they matter only while an activity
    may still be retried); returns how many went."""
    cutoff = datetime.now(UTC) - older_than
    result = session.execute(sa.delete(StepRecord).where(StepRecord.created_at < cutoff))
    return int(result.rowcount)  # type: ignore[attr-defined]
