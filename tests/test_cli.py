"""The `stepped-temporal` command run as a user runs it: worker, dev and tree as
subprocesses, against real Temporal dev servers, with an application module
written into a temporary folder (the command puts the working folder on sys.path).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

import stepped_temporal
import stepped_temporal as stepped
from stepped_temporal import registry
from stepped_temporal.binaries import dev_server_path

COMMAND = shutil.which("stepped-temporal") or str(Path(sys.executable).parent / "stepped-temporal")

MYAPP = '''\
"""A user's application: one SQLAlchemy actor with a `tour` that honks."""

from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import stepped_temporal as stepped


class Base(DeclarativeBase):
    pass


class Car(stepped.Actor, Base):
    __tablename__ = "cars"
    id: Mapped[int] = mapped_column(primary_key=True)
    honks: Mapped[int] = mapped_column(default=0)

    def honk(self) -> None:
        self.honks += 1


tour = Car.stepped_action("tour")


@tour.step
def _(car, step):
    step.do("honk")
'''


@pytest.fixture
def app(tmp_path: Path) -> tuple[Path, str, dict[str, str]]:
    """The folder holding myapp.py, bad.py and empty.py; its database URL; the env."""
    (tmp_path / "myapp.py").write_text(MYAPP)
    (tmp_path / "bad.py").write_text('raise RuntimeError("boom on import")\n')
    (tmp_path / "empty.py").write_text("VALUE = 1\n")
    url = f"sqlite:///{tmp_path / 'app.db'}"
    env = {**os.environ, "STEPPED_DATABASE_URL": url}
    env.pop("TEMPORAL_ADDRESS", None)
    return tmp_path, url, env


@contextmanager
def loaded_app(folder: Path, url: str) -> Iterator[tuple[ModuleType, sa.Engine]]:
    """myapp imported into this process with its table created; registry, config restored."""
    saved_registry = dict(registry._registry)
    engine = stepped_temporal.config.create_engine(url)
    try:
        spec = importlib.util.spec_from_file_location("myapp", folder / "myapp.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["myapp"] = module
        spec.loader.exec_module(module)
        module.Base.metadata.create_all(engine)
        with Session(engine) as session, session.begin():
            session.add(module.Car(id=1))
        yield module, engine
    finally:
        configured = stepped_temporal.config.settings().engine
        if configured is not None and configured is not engine:
            configured.dispose()
        stepped_temporal.config.reset()
        sys.modules.pop("myapp", None)
        registry._registry.clear()
        registry._registry.update(saved_registry)
        engine.dispose()


def honks(module: ModuleType, engine: sa.Engine) -> int:
    """Car 1's honks as the database holds them."""
    with Session(engine) as session:
        return session.get_one(module.Car, 1).honks


@asynccontextmanager
async def dev_server() -> AsyncIterator[WorkflowEnvironment]:
    """A Temporal dev server for one test."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=dev_server_path(), dev_server_log_level="error"
    )
    try:
        yield env
    finally:
        await env.shutdown()


async def spawn(*arguments: str, cwd: Path, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        COMMAND,
        *arguments,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def read_until(process: asyncio.subprocess.Process, prefix: str, seconds: float) -> str:
    """Stdout lines until one starts with `prefix`; all of them, as one string."""
    assert process.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + seconds
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"no line starting with {prefix!r} in {seconds}s: {seen}")
        line = (await asyncio.wait_for(process.stdout.readline(), remaining)).decode()
        if not line:
            assert process.stderr is not None
            error = (await process.stderr.read()).decode()
            raise AssertionError(f"exited before {prefix!r}: {''.join(seen)}{error}")
        seen.append(line)
        if line.startswith(prefix):
            return "".join(seen)


async def finish(process: asyncio.subprocess.Process, seconds: float) -> tuple[int, str, str]:
    """Wait for the process to exit and read the rest of its output."""
    out, err = await asyncio.wait_for(process.communicate(), seconds)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def reap(process: asyncio.subprocess.Process) -> None:
    """Kill the process if it still runs; close its pipes."""
    if process.returncode is None:
        process.kill()
    with suppress(TimeoutError, ValueError):
        await asyncio.wait_for(process.communicate(), 10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_command(
    *arguments: str, cwd: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [COMMAND, *arguments],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def one_error_line(completed: subprocess.CompletedProcess[str], command: str) -> str:
    """The single error line on stderr, after checking the exit status and form."""
    output = completed.stdout + completed.stderr
    assert completed.returncode != 0, output
    assert "Traceback" not in completed.stderr, output
    lines = completed.stderr.splitlines()
    assert len(lines) == 1, output
    assert lines[0].startswith(f"stepped-temporal {command}: error:"), output
    return lines[0]


# -- worker errors ----------------------------------------------------------


def test_worker_reports_a_module_that_does_not_import(app):
    """`worker --app bad`: one line naming the module and the exception, non-zero exit."""
    folder, _, env = app
    line = one_error_line(run_command("worker", "--app", "bad", cwd=folder, env=env), "worker")
    assert "'bad'" in line and "RuntimeError" in line and "boom on import" in line


def test_worker_reports_a_module_without_actors(app):
    """`worker --app empty`: one line saying the module declares no actors."""
    folder, _, env = app
    line = one_error_line(run_command("worker", "--app", "empty", cwd=folder, env=env), "worker")
    assert "'empty'" in line and "declares no" in line


def test_worker_reports_an_unreachable_server(app):
    """`worker --address 127.0.0.1:1`: one line 'cannot connect to Temporal at 127.0.0.1:1'."""
    folder, _, env = app
    completed = run_command(
        "worker", "--app", "myapp", "--address", "127.0.0.1:1", cwd=folder, env=env
    )
    assert "cannot connect to Temporal at 127.0.0.1:1" in one_error_line(completed, "worker")


def test_worker_reports_an_unreachable_database_without_its_password(app):
    """A database that refuses: one line, non-zero exit, and the password is never shown."""
    folder, _, env = app
    url = "postgresql+psycopg://nobody:secret@127.0.0.1:1/x"
    completed = run_command("worker", "--app", "myapp", "--database-url", url, cwd=folder, env=env)
    line = one_error_line(completed, "worker")
    assert "database" in line
    assert "secret" not in completed.stdout + completed.stderr


# -- worker -----------------------------------------------------------------


async def test_worker_runs_actions_and_drains_on_sigterm(app):
    """`worker` performs a tour started elsewhere, then exits 0 on SIGTERM after draining."""
    folder, url, env = app
    async with dev_server() as server:
        address = server.client.service_client.config.target_host
        worker = await spawn(
            "worker", "--app", "myapp", "--address", address, "--task-queue", "cli-test",
            cwd=folder, env=env,
        )  # fmt: skip
        try:
            banner = await read_until(worker, "worker:", 30)
            assert "task queue cli-test" in banner and "actors Car" in banner
            with loaded_app(folder, url) as (module, engine):
                stepped_temporal.configure(
                    client=server.client, database_url=url, task_queue="cli-test"
                )
                with Session(engine) as session:
                    car = session.get_one(module.Car, 1)
                result = await asyncio.wait_for(stepped.run(car, "tour"), 30)
                assert result.status == "succeeded"
                assert honks(module, engine) == 1
            worker.send_signal(signal.SIGTERM)
            status, out, err = await finish(worker, 30)
            assert status == 0, out + err
            assert "stopped" in out.splitlines()
            assert "Traceback" not in err, err
        finally:
            await reap(worker)


# -- dev --------------------------------------------------------------------


async def _listed(client: Client, query: str) -> list[str]:
    """Ids the visibility store lists for `query`, once it lists any (it lags)."""
    deadline = time.monotonic() + 20
    while True:
        ids = [w.id async for w in client.list_workflows(query)]
        if ids or time.monotonic() > deadline:
            return ids
        await asyncio.sleep(0.2)


async def test_dev_runs_server_ui_and_worker_and_stops_on_sigint(app):
    """`dev`: a dev server with its state file, the Web UI, search attributes and a
    worker; SIGINT stops all of it with exit 0 and frees the gRPC port."""
    folder, url, env = app
    port, ui_port = free_port(), free_port()
    state = folder / "state" / "temporal.db"
    dev = await spawn(
        "dev", "--app", "myapp", "--port", str(port), "--ui-port", str(ui_port),
        "--state-file", str(state), "--task-queue", "dev-test",
        cwd=folder, env=env,
    )  # fmt: skip
    try:
        banner = await read_until(dev, f"Web UI: http://localhost:{ui_port}", 60)
        assert f"Temporal dev server on localhost:{port}" in banner
        client = await Client.connect(f"localhost:{port}")
        with loaded_app(folder, url) as (module, engine):
            stepped_temporal.configure(client=client, database_url=url, task_queue="dev-test")
            with Session(engine) as session:
                car = session.get_one(module.Car, 1)
            result = await asyncio.wait_for(stepped.run(car, "tour"), 30)
            assert result.status == "succeeded"
            assert honks(module, engine) == 1
        assert state.exists()
        assert await _listed(client, 'SteppedActor="Car/1" AND SteppedAction="tour"') == [result.id]
        dev.send_signal(signal.SIGINT)
        status, out, err = await finish(dev, 30)
        assert status == 0, out + err
        assert "stopped" in out.splitlines()
        with pytest.raises(ConnectionRefusedError), socket.socket() as sock:
            sock.settimeout(5)
            sock.connect(("127.0.0.1", port))
    finally:
        await reap(dev)


# -- tree -------------------------------------------------------------------


async def test_tree_prints_an_action_tree_as_text_and_json(app):
    """`tree ID` prints the tour and its honk with statuses; `--json` gives the same tree;
    an unknown id is one error line and a non-zero exit."""
    folder, url, env = app
    async with dev_server() as server:
        address = server.client.service_client.config.target_host
        with loaded_app(folder, url) as (module, engine):
            stepped_temporal.configure(client=server.client, database_url=url, task_queue="tree")
            with Session(engine) as session:
                car = session.get_one(module.Car, 1)
            async with stepped_temporal.create_worker():
                result = await asyncio.wait_for(stepped.run(car, "tour"), 30)
                assert result.status == "succeeded"

                text = await spawn("tree", result.id, "--address", address, cwd=folder, env=env)
                try:
                    status, out, err = await finish(text, 60)
                finally:
                    await reap(text)
                assert status == 0, out + err
                lines = out.splitlines()
                assert "succeeded" in lines[0] and "Car/1 tour" in lines[0], out
                assert any("└─ succeeded" in line and "Car/1 honk" in line for line in lines), out

                as_json = await spawn(
                    "tree", result.id, "--json", "--address", address, cwd=folder, env=env
                )
                try:
                    status, out, err = await finish(as_json, 60)
                finally:
                    await reap(as_json)
                assert status == 0, out + err
                tree: dict[str, Any] = json.loads(out)
                assert tree["id"] == result.id and tree["status"] == "succeeded"
                assert tree["children"][0]["name"] == "honk"

                unknown = await spawn(
                    "tree", "Car/1/tour/nope", "--address", address, cwd=folder, env=env
                )
                try:
                    status, out, err = await finish(unknown, 60)
                finally:
                    await reap(unknown)
                assert status != 0, out + err
                assert "Traceback" not in err, err
                assert err.splitlines() == [err.strip()], err
                assert err.startswith("stepped-temporal tree: error: no action "), err
