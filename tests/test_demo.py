"""The README's first command: `stepped-temporal demo` runs on the embedded defaults."""

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
    assert "succeeded   DemoFleet/1 tour" in output
    assert output.count("succeeded   DemoCar/") == 9
    assert "DemoCar/2: location=Paris mileage=20 honks=1" in output
    assert list(tmp_path.iterdir()) == [], "the demo leaves nothing in the working folder"
