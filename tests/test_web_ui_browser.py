"""S9.3, S9.4 in a real browser: Debian's chromium, headless, loads the Temporal Web
UI of a dev server after a small tree with one failure and renders (JavaScript
run, the UI's own API calls answered) the workflow list: the actions under their
readable ids, a `SteppedActor="Car/1"` search listing exactly that car's actions,
and the failure alone under the UI's Failed filter (`ExecutionStatus="Failed"`).
Skipped, saying why, when no chromium is installed (`.ci/run` installs it); no
browser is ever downloaded.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from urllib.parse import quote

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

import stepped_temporal as stepped
from stepped_temporal import binaries, search_attributes
from tests.support import car_class, configured
from tests.test_cli import free_port
from tests.test_user_environment import create

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no chromium on PATH: install Debian's chromium (.ci/run does) to run the "
    "Web UI browser test",
)

#: as root on a closed network: no sandbox, no background traffic (see the machine notes)
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


@pytest_asyncio.fixture
async def ui(tmp_path) -> AsyncIterator[str]:
    """A dev server with its Web UI and Stepped's search attributes, configured the way
    a user would; yields the UI's base URL."""
    ui_port = free_port()
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=binaries.dev_server_path(),
        dev_server_log_level="error",
        ui=True,
        ui_port=ui_port,
        search_attributes=search_attributes.ALL,
    )
    try:
        async with configured(env, tmp_path):
            yield f"http://localhost:{ui_port}"
    finally:
        await env.shutdown()


async def _rendered(url: str, folder) -> str:
    """The page's DOM after chromium ran its scripts (virtual time lets them settle)."""
    assert CHROMIUM is not None
    profile = folder / f"profile-{uuid.uuid4().hex[:6]}"
    completed = await asyncio.to_thread(
        subprocess.run,
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=15000",
         "--dump-dom", url],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-2000:]
    return completed.stdout


async def _listing(
    base: str, query: str, expected: set[str], everyone: set[str], folder
) -> set[str]:
    """Which of `everyone` the UI's workflow list shows for `query` (the visibility
    store lags a little: retried until it shows `expected`)."""
    url = f"{base}/namespaces/default/workflows"
    if query:
        url += f"?query={quote(query, safe='')}"
    deadline = time.monotonic() + 60
    while True:
        dom = await _rendered(url, folder)
        shown = {action_id for action_id in everyone if action_id in dom}
        if shown == expected or time.monotonic() > deadline:
            return shown
        await asyncio.sleep(1)


async def test_the_web_ui_lists_actions_by_id_actor_and_failure(ui, tmp_path):
    Car = car_class()
    crash = Car.stepped_action("crash")

    @crash.step
    def _(car, step):
        raise RuntimeError("hit a wall")

    one, two = create(Car, id=1), create(Car, id=2)
    crashed = await stepped.run(one, "crash")
    drove = await stepped.run(one, "drive", 3)
    other = await stepped.run(two, "drive", 4)
    assert (crashed.status, drove.status, other.status) == ("failed", "succeeded", "succeeded")
    everyone = {crashed.id, drove.id, other.id}

    assert await _listing(ui, "", everyone, everyone, tmp_path) == everyone
    by_actor = await _listing(
        ui, 'SteppedActor="Car/1"', {crashed.id, drove.id}, everyone, tmp_path
    )
    assert by_actor == {crashed.id, drove.id}
    failed = await _listing(ui, 'ExecutionStatus="Failed"', {crashed.id}, everyone, tmp_path)
    assert failed == {crashed.id}
