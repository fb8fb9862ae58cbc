"""Where a stepped fan-out spends its time: the root's history, event by event.

    python -m bench.timeline --leaves 200 --runs 3

Each run starts a fresh stepped worker, runs the fan-out, then prints the
root workflow's history with runs of the same event type folded
(``CHILD_WORKFLOW_EXECUTION_STARTEDx36@0.46-0.95``: 36 in a row, seconds since
the root started), and how late the children started and ended. A root
workflow task scheduled long before it is started is the worker not picking
it up; children starting late is the server working through the starts.
"""

from __future__ import annotations

import argparse

from temporalio.api.enums.v1 import EventType

import stepped_temporal as stepped

from .harness import (
    Bench,
    Outcome,
    WorkerProcess,
    add_common_arguments,
    options_from,
    run_main,
    run_variant,
    with_bench,
)
from .models import Fleet


def _quantiles(values: list[float]) -> str:
    ordered = sorted(values)
    if not ordered:
        return "-"
    at = lambda q: ordered[min(len(ordered) - 1, int(len(ordered) * q))]  # noqa: E731
    return f"p50 {at(0.5):.2f}s p90 {at(0.9):.2f}s max {ordered[-1]:.2f}s"


async def _times(bench: Bench, workflow_id: str) -> list[tuple[float, str]]:
    history = await bench.client.get_workflow_handle(workflow_id).fetch_history()
    start = history.events[0].event_time.ToDatetime()
    return [
        (
            (event.event_time.ToDatetime() - start).total_seconds(),
            EventType.Name(event.event_type).removeprefix("EVENT_TYPE_"),
        )
        for event in history.events
    ]


def _folded(events: list[tuple[float, str]]) -> list[str]:
    folded: list[str] = []
    index = 0
    while index < len(events):
        first, name = events[index]
        end = index
        while end + 1 < len(events) and events[end + 1][1] == name:
            end += 1
        count = end - index + 1
        folded.append(f"{name}x{count}@{first:.2f}-{events[end][0]:.2f}")
        index = end + 1
    return folded


async def trace(bench: Bench, leaves: int, runs: int) -> None:
    for number in range(runs):
        first = bench.seed_cars(leaves)
        fleet = bench.seed_fleet()
        found: dict[str, stepped.ActionResult] = {}

        async def body(
            queue: str,
            worker: WorkerProcess,
            fleet: int = fleet,
            first: int = first,
            found: dict[str, stepped.ActionResult] = found,
        ) -> Outcome:
            handle = await stepped.start(Fleet(id=fleet), "fanout", first, leaves)
            found["root"] = await handle.result()
            return Outcome(found["root"].status == "succeeded", handle.id)

        run = await run_variant(
            bench,
            label=f"timeline{leaves}",
            variant="stepped",
            worker="stepped",
            leaves=leaves,
            expected_ids=leaves + 1,
            deadline=max(120.0, leaves * 0.45),
            body=body,
        )
        root = found.get("root")
        if root is None or run.wall is None:
            print(f"run {number + 1}: {run.note}", flush=True)
            continue
        events = await _times(bench, root.id)
        began = (await bench.client.get_workflow_handle(root.id).describe()).start_time
        starts: list[float] = []
        ends: list[float] = []
        for child_id in root.steps[0].actions:
            described = await bench.client.get_workflow_handle(child_id).describe()
            if began and described.start_time and described.close_time:
                starts.append((described.start_time - began).total_seconds())
                ends.append((described.close_time - began).total_seconds())
        print(f"run {number + 1}: wall {run.wall:.2f}s, root {root.id}", flush=True)
        print(f"  children started {_quantiles(starts)}; ended {_quantiles(ends)}")
        print("  root: " + " | ".join(_folded(events)), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.timeline", description=__doc__)
    parser.add_argument("--leaves", type=int, default=200, help="children of the root")
    add_common_arguments(parser)
    args = parser.parse_args()

    async def work(bench: Bench) -> int:
        await trace(bench, args.leaves, args.runs)
        return 0

    run_main(lambda: with_bench(options_from(args), work))


if __name__ == "__main__":
    main()
