"""Fan-out: one root action whose one step starts `visit` on N distinct cars.

    python -m bench.fanout --leaves 200

Raw baseline: a parent workflow starting N child workflows, each running one
activity with the same write. Wall time runs from the root's start to its result.
"""

from __future__ import annotations

import argparse

import stepped_temporal as stepped

from . import raw
from .harness import (
    Bench,
    Body,
    Options,
    Outcome,
    Report,
    WorkerProcess,
    add_common_arguments,
    options_from,
    progress,
    rotated,
    run_main,
    run_variant,
    with_bench,
)
from .models import Fleet

#: raw starts every child in one workflow task; raw-batched 50 per task, as Stepped
#: does. Targets compare stepped with the better of the two (`best_raw`).
VARIANTS = ["stepped", "raw", "raw-batched"]
#: only when asked for (`--only`): raw-batched whose leaves run their activity as a
#: local activity, as Stepped's prepare runs (not the targets' baseline: see README)
OPTIONAL_VARIANTS = ["raw-local"]


def default_deadline(leaves: int) -> float:
    """Generous: about 3x what the current package needed for 2,000 leaves on a
    2-core machine that other processes kept half busy (900 s at 2,000)."""
    return max(120.0, leaves * 0.45)


async def measure(bench: Bench, leaves: int, runs: int | None = None) -> Report:
    """`runs` runs of each variant (default: --runs)."""
    options = bench.options
    runs = runs or options.runs
    deadline = options.deadline or default_deadline(leaves)
    variants = options.variants(VARIANTS + OPTIONAL_VARIANTS) if options.only else VARIANTS
    report = Report(
        title=f"fan-out {leaves}",
        leaves=leaves,
        unit="leaves",
        variants=variants,
        ratios=[
            r
            for r in (("stepped", "raw"), ("stepped", "raw-batched"), ("stepped", "raw-local"))
            if set(r) <= set(variants)
        ],
    )
    timed_out: set[str] = set()
    for number in range(runs):
        for variant in rotated(variants, number):
            if variant in timed_out:
                continue  # it got stuck once: do not spend the deadline again
            progress(f"[fan-out {leaves}] run {number + 1}/{runs}: {variant}")
            first = bench.seed_cars(leaves)
            if variant == "stepped":
                fleet = bench.seed_fleet()
                body = _stepped_body(bench, fleet, first, leaves)
                expected = leaves + 1  # lanes, for contended keys, come on top
            else:
                batch = raw.START_BATCH if variant in ("raw-batched", "raw-local") else 0
                body = _raw_body(bench, first, leaves, batch, local=variant == "raw-local")
                expected = leaves + 1
            run = await run_variant(
                bench,
                label=f"fanout{leaves}",
                variant=variant,
                worker="stepped" if variant == "stepped" else "raw",
                leaves=leaves,
                expected_ids=expected,
                deadline=deadline,
                body=body,
            )
            report.add(run)
            if run.wall is None:
                timed_out.add(variant)
                report.notes.append(f"{variant} run {number + 1}: {run.note}")
    report.notes.append(
        "events/leaf: history events of every workflow the run created (root, leaves, "
        "lanes, continue-as-new runs) / leaves; lane ev/leaf: the lanes' share"
    )
    return report


def _stepped_body(bench: Bench, fleet_id: int, first: int, leaves: int) -> Body:
    async def body(queue: str, worker: WorkerProcess) -> Outcome:
        handle = await stepped.start(Fleet(id=fleet_id), "fanout", first, leaves)
        result = await handle.result()
        visits = bench.visits(first, leaves)
        ok = result.status == "succeeded" and visits == leaves
        return Outcome(ok, f"root {result.status}, {visits}/{leaves} visits ({handle.id})")

    return body


def best_raw(report: Report) -> str:
    """The raw variant with the lower median wall time: the fair baseline."""
    walls = {v: report.summary(v).wall for v in ("raw", "raw-batched")}
    known = {v: w for v, w in walls.items() if w is not None}
    return min(known, key=lambda v: known[v]) if known else "raw"


def _raw_body(bench: Bench, first: int, leaves: int, batch: int, local: bool = False) -> Body:
    async def body(queue: str, worker: WorkerProcess) -> Outcome:
        succeeded = await bench.client.execute_workflow(
            raw.RawFanout.run,
            args=[first, leaves, batch, True] if local else [first, leaves, batch],
            id=f"{queue}/fanout",
            task_queue=queue,
            search_attributes=raw.attributes(first, "fanout"),
        )
        visits = bench.visits(first, leaves)
        ok = succeeded == leaves and visits == leaves
        return Outcome(ok, f"{succeeded}/{leaves} children succeeded, {visits} visits")

    return body


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fanout", description=__doc__)
    parser.add_argument("--leaves", type=int, default=200, help="children of the root")
    add_common_arguments(parser)
    args = parser.parse_args()
    options: Options = options_from(args)

    async def work(bench: Bench) -> int:
        report = await measure(bench, args.leaves)
        print(report.render(), flush=True)
        return 0

    run_main(lambda: with_bench(options, work))


if __name__ == "__main__":
    main()
