"""The pytest plugin (entry point ``stepped_temporal``): the ``stepped_env`` fixture.

Mark a test ``@pytest.mark.stepped_app(Car, ...)`` to create those tables up
front; otherwise `env.create()` creates tables for classes as it meets them.

``--stepped-server=dev`` (or ``STEPPED_TEST_SERVER=dev``) runs every
`SteppedTestEnvironment` on the Temporal dev server instead of the
time-skipping test server, like the SDK's own CI runs its suite on both (S10.3).
A test marked ``@pytest.mark.time_skipping`` (it waits hours) is skipped there.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from .testing import SERVERS, SteppedTestEnvironment


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--stepped-server",
        choices=SERVERS,
        default=None,
        help="the Temporal server of stepped_env and SteppedTestEnvironment: "
        "time-skipping (default) or dev (also: STEPPED_TEST_SERVER)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "stepped_app(*actors): actor classes for stepped_env")
    config.addinivalue_line(
        "markers", "time_skipping: needs the time-skipping server (skipped on the dev server)"
    )
    chosen = config.getoption("--stepped-server") or os.environ.get("STEPPED_TEST_SERVER")
    if chosen:
        if chosen not in SERVERS:
            raise pytest.UsageError(f"STEPPED_TEST_SERVER must be one of {SERVERS}, not {chosen!r}")
        SteppedTestEnvironment.default_server = chosen


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if SteppedTestEnvironment.default_server != "dev":
        return
    skip = pytest.mark.skip(
        reason="needs the time-skipping server: it waits hours of Temporal time"
    )
    for item in items:
        if item.get_closest_marker("time_skipping"):
            item.add_marker(skip)


@pytest_asyncio.fixture
async def stepped_env(request: pytest.FixtureRequest) -> AsyncIterator[SteppedTestEnvironment]:
    """A `SteppedTestEnvironment`: time-skipping Temporal (or the server chosen with
    ``--stepped-server``), a worker, a fresh SQLite file."""
    marker = request.node.get_closest_marker("stepped_app")
    app: tuple[Any, ...] = tuple(marker.args) if marker else ()
    async with SteppedTestEnvironment.start(app=app) as env:
        yield env


@pytest_asyncio.fixture
async def stepped_dev_env(request: pytest.FixtureRequest) -> AsyncIterator[SteppedTestEnvironment]:
    """Like `stepped_env`, on the Temporal dev server (real time, every feature)."""
    marker = request.node.get_closest_marker("stepped_app")
    app: tuple[Any, ...] = tuple(marker.args) if marker else ()
    async with SteppedTestEnvironment.start(app=app, server="dev") as env:
        yield env
