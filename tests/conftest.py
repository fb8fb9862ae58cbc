"""Shared test set-up: the `stepped_env` fixture comes from the package's pytest plugin."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from stepped_temporal.testing import SteppedTestEnvironment
from tests.databases import postgres_schema, postgres_unreachable

_status = {"code": 0}


def pytest_addoption(parser: pytest.Parser) -> None:
    # Here, not in tests/reliability/conftest.py: pytest only takes options from the
    # conftests it loads before parsing, and that one loads later for `pytest --reliability`.
    parser.addoption(
        "--reliability",
        action="store_true",
        help="run the crash tests in tests/reliability (also: STEPPED_RELIABILITY=1)",
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None for the environment's SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield None
        return
    reason = postgres_unreachable()
    if reason:
        pytest.skip(reason)
    with postgres_schema() as url:
        yield url


@pytest_asyncio.fixture
async def stepped_db_env(database_url: str | None) -> AsyncIterator[SteppedTestEnvironment]:
    """`stepped_env` on each database: SQLite and PostgreSQL."""
    async with SteppedTestEnvironment.start(database_url=database_url) as env:
        yield env


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _status["code"] = int(exitstatus)


def pytest_unconfigure(config: pytest.Config) -> None:
    # temporalio/sdk-python#300: the Rust bridge's threads can crash CPython's
    # finalisation (SIGABRT/SIGSEGV) after every test passed; keep pytest's status.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_status["code"])
