"""Several workers starting at once on a fresh database: each creates Stepped's tables
where they are missing (`create_worker()` does), and none of them fails — on SQLite
and on PostgreSQL, where two concurrent CREATE TABLEs of one name collide in the
catalog unless the workers take turns (store/schema.py). On SQLite the race is in
switching a fresh file to write-ahead logging, which SQLite refuses at once rather
than waiting (engines._use_wal); it is lost about one time in twelve, so the SQLite
case runs it on many fresh files."""

from __future__ import annotations

import threading

import sqlalchemy as sa

from stepped_temporal import config
from stepped_temporal.store import SteppedBase, create_tables

WORKERS = 8
#: fresh SQLite files raced on (each race was lost ~8% of the time before the retry)
SQLITE_ROUNDS = 40


def test_workers_starting_at_once_all_create_the_tables(database_url, tmp_path):
    if database_url:
        race(database_url)
    else:
        for round in range(SQLITE_ROUNDS):
            race(f"sqlite:///{tmp_path / f'fresh{round}.db'}")


def race(url: str) -> None:
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
