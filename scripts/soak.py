"""Soak test: steady load for many minutes while workers are killed (issue 19, not CI).

    python scripts/soak.py --minutes 20
    python scripts/soak.py --minutes 20 --database-url sqlite:////tmp/soak.db

The production shape of tests/reliability/test_production.py: the Temporal dev
server, three worker processes on one task queue, one completer process
completing outbound actions, PostgreSQL on 127.0.0.1:5432 (database ``test``)
unless ``--database-url`` says otherwise. It keeps ``--in-flight`` service trees
running (``--cars`` cars each, about 8 actions a car: contended lanes that
supersede and share, retried jobs, a timeout), starting a new tree whenever one
ends. Every ``--kill-every`` seconds it SIGKILLs worker w1 or w2 in turn and
starts it again; w0 is never killed, so its memory is the trend to watch.

Every finished tree is compared, place by place, with an undisturbed tree of the
same shapes run first (statuses, effects, each effect once). At the end it checks
that no lane is busy, no claim held, no action workflow left running. It prints a
line a minute (trees and actions finished, actions per second, w0's memory) and
a summary; it exits 1 on any problem.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.databases import postgres_schema  # noqa: E402
from tests.reliability import fleet_app, outcomes, production  # noqa: E402
from tests.reliability.harness import is_closed  # noqa: E402

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def soak(args: argparse.Namespace) -> int:
    shapes = fleet_app.shapes(args.seed, args.cars)
    expected = fleet_app.expected_actions(shapes)
    folder = Path(tempfile.mkdtemp(prefix="stepped-soak-"))
    url = args.database_url
    with contextlib.ExitStack() as stack:
        if url == POSTGRES:  # a schema of its own, dropped at the end
            url = stack.enter_context(postgres_schema())
        return await _soak(args, shapes, expected, folder, url)


async def _soak(
    args: argparse.Namespace,
    shapes: list[fleet_app.Shape],
    expected: int,
    folder: Path,
    url: str,
) -> int:
    print(f"soak: {args.minutes} min, trees of {expected} actions ({args.cars} cars), "
          f"{args.in_flight} in flight, a kill every {args.kill_every}s; logs in {folder}",
          flush=True)  # fmt: skip
    problems: list[str] = []
    async with production.fleet_rig(folder, url) as rig:
        started = time.monotonic()
        root = await rig.run_service(1, shapes)
        reference = await production.outcome(rig, await _closed(rig, root), 1)
        print(f"reference tree: {time.monotonic() - started:.1f}s, "
              f"{outcomes.status_counts(reference)}", flush=True)  # fmt: skip
        rig.start_completer(0)
        steady = rig.workers[0]
        assert steady.process is not None
        rss_start = rss_mib(steady.process.pid)
        running: dict[str, tuple[int, float]] = {}  # root -> (fleet, started)
        finished: list[tuple[float, float]] = []  # (end, seconds) per tree
        ids: set[str] = set()
        next_fleet, kills, victim = 2, 0, 1
        soak_start = time.monotonic()
        next_kill = soak_start + args.kill_every
        next_report = soak_start + 60
        rss_samples = [rss_start]
        deadline = soak_start + args.minutes * 60
        while time.monotonic() < deadline or running:
            while time.monotonic() < deadline and len(running) < args.in_flight:
                root = await rig.run_service(next_fleet, shapes, completer=False)
                running[root] = (next_fleet, time.monotonic())
                next_fleet += 1
            for root, (fleet, began) in list(running.items()):
                if await _safely_closed(rig, root):
                    del running[root]
                    run = await production.outcome(rig, root, fleet)
                    ids.update(s.id for s in run.states)
                    found = outcomes.compare(reference, run, expected)
                    problems += [f"fleet {fleet}: {p}" for p in found]
                    finished.append((time.monotonic(), time.monotonic() - began))
            now = time.monotonic()
            if now >= next_kill and now < deadline:
                worker = rig.workers[victim]
                worker.kill()
                worker.start()
                kills += 1
                victim = 2 if victim == 1 else 1
                next_kill = now + args.kill_every
            if now >= next_report:
                minute = round((now - soak_start) / 60)
                recent = [f for f in finished if f[0] > now - 60]
                rss = rss_mib(steady.process.pid)
                rss_samples.append(rss)
                print(f"minute {minute:3d}: {len(recent)} trees ({len(recent) * expected / 60:.1f}"
                      f" actions/s), {len(finished)} in all, {kills} kills, w0 RSS {rss:.0f} MiB, "
                      f"problems {len(problems)}", flush=True)  # fmt: skip
                next_report += 60
            await asyncio.sleep(0.5)
        problems += await production.leftovers(rig, ids)
        total = time.monotonic() - soak_start
        rss_end = rss_mib(steady.process.pid)
        seconds = [f[1] for f in finished]
        print(
            f"summary: {len(finished)} trees, {len(finished) * expected} actions in "
            f"{total / 60:.1f} min ({len(finished) * expected / total:.1f} actions/s); "
            f"{kills} kills; tree {statistics.median(seconds):.1f}s median "
            f"({min(seconds):.1f}-{max(seconds):.1f}); w0 RSS {rss_start:.0f} MiB at the "
            f"start, {rss_end:.0f} at the end (max {max(rss_samples):.0f}); "
            f"{len(problems)} problem(s)",
            flush=True,
        )
    for problem in problems[:20]:
        print("PROBLEM", problem, flush=True)
    return 1 if problems else 0


async def _closed(rig: production.Fleet, root: str) -> str:
    while not await _safely_closed(rig, root):
        await asyncio.sleep(0.5)
    return root


async def _safely_closed(rig: production.Fleet, root: str) -> bool:
    try:
        return await asyncio.wait_for(is_closed(rig.client, root), 10)
    except Exception:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--database-url", default=POSTGRES)
    parser.add_argument("--cars", type=int, default=8)
    parser.add_argument("--in-flight", type=int, default=4)
    parser.add_argument("--kill-every", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=19)
    sys.exit(asyncio.run(soak(parser.parse_args())))


if __name__ == "__main__":
    main()
