"""The pytest plugin (entry point ``stepped_temporal``): the ``stepped_env`` fixture.

Mark a test ``@pytest.mark.stepped_app(Car, ...)`` to create those tables up
front; otherwise `env.create()` creates tables for classes as it meets them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from .testing import SteppedTestEnvironment


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "stepped_app(*actors): actor classes for stepped_env")


@pytest_asyncio.fixture
async def stepped_env(request: pytest.FixtureRequest) -> AsyncIterator[SteppedTestEnvironment]:
    """A `SteppedTestEnvironment`: time-skipping Temporal, a worker, a fresh SQLite file."""
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
