"""Running `stepped-temporal demo` (and `demo --keep`): the embedded dev server with
its Web UI, a SQLite file in a temporary folder, a worker, then each scenario of
`demo.py` with its tree printed (S9.2-S9.4 on show). With `--keep` the server, UI
and worker stay up until Ctrl-C, and the demo prints where to look in the UI.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy.orm import Session
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from . import config, search_attributes
from .binaries import dev_server_path
from .client import ActionHandle
from .demo import SCENARIOS, Car, DemoBase, Fleet, Scenario
from .trees import collect_tree, format_tree
from .worker import create_worker

__all__ = ["UI_PORT", "links", "port_is_free", "run_demo"]

#: the Web UI's usual port, used when free
UI_PORT = 8233


def port_is_free(port: int) -> bool:
    """Whether nothing listens on `port` of 127.0.0.1 now."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


async def run_demo(*, keep: bool = False) -> int:
    """Run every scenario; return the process exit status. With `keep`, the dev
    server, its Web UI and the worker stay up until SIGINT/SIGTERM."""
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="stepped-demo-") as folder:
        database = Path(folder) / "demo.db"
        print(f"Starting the Temporal dev server ({dev_server_path()}) ...", flush=True)
        # the UI's usual port when it is free, else the SDK's choice (gRPC port + 1000)
        ui_port = UI_PORT if port_is_free(UI_PORT) else None
        environment = await WorkflowEnvironment.start_local(
            dev_server_existing_path=dev_server_path(),
            ui=True,
            ui_port=ui_port,
            dev_server_log_level="error",
            search_attributes=search_attributes.ALL,
        )
        try:
            target = environment.client.service_client.config.target_host
            ui = f"http://localhost:{ui_port or int(target.rsplit(':', 1)[1]) + 1000}"
            config.reset()
            engine = config.create_engine(f"sqlite:///{database}")
            config.configure(
                client=environment.client,
                engine=engine,
                task_queue="stepped-demo",
                search_attributes=True,
            )
            DemoBase.metadata.create_all(engine)
            with Session(engine) as session, session.begin():
                session.add_all([Fleet(id=1), *(Car(id=n) for n in range(1, 4))])
            print(f"Temporal at {target}; Web UI at {ui}; database {database}\n", flush=True)
            failures = 0
            played: list[ActionHandle] = []
            async with create_worker():
                for number, (title, scenario) in enumerate(SCENARIOS, 1):
                    ok, handles = await _play(environment.client, engine, number, title, scenario)
                    failures += not ok
                    played += handles
                with Session(engine) as session:
                    for car in session.query(Car).order_by(Car.id):
                        print(
                            f"DemoCar/{car.id}: location={car.location} mileage={car.mileage} "
                            f"honks={car.honks} color={car.color}"
                        )
                verdict = (
                    "every scenario ended as expected" if not failures else f"{failures} failed"
                )
                print(f"\nDone in {time.monotonic() - began:.1f}s: {verdict}.")
                if keep:
                    print(links(ui, played), flush=True)
                    await _until_signal()
                else:
                    print(
                        f"(The Web UI at {ui} lived as long as the demo; "
                        "`stepped-temporal demo --keep` keeps it up.)"
                    )
            return 0 if not failures else 1
        finally:
            await environment.shutdown()


def links(ui: str, handles: list[ActionHandle]) -> str:
    """Where to look in the Web UI: each action the demo started, and a search."""
    base = f"{ui}/namespaces/default/workflows"
    lines = ["", f"The Web UI stays up at {ui} until Ctrl-C. The demo's actions:"]
    lines += [f"  {base}/{quote(handle.id, safe='')}" for handle in handles]
    search = quote('SteppedActor="DemoCar/1"', safe="")
    lines += ["Everything DemoCar/1 did (a search by SteppedActor):", f"  {base}?query={search}"]
    failed = quote('ExecutionStatus="Failed"', safe="")
    lines += ["The unsuccessful actions (S9.4):", f"  {base}?query={failed}"]
    return "\n".join(lines)


async def _until_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(number, stop.set)
    await stop.wait()
    print("stopping the worker and the dev server", flush=True)


async def _play(
    client: Client, engine: Any, number: int, title: str, scenario: Scenario
) -> tuple[bool, list[ActionHandle]]:
    print(f"{number}. {title}", flush=True)
    handles, expected = await scenario(engine)
    results = []
    for handle in handles:
        await _watch(handle)
        results.append(await handle.result())
    for handle in handles:
        print(_indent(format_tree(await collect_tree(client, handle.id))))
    ok = bool(expected(results))
    print(f"   {'ok' if ok else 'UNEXPECTED'}\n", flush=True)
    return ok, handles


async def _watch(handle: ActionHandle) -> None:
    """Print progress until the action is final."""
    waiting = asyncio.ensure_future(handle.result())
    last = ""
    while not waiting.done():
        state = await handle.describe()
        line = f"    ... {state.name} {state.status.value}"
        if state.steps:
            step = state.steps[-1]
            line += f", step {step.index} waiting on {step.pending_actions_count} dependencies"
        if line != last:
            print(line, flush=True)
            last = line
        await asyncio.wait([waiting], timeout=0.3)
    await waiting


def _indent(text: str) -> str:
    return "\n".join("   " + line for line in text.splitlines())
