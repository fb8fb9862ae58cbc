"""Steps: one action of N steps on one car, each step writing the car once (S11.1:
past a tenth of the history limit the action continues as new between steps).

    python -m bench.steps --steps 1000

Raw baseline: a workflow running N activities one after another, each the same
write, continuing as new at the same threshold. Per-step figures divide by N;
`--steps 200,1000` runs both sizes in one invocation and compares their
per-step cost (issue 28: within 1.2x).
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
from .models import STEP_COUNTS, Car

VARIANTS = ["stepped", "raw"]


async def measure(bench: Bench, count: int, runs: int | None = None) -> Report:
    """`runs` runs of each variant (default: --runs)."""

    def body_for(variant: str) -> Body:
        car = bench.seed_cars(1)
        return (_stepped_body if variant == "stepped" else _raw_body)(bench, car, count)

    return await stepped_against_raw(
        bench,
        title=f"steps {count}",
        leaves=count,
        unit="steps",
        deadline=bench.options.deadline or max(120.0, count * 0.5),
        expected_ids=1,
        body_for=body_for,
        runs=runs,
    )


def _stepped_body(bench: Bench, car: int, count: int) -> Body:
    async def body(queue: str, worker: WorkerProcess) -> Outcome:
        handle = await stepped.start(Car(id=car), f"steps_{count}")
        result = await handle.result()
        visits = bench.visits(car, 1)
        ok = result.status == "succeeded" and visits == count
        return Outcome(ok, f"{result.status}, {visits}/{count} visits ({handle.id})")

    return body


def _raw_body(bench: Bench, car: int, count: int) -> Body:
    async def body(queue: str, worker: WorkerProcess) -> Outcome:
        done = await bench.client.execute_workflow(
            raw.RawSteps.run,
            args=[car, count],
            id=f"{queue}/steps",
            task_queue=queue,
            search_attributes=raw.attributes(car, "steps"),
        )
        visits = bench.visits(car, 1)
        return Outcome(done == count and visits == count, f"{done} steps, {visits} visits")

    return body


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.steps", description=__doc__)
    parser.add_argument(
        "--steps",
        default="1000",
        help=f"steps of the action, comma-separated (declared: {STEP_COUNTS})",
    )
    add_common_arguments(parser)
    args = parser.parse_args()
    options = options_from(args)
    counts = [int(n) for n in args.steps.split(",")]
    unknown = [n for n in counts if n not in STEP_COUNTS]
    if unknown:
        parser.error(f"--steps {unknown}: bench/models.py declares actions of {STEP_COUNTS}")

    async def work(bench: Bench) -> int:
        reports = []
        for count in counts:
            report = await measure(bench, count)
            print(report.render(), flush=True)
            reports.append(report)
        if len(reports) > 1:
            print(per_step_comparison(reports), flush=True)
        return 0

    run_main(lambda: with_bench(options, work))


def per_step_comparison(reports: list[Report]) -> str:
    """Each size's median per-step wall and worker CPU time, and peak worker memory,
    against the smallest size's (issue 28: per-step cost within 1.2x, memory flat)."""
    base = reports[0]
    lines = [f"per step, against {base.title} (medians):"]
    for report in reports:
        for variant in VARIANTS:
            now, then = report.summary(variant), base.summary(variant)
            parts = [f"  {report.title:<11} {variant:<8}"]
            for name, value, before in (
                ("wall", now.wall, then.wall),
                ("worker cpu", now.worker_cpu, then.worker_cpu),
            ):
                if value and before:
                    per_step = value / report.leaves
                    parts.append(f"{name} {per_step * 1000:.1f} ms ")
                    parts.append(f"({per_step / (before / base.leaves):.2f}x)")
            if now.peak_mib and then.peak_mib:
                parts.append(f" peak {now.peak_mib:.0f} MiB ({now.peak_mib / then.peak_mib:.2f}x)")
            lines.append(" ".join(parts))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
