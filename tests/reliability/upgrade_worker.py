"""A worker without a workflow cache, for the rolling-upgrade test (issue 27, item 3;
tests/reliability/test_rolling_upgrade.py): ``python upgrade_worker.py --address A
--database-url U --task-queue Q``, run by either version's Python beside a copy of
``upgrade_app``.

A worker with a cache keeps each workflow it ran (a sticky queue), so in a rolling
upgrade a workflow moves to a worker of the other version only when its worker goes
away — always from the previous release to the new code. This one keeps none
(``create_worker(max_cached_workflows=0)``): after each of its workflow tasks the next
goes back to the task queue, where a worker of either version may pick it up and
replay the history the other version wrote, in both directions. Public API only.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

import upgrade_app
from temporalio.client import Client

import stepped_temporal as stepped


async def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("--address", "--database-url", "--task-queue"):
        parser.add_argument(name, required=True)
    args = parser.parse_args()
    client = await Client.connect(args.address)
    stepped.configure(client=client, database_url=args.database_url, task_queue=args.task_queue)
    worker = stepped.create_worker(max_cached_workflows=0)
    stop = asyncio.Event()
    for number in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(number, stop.set)
    async with worker:
        # the same first word as the CLI's banner: the harness waits for it
        print(f"worker: {args.task_queue}, no workflow cache, {upgrade_app.version()}", flush=True)
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
