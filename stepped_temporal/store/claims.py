"""Lane claims on `stepped_lane_claims` (S4.1, S4.4, S9.5): a lane nobody contends needs no
lane workflow.

Most keys never see two actions at once (a fan-out over a hundred cars has a
hundred keys), and a lane workflow costs each of them a workflow start, two
signals and two workflow tasks — more than the action itself. So an action
that reaches S3.5 first *claims* its concurrency key, in the transaction that
checked its achievement:

- no row: it inserts one naming itself the holder and performs at once; no
  lane workflow exists. It deletes the row when it ends.
- a row: the key is contended, and the action joins the lane workflow, which
  owns the key from then on (S4). The first to find the row uncontended marks
  it ``contended``; every join carries the holder the row names, so the lane
  adopts it as performing (once: it ignores a holder it knows). The join is
  signalled after the transaction commits — never while the row is locked,
  since Temporal may be slow — so the holder's release can reach the lane
  first, or before any lane run exists: an adopted holder finds ``contended``
  at its release and tells the lane, which remembers a release from an action
  it never held and then does not adopt it (lane_rules.py); a release that
  found no lane run is answered by the holder when the lane's perform verdict
  reaches it (workflows.py), or, if it has closed, the failed verdict frees
  the lane.

A contended row stays: that key keeps using its lane workflow, which still ends
when idle (S4.5). Only row-level facts cross the lock, so SQLite (whose
transactions here begin IMMEDIATE) and PostgreSQL (``SELECT … FOR UPDATE``)
behave alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ..lane_messages import LaneHolder
from .schema import LaneClaim

__all__ = ["Claim", "claim", "held_by", "holder", "release"]


@dataclass(frozen=True)
class Claim:
    """How an action holds its key: by claim (no lane), or through the lane workflow."""

    claimed: bool
    #: the holder the lane must adopt before anything else, unless it knows it
    #: (only when joining)
    holder: LaneHolder | None = None
    #: the holder is an ancestor of the claimant: it would wait for itself (S4.4)
    deadlocked_with: str | None = None
    #: claimed just now (not held since an earlier attempt)
    fresh: bool = False


def claim(
    session: Session,
    key: str,
    action_id: str,
    checksum_key: str | None,
    checksum: str | None,
    ancestry: list[str],
) -> Claim:
    """Claim `key` for `action_id`, or mark it contended (see the module docstring)."""
    values = {
        "concurrency_key": key,
        "holder": action_id,
        "holder_checksum_key": checksum_key,
        "holder_checksum": checksum,
        "contended": False,
        "claimed_at": datetime.now(UTC),
    }
    if _insert_if_absent(session, values):
        return Claim(claimed=True, fresh=True)
    row = _locked(session, key)
    if row is None:  # deleted between the insert and the read: try once more
        session.add(LaneClaim(**values))
        session.flush()
        return Claim(claimed=True, fresh=True)
    if row.holder == action_id:
        # A retried prepare whose first attempt claimed the key: it holds it still,
        # even if a joiner has since marked the key contended (and handed it to the
        # lane, which adopted it as performing) — so its end clears the holder.
        return Claim(claimed=True)
    if row.holder is not None and row.holder in ancestry:
        return Claim(claimed=False, deadlocked_with=row.holder)
    holder = None
    if row.holder is not None:
        holder = LaneHolder(row.holder, row.holder_checksum_key, row.holder_checksum)
    if not row.contended:
        row.contended = True
    return Claim(claimed=False, holder=holder)


_TABLE = cast(sa.Table, LaneClaim.__table__)
#: the uncontended release: built once, run with bound values (no ORM on the hot path)
_RELEASE = sa.delete(_TABLE).where(
    _TABLE.c.concurrency_key == sa.bindparam("key"),
    _TABLE.c.holder == sa.bindparam("holder"),
    _TABLE.c.contended.is_(False),
)
#: the claim, per dialect: insert unless a row exists (`_insert_if_absent`)
_CLAIMS: dict[str, sa.Insert] = {}


def release(session: Session, key: str, action_id: str) -> bool:
    """Give `key` up; True when a lane workflow owns it and must be told.

    Idempotent: a second release, or one after the key moved on, changes
    nothing (a spurious release to the lane is ignored there).
    """
    deleted = session.connection().execute(_RELEASE, {"key": key, "holder": action_id})
    if deleted.rowcount:
        return False  # the common case, in one statement: nobody else came
    row = _locked(session, key)
    if row is None or not row.contended:
        return False  # released already, or the key moved on to another holder
    if row.holder == action_id:
        row.holder = None
        return True
    return row.holder is None


def _locked(session: Session, key: str) -> LaneClaim | None:
    return session.get(LaneClaim, key, with_for_update=True, populate_existing=True)


def _insert_if_absent(session: Session, values: dict[str, Any]) -> bool:
    connection = session.connection()
    dialect = connection.dialect.name
    if dialect in ("postgresql", "sqlite"):
        statement = _CLAIMS.get(dialect)
        if statement is None:
            insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
            statement = _CLAIMS[dialect] = (
                insert(_TABLE)
                .values({name: sa.bindparam(name) for name in values})
                .on_conflict_do_nothing(index_elements=["concurrency_key"])
                .returning(_TABLE.c.concurrency_key)
            )
        # RETURNING, not rowcount: an insert's rowcount is not exact on psycopg
        return connection.execute(statement, values).first() is not None
    if session.get(LaneClaim, values["concurrency_key"]) is not None:
        return False
    session.add(LaneClaim(**values))
    session.flush()
    return True


def holder(session: Session, key: str) -> str | None:
    """The action holding `key` by claim, when no lane workflow owns it (S9.5)."""
    row = session.get(LaneClaim, key)
    return row.holder if row is not None and not row.contended else None


def held_by(session: Session, action_id: str) -> LaneClaim | None:
    """The claim `action_id` holds, if any (an action holds at most one key), by the
    index on `holder`."""
    return session.scalars(sa.select(LaneClaim).where(LaneClaim.holder == action_id)).first()
