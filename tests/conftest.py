"""Shared test set-up: the `stepped_env` fixture comes from the package's pytest plugin."""

from __future__ import annotations

import os
import sys

import pytest

_status = {"code": 0}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _status["code"] = int(exitstatus)


def pytest_unconfigure(config: pytest.Config) -> None:
    # temporalio/sdk-python#300: the Rust bridge's threads can crash CPython's
    # finalisation (SIGABRT/SIGSEGV) after every test passed; keep pytest's status.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_status["code"])
