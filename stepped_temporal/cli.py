"""The `stepped-temporal` command: worker, dev, demo, tree, lanes (S9.2, S9.3, S9.5).

Every failure a user can cause (an unreachable server, a module that does not
import, a module without actors, a database that refuses) ends in one line on
stderr and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from . import cli_views
from .cli_setup import (
    CommandError,
    check_database,
    codec_converter,
    codec_note,
    connect,
    import_apps,
    serve,
)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the `stepped-temporal` console script."""
    parser = _parser()
    arguments = parser.parse_args(argv)
    try:
        status = asyncio.run(arguments.handler(arguments))
    except CommandError as error:
        print(f"stepped-temporal {arguments.command}: error: {error}", file=sys.stderr)
        status = error.status
    except KeyboardInterrupt:
        status = 130
    except BrokenPipeError:  # e.g. piped into `head`
        status = 0
    _exit(status)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stepped-temporal", description="Stepped actions on Temporal."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    worker = commands.add_parser("worker", help="run a worker for your actors")
    _app_options(worker)
    _connection_options(worker)
    worker.add_argument("--max-concurrent-activities", type=int, default=100)
    worker.add_argument(
        "--metrics-bind",
        metavar="HOST:PORT",
        default=os.environ.get("STEPPED_METRICS_BIND"),
        help="serve Prometheus metrics (Temporal's and Stepped's) on HOST:PORT/metrics "
        "(env STEPPED_METRICS_BIND)",
    )
    worker.add_argument(
        "--tracing",
        action="store_true",
        help="one OpenTelemetry trace per action tree, through the global tracer provider "
        "(e.g. run under opentelemetry-instrument; needs stepped_temporal[otel])",
    )
    worker.add_argument(
        "--worker-loss-limit",
        type=int,
        metavar="N",
        default=os.environ.get("STEPPED_WORKER_LOSS_LIMIT"),
        help="fail a unit (step, job, hook, callback) whose worker died N times in a row "
        "running it: a poison pill (default 5, or what --app configures; 0: never; "
        "env STEPPED_WORKER_LOSS_LIMIT)",
    )
    worker.add_argument(
        "--shutdown-grace",
        type=float,
        default=30.0,
        help="seconds running activities get to finish on SIGINT/SIGTERM (default 30)",
    )
    worker.set_defaults(handler=run_worker)

    dev = commands.add_parser("dev", help="dev server with the Web UI, plus a worker")
    _app_options(dev)
    dev.add_argument("--port", type=int, default=7233, help="gRPC port (default 7233)")
    dev.add_argument("--ui-port", type=int, default=8233, help="Web UI port (default 8233)")
    dev.add_argument(
        "--state-file",
        default=".stepped/temporal.db",
        help="where the dev server keeps its state between runs",
    )
    dev.add_argument("--task-queue", default=os.environ.get("STEPPED_TASK_QUEUE", "stepped"))
    dev.add_argument(
        "--database-url", default=os.environ.get("STEPPED_DATABASE_URL", "sqlite:///stepped.db")
    )
    _codec_option(dev)
    dev.set_defaults(handler=run_dev)

    demo = commands.add_parser("demo", help="run a fleet of cars on an embedded dev server")
    demo.add_argument(
        "--keep",
        action="store_true",
        help="keep the dev server, its Web UI and the worker up until Ctrl-C",
    )
    demo.set_defaults(handler=run_demo_command)

    tree = commands.add_parser("tree", help="print an action's tree with statuses")
    tree.add_argument("action_id")
    tree.add_argument("--json", action="store_true", help="print JSON instead of a tree")
    tree.add_argument(
        "--watch", action="store_true", help="redraw the tree until the action is final"
    )
    tree.add_argument(
        "--interval", type=float, default=1.0, help="seconds between redraws (default 1)"
    )
    _connection_options(tree, database=False)
    tree.set_defaults(handler=cli_views.run_tree)

    lanes = commands.add_parser("lanes", help="list the contended lanes, or show one lane")
    lanes.add_argument("key", nargs="?", help="a concurrency key: show its lane in detail")
    lanes.add_argument("--json", action="store_true", help="print JSON instead of text")
    _connection_options(lanes)
    lanes.set_defaults(handler=cli_views.run_lanes)
    return parser


def _app_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--app",
        action="append",
        required=True,
        metavar="MODULE",
        help="module declaring your actors (repeatable)",
    )


def _connection_options(parser: argparse.ArgumentParser, *, database: bool = True) -> None:
    parser.add_argument("--address", help="Temporal frontend (env TEMPORAL_ADDRESS)")
    parser.add_argument("--namespace", help="Temporal namespace (env TEMPORAL_NAMESPACE)")
    parser.add_argument("--profile", help="profile of Temporal's client config file")
    parser.add_argument("--config-file", help="Temporal client config file (TOML)")
    parser.add_argument("--api-key", help="API key, e.g. for Temporal Cloud (env TEMPORAL_API_KEY)")
    parser.add_argument("--tls", action="store_true", help="connect with TLS")
    parser.add_argument("--tls-cert", help="client certificate (PEM) for mTLS")
    parser.add_argument("--tls-key", help="client key (PEM) for mTLS")
    parser.add_argument("--task-queue", default=os.environ.get("STEPPED_TASK_QUEUE", "stepped"))
    _codec_option(parser)
    if database:
        parser.add_argument(
            "--database-url",
            default=os.environ.get("STEPPED_DATABASE_URL", "sqlite:///stepped.db"),
            help="SQLAlchemy URL of your database (env STEPPED_DATABASE_URL)",
        )


def _codec_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--codec",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="encrypt payloads with the key in STEPPED_CODEC_KEY (older keys for decoding: "
        "STEPPED_CODEC_KEYS); default: on when either is set",
    )


# -- commands ---------------------------------------------------------------


async def run_worker(arguments: argparse.Namespace) -> int:
    """`stepped-temporal worker --app MODULE`."""
    from . import config
    from .errors import NotConfigured
    from .worker import create_worker

    names = import_apps(arguments.app)
    engine = check_database(arguments.database_url)
    client = await connect(arguments)
    try:
        config.configure(
            client=client,
            engine=engine,
            task_queue=arguments.task_queue,
            tracing=True if arguments.tracing else None,
            worker_loss_limit=arguments.worker_loss_limit,
        )
    except (NotConfigured, ValueError) as error:
        raise CommandError(str(error)) from None
    worker = create_worker(
        max_concurrent_activities=arguments.max_concurrent_activities,
        graceful_shutdown_timeout=timedelta(seconds=arguments.shutdown_grace),
    )
    await serve(
        worker,
        f"worker: {client.service_client.config.target_host} namespace {client.namespace}, "
        f"task queue {arguments.task_queue}, actors {', '.join(names)}"
        f"{codec_note(client.data_converter)}{_extras(arguments)}; Ctrl-C stops it",
    )
    return 0


def _extras(arguments: argparse.Namespace) -> str:
    metrics = arguments.metrics_bind
    return (f"; metrics on http://{metrics}/metrics" if metrics else "") + (
        "; tracing" if arguments.tracing else ""
    )


async def run_dev(arguments: argparse.Namespace) -> int:
    """`stepped-temporal dev --app MODULE`: dev server + Web UI + worker."""
    from temporalio.converter import DataConverter
    from temporalio.testing import WorkflowEnvironment

    from . import config, search_attributes
    from .binaries import dev_server_path
    from .worker import create_worker

    names = import_apps(arguments.app)
    converter = codec_converter(arguments)
    engine = check_database(arguments.database_url)
    state = Path(arguments.state_file)
    state.parent.mkdir(parents=True, exist_ok=True)
    try:
        environment = await WorkflowEnvironment.start_local(
            port=arguments.port,
            data_converter=converter or DataConverter.default,
            ui=True,
            ui_port=arguments.ui_port,
            dev_server_existing_path=dev_server_path(),
            dev_server_log_level="error",
            search_attributes=search_attributes.ALL,
            dev_server_extra_args=["--db-filename", str(state)],
        )
    except Exception as error:
        raise CommandError(f"cannot start the Temporal dev server: {error}") from None
    try:
        config.configure(
            client=environment.client,
            engine=engine,
            task_queue=arguments.task_queue,
            search_attributes=True,
        )
        await serve(
            create_worker(graceful_shutdown_timeout=timedelta(seconds=10)),
            f"Temporal dev server on localhost:{arguments.port} (state in {state})\n"
            f"Web UI: http://localhost:{arguments.ui_port}\n"
            f"worker: task queue {arguments.task_queue}, actors {', '.join(names)}"
            f"{codec_note(converter)}; Ctrl-C stops everything",
        )
    finally:
        await environment.shutdown()
    return 0


async def run_demo_command(arguments: argparse.Namespace) -> int:
    """`stepped-temporal demo`."""
    from .demo_runner import run_demo

    return await run_demo(keep=arguments.keep)


def _exit(status: int) -> None:
    # temporalio/sdk-python#300: the Rust bridge can crash interpreter shutdown.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


if __name__ == "__main__":
    main()
