"""A worker's activity threads each use a database connection: the pool of the engine
Stepped creates from the URL holds as many as the worker has slots (issue 28: 200
threads queued for SQLAlchemy's default 5 + 10), on SQLite and PostgreSQL; an engine
the application made is left as it is, with a warning that names both numbers."""

from __future__ import annotations

import logging
from contextlib import ExitStack

import stepped_temporal as stepped
from stepped_temporal import config
from stepped_temporal.engines import pool_capacity
from tests.test_user_environment import user_environment

SLOTS = (30, 20)


async def test_the_engine_made_from_the_url_lends_a_connection_per_thread(database_url, tmp_path):
    async with user_environment(tmp_path) as _env:
        if database_url:
            stepped.configure(database_url=database_url)
        config.get_engine()  # made before the worker, with the default pool
        worker = stepped.create_worker(
            max_concurrent_activities=SLOTS[0], max_concurrent_local_activities=SLOTS[1]
        )
        async with worker:
            engine = config.get_engine()
            assert engine.pool.size() == sum(SLOTS)
            # every thread holds a connection at once; none waits for another's
            with ExitStack() as held:
                for _ in range(sum(SLOTS)):
                    held.enter_context(engine.connect())


async def test_an_engine_the_application_made_is_warned_about_not_replaced(tmp_path, caplog):
    async with user_environment(tmp_path) as _env:
        engine = config.create_engine(
            f"sqlite:///{tmp_path / 'own.db'}", pool_size=3, max_overflow=2
        )
        stepped.configure(engine=engine)
        with caplog.at_level(logging.WARNING, "stepped_temporal"):
            worker = stepped.create_worker(
                max_concurrent_activities=SLOTS[0], max_concurrent_local_activities=SLOTS[1]
            )
        async with worker:
            assert config.get_engine() is engine and pool_capacity(engine) == 5
        warned = [r.getMessage() for r in caplog.records if "pool_size" in r.getMessage()]
        assert warned and "lends 5 connections" in warned[0] and "50 activity threads" in warned[0]
