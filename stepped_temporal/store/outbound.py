"""Where `complete(actor, name)` finds the performing outbound action (S6.2).

An outbound action records its id under its tenancy key when it starts
performing (in the same transaction as its first activity). `complete` reads
that record and asks the action itself, by a Temporal update, to complete:
the action answers True only while it performs and has not been completed —
so the answer is exact even when the record is stale.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from .schema import OutboundPerformance
from .sessions import upsert

__all__ = ["find", "listed", "record"]


def record(session: Session, tenancy_key: str, action_id: str) -> None:
    """Note that `action_id` now performs as the outbound action of `tenancy_key`."""
    now = datetime.now(UTC)
    upsert(
        session,
        OutboundPerformance,
        {"tenancy_key": tenancy_key, "action_id": action_id, "started_at": now},
        key="tenancy_key",
        changes={"action_id": action_id, "started_at": now},
    )


def find(session: Session, tenancy_key: str) -> str | None:
    """The id of the latest outbound action that performed for `tenancy_key`."""
    return session.scalar(
        sa.select(OutboundPerformance.action_id).where(
            OutboundPerformance.tenancy_key == tenancy_key
        )
    )


def listed(session: Session, prefix: str = "") -> list[str]:
    """The ids of the latest outbound actions of every tenancy key starting with
    `prefix`, by tenancy key (each may have ended since: ask it)."""
    table = OutboundPerformance
    query = sa.select(table.action_id).order_by(table.tenancy_key)
    if prefix:
        query = query.where(table.tenancy_key.startswith(prefix, autoescape=True))
    return list(session.scalars(query))
