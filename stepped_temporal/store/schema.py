"""The schema of every Stepped table, in one place (S1.4, S4, S5.2, S6.2).

- `stepped_achievements`: one achieved checksum per checksum_key (S5.2);
  statements in `achievements.py`.
- `stepped_lane_claims`: who holds an uncontended concurrency key (S4); `claims.py`.
- `stepped_outbound_performances`: the outbound action performing per tenancy
  key (S6.2); `outbound.py`.
- `stepped_step_records`: the outcome of each committed unit of user code
  (S1.4); `records.py`.

They share a declarative base of their own, kept apart from the application's,
so `create_tables` touches nothing else.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "Achievement",
    "LaneClaim",
    "OutboundPerformance",
    "StepRecord",
    "SteppedBase",
    "create_tables",
]


class SteppedBase(DeclarativeBase):
    """Declarative base of Stepped's own tables (kept apart from the application's)."""


def _now() -> datetime:
    return datetime.now(UTC)


class Achievement(SteppedBase):
    """One achieved checksum per checksum_key (unique, enforced by the database)."""

    __tablename__ = "stepped_achievements"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    checksum_key: Mapped[str] = mapped_column(sa.String(1024), unique=True)
    checksum: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=_now)
    updated_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), default=_now, onupdate=_now
    )


class LaneClaim(SteppedBase):
    """Who holds an uncontended concurrency key, or that a lane workflow owns it."""

    __tablename__ = "stepped_lane_claims"

    concurrency_key: Mapped[str] = mapped_column(sa.String(1024), primary_key=True)
    #: indexed: an action's end finds its claim by holder (`claims.held_by`)
    holder: Mapped[str | None] = mapped_column(sa.String(1100), nullable=True, index=True)
    holder_checksum_key: Mapped[str | None] = mapped_column(sa.String(1024), nullable=True)
    holder_checksum: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    contended: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    claimed_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))


class OutboundPerformance(SteppedBase):
    """The latest outbound action that started performing for a tenancy key."""

    __tablename__ = "stepped_outbound_performances"

    tenancy_key: Mapped[str] = mapped_column(sa.String(1024), primary_key=True)
    action_id: Mapped[str] = mapped_column(sa.String(1100))
    started_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))


class StepRecord(SteppedBase):
    """The outcome of one committed unit of user code."""

    __tablename__ = "stepped_step_records"

    key: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    action_id: Mapped[str] = mapped_column(sa.String(1100))
    outcome: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), index=True)


#: the PostgreSQL advisory lock workers take turns on while creating the tables
#: (any fixed 64-bit number; this one spells "stepped" in ASCII)
CREATE_LOCK = 0x73746570706564


def create_tables(engine: sa.Engine) -> None:
    """Create Stepped's tables where they are missing.

    Several workers starting at once on a fresh database must not trip over each
    other: two concurrent CREATE TABLEs of one name fail on PostgreSQL (a unique
    violation in its catalog), and both may have seen the table missing. So the
    check and the creation run in one transaction, one worker at a time — under an
    advisory lock on PostgreSQL, under the write lock on SQLite (its transactions
    here begin IMMEDIATE).

    An index added by a later release (as the migration that ships with it does)
    is created on a table that exists already.
    """
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": CREATE_LOCK})
        SteppedBase.metadata.create_all(connection)
        for table in SteppedBase.metadata.sorted_tables:
            for index in table.indexes:
                index.create(connection, checkfirst=True)
