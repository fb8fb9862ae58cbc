"""Crash tests run only on request: ``pytest --reliability`` or ``STEPPED_RELIABILITY=1``.

They start real processes (the Temporal dev server, worker subprocesses, a TCP
proxy in front of PostgreSQL) and kill them, so they take minutes, not seconds.
The ``--reliability`` option itself is declared in tests/conftest.py (pytest reads
options only from the conftests it loads before parsing the command line).
Each test's figures (kills survived, effects counted, recovery times) are printed
and repeated in a "reliability figures" section at the end of the run.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.databases import postgres_schema, postgres_unreachable

FIGURES = pytest.StashKey[list[str]]()
ENV = "STEPPED_RELIABILITY"


def enabled(config: pytest.Config) -> bool:
    """Whether the reliability tests run in this session."""
    return bool(config.getoption("--reliability", default=False)) or os.environ.get(ENV) == "1"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "reliability: crash test with real processes; runs with --reliability or "
        "STEPPED_RELIABILITY=1",
    )
    config.stash[FIGURES] = []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if enabled(config):
        return
    skip = pytest.mark.skip(
        reason="reliability test (kills workers and servers, takes minutes): "
        "run with --reliability or STEPPED_RELIABILITY=1"
    )
    for item in items:
        if item.get_closest_marker("reliability") is not None:
            item.add_marker(skip)


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Report a line of figures: printed now, and repeated at the end of the run."""
    name = request.node.name

    def report(line: str) -> None:
        print(f"[{name}] {line}", flush=True)
        request.config.stash[FIGURES].append(f"{name}: {line}")

    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = terminalreporter.config.stash.get(FIGURES, [])
    if lines:
        terminalreporter.section("reliability figures")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture
def reliability_db(tmp_path: Path) -> Iterator[str]:
    """A fresh PostgreSQL schema when PostgreSQL is reachable, else a SQLite file."""
    if postgres_unreachable() is None:
        with postgres_schema() as url:
            yield url
    else:
        yield f"sqlite:///{tmp_path / 'reliability.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL schema; skips, saying why, when PostgreSQL is unreachable."""
    reason = postgres_unreachable()
    if reason:
        pytest.skip(reason)
    with postgres_schema() as url:
        yield url


def backend(url: str) -> str:
    return sa.make_url(url).get_backend_name()
