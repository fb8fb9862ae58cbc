"""Checksum: starts of an action whose work is already achieved, against starts
that do the work.

    python -m bench.checksum --starts 1000

Each run: `work` starts `touch(tag)` once on each of N cars with a fresh tag
(every action prepares, claims its key, writes, grants its achievement);
`achieved` then starts the same N actions again (start() finds the achievement
and the workflow succeeds in its first task: no activity, no write); `settled`
does the same with `configure(record_achieved_starts=False)` (no workflow at
all); `raw` starts N workflows each running the write. Rates are starts per
second from the first start to the last result.
"""

from __future__ import annotations

import argparse
from collections import Counter

import stepped_temporal as stepped

from .harness import (
    Bench,
    Body,
    Outcome,
    Report,
    RssSampler,
    WorkerProcess,
    add_common_arguments,
    options_from,
    progress,
    ratio,
    rotated,
    run_main,
    run_variant,
    start_and_wait,
    with_bench,
)
from .lane import raw_visits_body
from .models import Car

VARIANTS = ["achieved", "settled", "work", "raw"]
#: the target: achieved starts at least this many times the rate of starts doing the work
TARGET_SPEEDUP = 5.0


async def measure(bench: Bench, starts: int, runs: int | None = None) -> Report:
    """`runs` runs of each variant (default: --runs)."""
    options = bench.options
    runs = runs or options.runs
    deadline = options.deadline or max(180.0, starts * 0.5)
    report = Report(
        title=f"checksum: {starts} starts",
        leaves=starts,
        unit="starts",
        variants=VARIANTS,
        ratios=[("work", "raw"), ("achieved", "raw"), ("work", "achieved"), ("work", "settled")],
    )
    for number in range(runs):
        # `achieved` needs the achievements `work` granted: they go as a pair
        for group in rotated(["stepped", "raw"], number):
            progress(f"[checksum {starts}] run {number + 1}/{runs}: {group}")
            first = bench.seed_cars(starts)
            if group == "raw":
                report.add(
                    await run_variant(
                        bench,
                        label=f"checksum{starts}",
                        variant="raw",
                        worker="raw",
                        leaves=starts,
                        expected_ids=starts,
                        deadline=deadline,
                        body=raw_visits_body(bench, first, starts),
                    )
                )
                continue
            tag = f"{bench.token}-{number}"
            for variant in ("work", "achieved", "settled"):
                body = _stepped_body(bench, first, starts, tag, variant=variant)
                stepped.configure(record_achieved_starts=variant != "settled")
                try:
                    report.add(
                        await run_variant(
                            bench,
                            label=f"checksum{starts}",
                            variant=variant,
                            worker="stepped",
                            leaves=starts,
                            expected_ids=0 if variant == "settled" else starts,
                            deadline=deadline,
                            body=body,
                        )
                    )
                finally:
                    stepped.configure(record_achieved_starts=True)
    for variant in ("achieved", "settled"):
        speedup = ratio(report.summary(variant).rate, report.summary("work").rate)
        report.notes.append(
            f"{variant} starts/s / work starts/s = {speedup:.2f} (target >= {TARGET_SPEEDUP:g})"
            if speedup is not None
            else f"{variant} starts/s / work starts/s: not measured"
        )
    return report


def _stepped_body(bench: Bench, first: int, starts: int, tag: str, *, variant: str) -> Body:
    achieved = variant != "work"

    async def body(queue: str, worker: WorkerProcess) -> Outcome:
        handles: list[stepped.ActionHandle] = []

        async def start(index: int) -> stepped.ActionHandle:
            handle = await stepped.start(Car(id=first + index), "touch", tag)
            handles.append(handle)
            return handle

        async def wait(handle: stepped.ActionHandle) -> stepped.ActionResult:
            return await handle.result()

        sampler = RssSampler(worker, starts)
        results = await start_and_wait(
            starts, start, wait, concurrency=bench.options.concurrency, on_done=sampler
        )
        statuses = Counter(str(result.status) for result in results)
        skipped = sum(1 for result in results if result.steps == ())
        visits = bench.visits(first, starts)
        ok = statuses == Counter({"succeeded": starts}) and visits == starts
        ok = ok and skipped == (starts if achieved else 0)
        settled = sum(1 for handle in handles if isinstance(handle, stepped.SettledActionHandle))
        ok = ok and settled == (starts if variant == "settled" else 0)
        summary = ", ".join(f"{count} {status}" for status, count in sorted(statuses.items()))
        note = f"{summary} ({skipped} skipped as achieved, {settled} settled); {visits} visits"
        return Outcome(ok, note, sampler.samples)

    return body


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.checksum", description=__doc__)
    parser.add_argument("--starts", type=int, default=1000, help="actions started per variant")
    add_common_arguments(parser)
    args = parser.parse_args()
    options = options_from(args)

    async def work(bench: Bench) -> int:
        print((await measure(bench, args.starts)).render(), flush=True)
        return 0

    run_main(lambda: with_bench(options, work))


if __name__ == "__main__":
    main()
