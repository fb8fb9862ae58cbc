"""Engines for the configured database: SQLite set up for many worker threads, and
reads that take no write lock (S1.4, S5.2).
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

__all__ = ["READ_ONLY", "create_engine", "pool_capacity"]

#: Execution option of reads that need no write lock (see `read_session`).
READ_ONLY = "stepped_read_only"


def create_engine(url: str, *, connections: int | None = None, **kwargs: Any) -> Engine:
    """An engine for `url`; SQLite ones are set up for many worker threads.

    `connections`: how many threads use it at once (a worker's activity slots);
    its pool keeps that many connections, so no thread waits for another's (the
    default pool of 5 + 10 would make 200 threads queue for 15 connections).

    SQLite transactions begin with BEGIN IMMEDIATE, so two step transactions on
    one file serialise instead of losing an update or failing on a lock upgrade.
    A SQLite file is switched to write-ahead logging: every unit of work is a
    commit, and a WAL commit costs less than half a rollback-journal one (one
    fsync, still durable: `synchronous` stays FULL), while readers (the client's
    `describe`, `lane`) never wait for a writer.
    """
    parsed = sa.engine.make_url(url)
    in_memory = parsed.database in (None, "", ":memory:") or "mode=memory" in str(parsed)
    if connections and not in_memory:
        kwargs.setdefault("pool_size", connections)
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(url, pool_pre_ping=True, **kwargs)
    connect_args = {"check_same_thread": False, "timeout": 30, **kwargs.pop("connect_args", {})}
    engine = sa.create_engine(url, connect_args=connect_args, **kwargs)

    @sa.event.listens_for(engine, "connect")
    def _no_implicit_transactions(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        if not in_memory:
            _use_wal(dbapi_connection, float(connect_args["timeout"]))

    @sa.event.listens_for(engine, "begin")
    def _begin_immediate(connection: sa.Connection) -> None:
        if not connection.get_execution_options().get(READ_ONLY):
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def pool_capacity(engine: Engine) -> int | None:
    """How many connections `engine`'s pool lends at once, None when unbounded."""
    pool = engine.pool
    if isinstance(pool, sa.QueuePool):
        overflow = pool._max_overflow  # no public accessor; -1 means unbounded
        return None if overflow < 0 else pool.size() + overflow
    return None


def _use_wal(dbapi_connection: Any, patience: float) -> None:
    """Switch a SQLite file to write-ahead logging (kept by the file once set).

    On a fresh file several connections may switch at once; SQLite answers the
    losers "database is locked" at once, without waiting out its busy timeout, so
    they try again until the file is in WAL mode or `patience` runs out.
    """
    deadline = time.monotonic() + patience
    pause = 0.005
    while True:
        try:
            dbapi_connection.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            busy = error.sqlite_errorcode == sqlite3.SQLITE_BUSY  # "database is locked"
            if not busy or time.monotonic() >= deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.1)
