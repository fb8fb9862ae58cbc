"""S5.2: the `stepped_achievements` table — created by the worker or by the
shipped Alembic migration, uniqueness enforced by the database, and `grant`
correct under concurrent upserts — on SQLite and PostgreSQL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from stepped_temporal import achievements, config
from stepped_temporal.migrations import SCRIPT_LOCATION, VERSIONS


async def test_worker_creates_the_table(stepped_db_env):
    """S5.2: create_worker created it with its columns and unique checksum_key."""
    inspector = sa.inspect(stepped_db_env.engine)
    columns = {c["name"] for c in inspector.get_columns("stepped_achievements")}
    assert {"checksum_key", "checksum", "created_at", "updated_at"} <= columns


async def test_exists_erase_grant_and_database_enforced_uniqueness(stepped_db_env):
    """S5.2: the three operations; a second row for one key is refused by the DB."""
    with stepped_db_env.session() as session, session.begin():
        assert not achievements.exists(session, "Car/1/visit", "abc")
        achievements.grant(session, "Car/1/visit", "abc")
        assert achievements.exists(session, "Car/1/visit", "abc")
        achievements.grant(session, "Car/1/visit", "def")
        assert not achievements.exists(session, "Car/1/visit", "abc")
        assert achievements.exists(session, "Car/1/visit", "def")
    with stepped_db_env.session() as session:
        rows = session.scalars(sa.select(achievements.Achievement)).all()
        assert [(r.checksum_key, r.checksum) for r in rows] == [("Car/1/visit", "def")]
        assert rows[0].updated_at >= rows[0].created_at
    with pytest.raises(IntegrityError), stepped_db_env.session() as session, session.begin():
        session.add(achievements.Achievement(checksum_key="Car/1/visit", checksum="x"))
    with stepped_db_env.session() as session, session.begin():
        achievements.erase(session, "Car/1/visit")
        assert not achievements.exists(session, "Car/1/visit", "def")
        achievements.erase(session, "Car/1/visit")  # erasing nothing is fine


async def test_concurrent_grants_of_one_key_leave_one_row(stepped_db_env):
    """S5.2: 16 threads granting the same key at once: no error, one row, one winner."""
    engine = stepped_db_env.engine

    def grant(number: int) -> None:
        with Session(engine) as session, session.begin():
            achievements.grant(session, "Car/drive", f"checksum-{number}")

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(grant, range(16)))

    with stepped_db_env.session() as session:
        rows = session.scalars(sa.select(achievements.Achievement)).all()
    assert len(rows) == 1 and rows[0].checksum_key == "Car/drive"
    assert rows[0].checksum in {f"checksum-{n}" for n in range(16)}


def test_alembic_migration_creates_and_drops_the_table(database_url, tmp_path):
    """S5.2: the shipped migration (its own `stepped` branch) builds the same table."""
    url = database_url or f"sqlite:///{tmp_path / 'alembic.db'}"
    engine = config.create_engine(url)
    alembic = Config()
    alembic.set_main_option("path_separator", "os")
    alembic.set_main_option("script_location", SCRIPT_LOCATION)
    alembic.set_main_option("version_locations", VERSIONS)
    try:
        with engine.begin() as connection:
            alembic.attributes["connection"] = connection
            command.upgrade(alembic, "stepped@head")
        inspector = sa.inspect(engine)
        assert "stepped_achievements" in inspector.get_table_names()
        unique = inspector.get_unique_constraints("stepped_achievements")
        assert [c["column_names"] for c in unique] == [["checksum_key"]]
        with Session(engine) as session, session.begin():
            achievements.grant(session, "k", "c")
        with pytest.raises(IntegrityError), Session(engine) as session, session.begin():
            session.add(achievements.Achievement(checksum_key="k", checksum="d"))
        with engine.begin() as connection:
            alembic.attributes["connection"] = connection
            command.downgrade(alembic, "stepped@base")
        assert "stepped_achievements" not in sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()
