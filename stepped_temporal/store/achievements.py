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

_TABLE = cast(sa.Table, Achievement.__table__)
#: built once, run with a bound value: no ORM bookkeeping on the hot path
_ERASE = sa.delete(_TABLE).where(_TABLE.c.checksum_key == sa.bindparam("checksum_key"))
_EXISTS = sa.select(_TABLE.c.checksum).where(_TABLE.c.checksum_key == sa.bindparam("checksum_key"))


def exists(session: Session, checksum_key: str, checksum: str) -> bool:
    """Whether the achievement under `checksum_key` holds exactly `checksum`."""
    found = session.connection().scalar(_EXISTS, {"checksum_key": checksum_key})
    return bool(found == checksum)


def erase(session: Session, checksum_key: str) -> None:
    """Remove whatever achievement `checksum_key` holds."""
    session.connection().execute(_ERASE, {"checksum_key": checksum_key})


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
