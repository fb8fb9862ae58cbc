"""One benchmark worker, in its own process: ``python -m bench._worker --variant stepped|raw``.

The harness starts a fresh one per variant per run, reads its memory from
/proc/<pid>/status, and stops it with SIGTERM. It prints ``ready`` on stdout
once it polls its task queue. Both variants get the same limits: workflow
cache, concurrent workflow tasks, concurrent activities (and as many threads
for the synchronous database code). Workflow code: the raw workflows run in
Temporal's sandbox with the bench package passed through, as a user's own
workflows would (`BENCH_RAW_SANDBOX=0`: without it); Stepped's run as
`create_worker()` runs them, outside it (`STEPPED_WORKFLOW_SANDBOX=1`: inside).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench._worker", description=__doc__)
    parser.add_argument("--variant", choices=["stepped", "raw"], required=True)
    parser.add_argument("--address", required=True)
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--task-queue", required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--max-cached-workflows", type=int, default=10000)
    parser.add_argument("--max-workflow-tasks", type=int, default=100)
    parser.add_argument("--max-activities", type=int, default=100)
    return parser


def _limits(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "task_queue": args.task_queue,
        "max_cached_workflows": args.max_cached_workflows,
        "max_concurrent_workflow_tasks": args.max_workflow_tasks,
        "max_concurrent_activities": args.max_activities,
    }


def _stepped_worker(client: Client, args: argparse.Namespace) -> Worker:
    import stepped_temporal as stepped

    from . import models  # noqa: F401  (registers the actors, as in the client)

    stepped.configure(client=client, database_url=args.database_url, task_queue=args.task_queue)
    # create_worker sizes its thread pool to max_concurrent_activities
    return stepped.create_worker(**_limits(args))


def _raw_worker(client: Client, args: argparse.Namespace) -> Worker:
    from stepped_temporal.config import create_engine

    from . import raw, raw_mutex

    raw.use_engine(create_engine(args.database_url))
    return Worker(
        client,
        workflows=[*raw.WORKFLOWS, *raw_mutex.WORKFLOWS],
        activities=[*raw.ACTIVITIES, *raw_mutex.ACTIVITIES],
        activity_executor=ThreadPoolExecutor(
            max_workers=args.max_activities, thread_name_prefix="raw-activity"
        ),
        workflow_runner=_raw_runner(),
        **_limits(args),
    )


def _raw_runner() -> WorkflowRunner:
    if os.environ.get("BENCH_RAW_SANDBOX", "1") == "0":
        return UnsandboxedWorkflowRunner()
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules("bench")
    )


async def _serve(args: argparse.Namespace) -> None:
    client = await Client.connect(args.address, namespace=args.namespace)
    build = _stepped_worker if args.variant == "stepped" else _raw_worker
    worker = build(client, args)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with worker:
        print("ready", flush=True)
        await stop.wait()


def main() -> None:
    args = _parser().parse_args()
    code = 0
    try:
        asyncio.run(_serve(args))
    except Exception as error:
        print(f"bench worker ({args.variant}) failed: {error!r}", file=sys.stderr, flush=True)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # sdk-python #300: a Temporal runtime may crash at interpreter exit


if __name__ == "__main__":
    main()
