"""The `stepped_achievements` table and its three operations (S5.2, S5.3).

An achievement records that the work identified by a checksum was done under a
checksum_key. `exists` backs the skip (S3.4), `erase` the erase on start
(S3.5), `grant` the grant on clean success (S3.9). `grant` is an upsert on the
unique checksum_key, correct under concurrent grants on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


class SteppedBase(DeclarativeBase):
    """Declarative base of Stepped's own tables (kept apart from the application's)."""


def _now() -> datetime:
    return datetime.now(UTC)


class Achievement(SteppedBase):
    """One achieved checksum per checksum_key."""

    __tablename__ = "stepped_achievements"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    checksum_key: Mapped[str] = mapped_column(sa.String(1024), unique=True)
    checksum: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=_now)
    updated_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), default=_now, onupdate=_now
    )


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
    now = _now()
    upsert(
        session,
        Achievement,
        {"checksum_key": checksum_key, "checksum": checksum, "created_at": now, "updated_at": now},
        key="checksum_key",
        changes={"checksum": checksum, "updated_at": now},
    )


def upsert(
    session: Session,
    table: type[SteppedBase],
    values: dict[str, Any],
    *,
    key: str,
    changes: dict[str, Any],
) -> None:
    """Insert `values`, or apply `changes` to the row whose unique `key` matches —
    one statement on PostgreSQL and SQLite, so concurrent upserts never collide."""
    dialect = session.get_bind().dialect.name
    if dialect in ("postgresql", "sqlite"):
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = insert(table).values(values)
        session.execute(statement.on_conflict_do_update(index_elements=[key], set_=changes))
        return
    column = getattr(table, key)
    updated = session.execute(sa.update(table).where(column == values[key]).values(changes))
    if updated.rowcount == 0:  # type: ignore[attr-defined]
        session.add(table(**values))


def create_tables(engine: sa.Engine) -> None:
    """Create Stepped's tables where they are missing."""
    from . import claims, outbound, records  # noqa: F401  (register their tables)

    SteppedBase.metadata.create_all(engine)
