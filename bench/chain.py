"""Chain: an action whose step writes its car and starts the same action on the
next car, down to a depth of D levels.

    python -m bench.chain --depth 20

Raw baseline: a workflow D levels deep, each level a child workflow running
one activity with the same write, then starting the next level. Every level
is a leaf: per-leaf figures divide by D.
"""

from __future__ import annotations

import argparse

import stepped_temporal as stepped

from . import raw
from .harness import (
    Bench,
    Body,
    Outcome,
    Report,
    WorkerProcess,
    add_common_arguments,
    options_from,
    run_main,
    stepped_against_raw,
    with_bench,
)
from .models import Car


async def measure(bench: Bench, depth: int, runs: int | None = None) -> Report:
    """`runs` runs of each variant (default: --runs)."""

    def body_for(variant: str) -> Body:
        first = bench.seed_cars(depth)
        return (_stepped_body if variant == "stepped" else _raw_body)(bench, first, depth)

    return await stepped_against_raw(
        bench,
        title=f"chain {depth}",
        leaves=depth,
        unit="levels",
        deadline=bench.options.deadline or max(120.0, depth * 3.0),
        expected_ids=depth,
        body_for=body_for,
        runs=runs,
    )


def _stepped_body(bench: Bench, first: int, depth: int) -> Body:
    async def body(queue: str, worker: WorkerProcess) -> Outcome:
        handle = await stepped.start(Car(id=first), "chain", depth)
        result = await handle.result()
        visits = bench.visits(first, depth)
        ok = result.status == "succeeded" and visits == depth
        return Outcome(ok, f"root {result.status}, {visits}/{depth} visits ({handle.id})")

    return body


def _raw_body(bench: Bench, first: int, depth: int) -> Body:
    async def body(queue: str, worker: WorkerProcess) -> Outcome:
        levels = await bench.client.execute_workflow(
            raw.RawChain.run,
            args=[first, depth],
            id=f"{queue}/chain",
            task_queue=queue,
            search_attributes=raw.attributes(first, "chain"),
        )
        visits = bench.visits(first, depth)
        return Outcome(levels == depth and visits == depth, f"{levels} levels, {visits} visits")

    return body


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.chain", description=__doc__)
    parser.add_argument("--depth", type=int, default=20, help="levels of the chain")
    add_common_arguments(parser)
    args = parser.parse_args()
    options = options_from(args)

    async def work(bench: Bench) -> int:
        print((await measure(bench, args.depth)).render(), flush=True)
        return 0

    run_main(lambda: with_bench(options, work))


if __name__ == "__main__":
    main()
