"""The shipped Alembic migrations build exactly the schema `create_tables` builds, and an
index a later release adds reaches a database whose tables exist already — on SQLite
and PostgreSQL. An action's end finds its claim by the index on `holder` (issue 28:
`held_by` scanned the table)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext

from stepped_temporal import config
from stepped_temporal.migrations import SCRIPT_LOCATION, VERSIONS
from stepped_temporal.store import SteppedBase, create_tables

HOLDER_INDEX = "ix_stepped_lane_claims_holder"


@pytest.fixture
def engine(database_url: str | None, tmp_path) -> Iterator[sa.Engine]:
    engine = config.create_engine(database_url or f"sqlite:///{tmp_path / 'schema.db'}")
    try:
        yield engine
    finally:
        engine.dispose()


def _alembic(connection: sa.Connection) -> Config:
    alembic = Config()
    alembic.set_main_option("path_separator", "os")
    alembic.set_main_option("script_location", SCRIPT_LOCATION)
    alembic.set_main_option("version_locations", VERSIONS)
    alembic.attributes["connection"] = connection
    return alembic


def _indexes(engine: sa.Engine, table: str) -> dict[str, list[str | None]]:
    return {
        i["name"]: i["column_names"] for i in sa.inspect(engine).get_indexes(table) if i["name"]
    }


def test_the_migrations_build_the_schema_create_tables_builds(engine):
    with engine.begin() as connection:
        command.upgrade(_alembic(connection), "stepped@head")
    with engine.connect() as connection:
        context = MigrationContext.configure(connection)
        differences = [
            d
            for d in compare_metadata(context, SteppedBase.metadata)
            if "alembic_version" not in str(d)
        ]
    assert differences == []
    assert _indexes(engine, "stepped_lane_claims")[HOLDER_INDEX] == ["holder"]
    with engine.begin() as connection:
        command.downgrade(_alembic(connection), "stepped@base")
    assert not any(name.startswith("stepped_") for name in sa.inspect(engine).get_table_names())


def test_create_tables_adds_a_later_index_to_an_existing_table(engine):
    create_tables(engine)
    with engine.begin() as connection:
        connection.execute(sa.text(f"DROP INDEX {HOLDER_INDEX}"))
    assert HOLDER_INDEX not in _indexes(engine, "stepped_lane_claims")
    create_tables(engine)
    assert _indexes(engine, "stepped_lane_claims")[HOLDER_INDEX] == ["holder"]
    create_tables(engine)  # and again: nothing to do, nothing fails


def test_an_actions_claim_is_found_by_the_holder_index(tmp_path):
    engine = config.create_engine(f"sqlite:///{tmp_path / 'plan.db'}")
    try:
        create_tables(engine)
        with engine.connect() as connection:
            plan = connection.exec_driver_sql(
                "EXPLAIN QUERY PLAN SELECT * FROM stepped_lane_claims WHERE holder = 'a'"
            ).all()
        assert any(HOLDER_INDEX in str(row) for row in plan), plan
    finally:
        engine.dispose()
