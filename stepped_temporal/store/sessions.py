"""How Stepped writes: one transaction per unit of work, and a portable upsert (S1.4).

Every unit of user code, and every bookkeeping write, is its own transaction
on the configured engine — committed when the block ends, rolled back when it
raises. `upsert` is one statement on PostgreSQL and SQLite, so concurrent
grants and records never collide on a unique key. `is_transient` tells the
database being unavailable for a moment from the code being wrong (S8.2).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ..config import get_engine
from .schema import SteppedBase

__all__ = ["TRANSIENT_DB_ERRORS", "is_transient", "transaction", "upsert"]

#: Database errors of the moment (connection refused or lost, lock timeout,
#: deadlock): retried, never a failure of the action.
TRANSIENT_DB_ERRORS = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
    sa_exc.DisconnectionError,
)


def is_transient(error: BaseException) -> bool:
    """Whether `error` is the database being unavailable, not the code being wrong."""
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(error, TRANSIENT_DB_ERRORS)


@contextmanager
def transaction() -> Iterator[Session]:
    """A session in a transaction on the configured engine (objects stay usable after)."""
    with Session(get_engine(), expire_on_commit=False) as session, session.begin():
        yield session


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
