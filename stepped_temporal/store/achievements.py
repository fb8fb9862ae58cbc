"""The achievement's three operations on `stepped_achievements` (S3.4, S3.5, S3.9, S5).

`exists` backs the skip (S3.4), `erase` the erase on start (S3.5), `grant`
the grant on clean success (S3.9). `grant` is an upsert on the unique
checksum_key, correct under concurrent grants on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from .schema import Achievement
from .sessions import upsert

__all__ = ["erase", "exists", "grant"]


def exists(session: Session, checksum_key: str, checksum: str) -> bool:
    """Whether the achievement under `checksum_key` holds exactly `checksum`."""
    found = session.scalar(
        sa.select(Achievement.checksum).where(Achievement.checksum_key == checksum_key)
    )
    return found == checksum


def erase(session: Session, checksum_key: str) -> None:
    """Remove whatever achievement `checksum_key` holds."""
    # a Core statement: no ORM bookkeeping on the hot path
    table = cast(sa.Table, Achievement.__table__)
    session.execute(sa.delete(table).where(table.c.checksum_key == checksum_key))


def grant(session: Session, checksum_key: str, checksum: str) -> None:
    """Set the achievement under `checksum_key` to `checksum` (insert or update)."""
    now = datetime.now(UTC)
    upsert(
        session,
        Achievement,
        {"checksum_key": checksum_key, "checksum": checksum, "created_at": now, "updated_at": now},
        key="checksum_key",
        changes={"checksum": checksum, "updated_at": now},
    )
