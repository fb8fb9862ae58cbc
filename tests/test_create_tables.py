"""Several workers starting at once on a fresh database: each creates Stepped's tables
where they are missing (`create_worker()` does), and none of them fails — on SQLite
and on PostgreSQL, where two concurrent CREATE TABLEs of one name collide in the
catalog unless the workers take turns (store/schema.py)."""

from __future__ import annotations

import threading

import sqlalchemy as sa

from stepped_temporal import config
from stepped_temporal.store import SteppedBase, create_tables

WORKERS = 8


def test_workers_starting_at_once_all_create_the_tables(database_url, tmp_path):
    url = database_url or f"sqlite:///{tmp_path / 'fresh.db'}"
    engines = [config.create_engine(url) for _ in range(WORKERS)]
    start = threading.Barrier(WORKERS)
    errors: list[BaseException] = []

    def worker(engine: sa.Engine) -> None:
        start.wait()
        try:
            create_tables(engine)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(engine,)) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    try:
        assert errors == []
        names = set(sa.inspect(engines[0]).get_table_names())
        assert set(SteppedBase.metadata.tables) <= names
        create_tables(engines[0])  # and again, with everything there: a no-op
    finally:
        for engine in engines:
            engine.dispose()
