"""S1.4 on SQLite and PostgreSQL: each callable in its own transaction."""

from __future__ import annotations

import stepped_temporal as stepped
from tests.support import car_class


async def test_step_commits_on_return_and_rolls_back_on_raise(stepped_db_env):
    """S1.4: a step's change persists without save; a raising step's change does not."""
    Car = car_class()
    tune = Car.stepped_action("tune")

    @tune.step
    def _(car, step):
        car.mileage = 100

    @tune.step
    def _(car, step):
        car.honks = 5
        raise ValueError("engine stalled")

    car = stepped_db_env.create(Car, id=1)
    result = await stepped.run(car, "tune")

    assert result.status == "failed"
    assert (result.error.type, result.error.message) == ("ValueError", "engine stalled")
    reloaded = stepped_db_env.reload(car)
    assert (reloaded.mileage, reloaded.honks) == (100, 0)


async def test_fan_out_over_many_actors_writes_each_once(stepped_db_env):
    """S1.4, S3.11: children on ten actors run concurrently, each in its own transaction."""
    Car = car_class()
    rally = Car.stepped_action("rally")

    @rally.step
    def _(car, step, others):
        step.on(others, "drive", 7)
        step.on(others, "honk")

    cars = [stepped_db_env.create(Car, id=n) for n in range(1, 12)]
    result = await stepped.run(cars[0], "rally", cars[1:])

    assert result.status == "succeeded"
    assert len(result.steps[0].actions) == 20
    assert [(c.mileage, c.honks) for c in map(stepped_db_env.reload, cars[1:])] == [(7, 1)] * 10


def test_a_sqlite_file_is_written_ahead_and_memory_still_works(tmp_path):
    """S1.4: every unit of work is a commit; a SQLite file takes them through its
    write-ahead log (durable, half the fsyncs), and an in-memory database (which has
    no log) still works."""
    import sqlalchemy as sa

    from stepped_temporal import config

    engine = config.create_engine(f"sqlite:///{tmp_path / 'wal.db'}")
    with engine.begin() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        connection.execute(sa.text("create table t (v int)"))
        connection.execute(sa.text("insert into t values (1)"))
    assert (tmp_path / "wal.db-wal").exists()
    memory = config.create_engine("sqlite://")
    with memory.begin() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "memory"
        assert connection.exec_driver_sql("select 1").scalar() == 1
