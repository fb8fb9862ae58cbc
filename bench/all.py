"""Every workload at the issue's sizes on one dev server, then the target check.

    python -m bench.all --runs 3

Fan-out 200 and 2000, chain 20, lane 2,000 actions on one key and 200 actions
on 200 keys, checksum 1,000 starts; each table is printed as soon as its
workload is done, and a final table says PASS or FAIL for every target.

The three big workloads (fan-out 2000, lane 2000, checksum 1000: thousands of
workflows each) take minutes per run on a 2-core machine, so they run
--large-runs times (default 1) instead of --runs, which keeps the whole
invocation near 15 minutes; pass --large-runs 3 for medians there too.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass

from . import chain, checksum, fanout, lane
from .harness import (
    Bench,
    Report,
    Run,
    add_common_arguments,
    options_from,
    progress,
    ratio,
    run_main,
    table,
    with_bench,
)

FANOUT_SMALL = 200
FANOUT_LARGE = 2000
CHAIN_DEPTH = 20
LANE_ACTIONS = 2000
LANE_KEYS_ACTIONS = 200
CHECKSUM_STARTS = 1000

#: issue 16's targets: ratios of medians, stepped / baseline, in one invocation
FANOUT_WALL = 1.0  # fan-out 200 and 2000, against the faster raw fan-out
FANOUT_WORKER_CPU = 1.2
FANOUT_SERVER_CPU = 1.1
CHAIN_WALL = 1.1
LANE_WALL = 1.1  # lane 2000 against the hand-written mutex
LANE_RSS = 1.2
ACHIEVED_SPEEDUP = checksum.TARGET_SPEEDUP
LANE_RUN_EVENTS = 5000
MEMORY_GROWTH = 1.25


@dataclass
class Target:
    name: str
    measured: str
    limit: str
    passed: bool | None  # None: not measured


def _fmt(value: float | None, suffix: str = "x") -> str:
    return "-" if value is None else f"{value:.2f}{suffix}"


def _check(value: float | None, test: Callable[[float], bool]) -> bool | None:
    return None if value is None else test(value)


def _at_most(name: str, value: float | None, limit: float) -> Target:
    return Target(name, _fmt(value), f"<= {limit:g}x", _check(value, lambda v: v <= limit))


def targets(reports: dict[str, Report]) -> list[Target]:
    """Evaluate the issue's targets on the reports of one invocation."""
    found = []
    for key, leaves in (("fanout-small", FANOUT_SMALL), ("fanout-large", FANOUT_LARGE)):
        report = reports[key]
        baseline = fanout.best_raw(report)  # the faster of unbatched and batched raw
        mine, theirs = report.summary("stepped"), report.summary(baseline)
        found.append(
            _at_most(
                f"fan-out {leaves}: wall time stepped/{baseline}",
                ratio(mine.wall, theirs.wall),
                FANOUT_WALL,
            )
        )
        if leaves == FANOUT_SMALL:
            found.append(
                _at_most(
                    f"fan-out {leaves}: worker CPU stepped/{baseline}",
                    ratio(mine.worker_cpu, theirs.worker_cpu),
                    FANOUT_WORKER_CPU,
                )
            )
            found.append(
                _at_most(
                    f"fan-out {leaves}: server CPU stepped/{baseline}",
                    ratio(mine.server_cpu, theirs.server_cpu),
                    FANOUT_SERVER_CPU,
                )
            )
        runs = report.runs.get("stepped", [])
        completed = [r for r in runs if r.wall is not None and r.ok]
        found.append(
            Target(
                f"fan-out {leaves}: completes (stepped)",
                f"{len(completed)}/{len(runs)} runs ok",
                "every run, before the deadline",
                bool(runs) and len(completed) == len(runs),
            )
        )
    chained = reports["chain"]
    found.append(
        _at_most(
            f"chain {CHAIN_DEPTH}: wall time stepped/raw",
            ratio(chained.summary("stepped").wall, chained.summary("raw").wall),
            CHAIN_WALL,
        )
    )
    lanes = reports["lane"]
    mine, mutex = lanes.summary("stepped"), lanes.summary("raw")
    found.append(
        _at_most(
            f"lane {LANE_ACTIONS}: wall time stepped/mutex", ratio(mine.wall, mutex.wall), LANE_WALL
        )
    )
    found.append(
        _at_most(
            f"lane {LANE_ACTIONS}: worker peak RSS stepped/mutex",
            ratio(mine.peak_mib, mutex.peak_mib),
            LANE_RSS,
        )
    )
    lane_runs: list[Run] = lanes.runs.get("stepped", [])
    lengths = [n for r in lane_runs if r.history for n in r.history.lane_runs]
    counted = bool(lane_runs) and all(r.history is not None for r in lane_runs)
    found.append(
        Target(
            f"lane {LANE_ACTIONS}: history events per lane run",
            f"max {max(lengths)} over {len(lengths)} runs" if lengths else "-",
            f"< {LANE_RUN_EVENTS}",
            (max(lengths) < LANE_RUN_EVENTS) if counted and lengths else None,
        )
    )
    growth = [
        r.rss_samples[-1] / r.rss_samples[0]
        for r in lane_runs
        if len(r.rss_samples) == 4 and r.rss_samples[0]
    ]
    found.append(
        Target(
            f"lane {LANE_ACTIONS}: worker RSS at 100% / at 25% of actions",
            ", ".join(_fmt(g) for g in growth) or "-",
            f"<= {MEMORY_GROWTH}x (every run)",
            (max(growth) <= MEMORY_GROWTH) if growth else None,
        )
    )
    sums = reports["checksum"]
    recorded = ratio(sums.summary("achieved").rate, sums.summary("work").rate)
    found.append(
        Target(
            f"checksum: {CHECKSUM_STARTS} achieved starts/s vs work, each a workflow (default)",
            _fmt(recorded),
            "(shown, no target)",
            None,
        )
    )
    speedup = ratio(sums.summary("settled").rate, sums.summary("work").rate)
    found.append(
        Target(
            f"checksum: {CHECKSUM_STARTS} achieved starts/s vs work, settled (no workflow)",
            _fmt(speedup),
            f">= {ACHIEVED_SPEEDUP:g}x",
            _check(speedup, lambda v: v >= ACHIEVED_SPEEDUP),
        )
    )
    return found


def render_targets(found: list[Target]) -> str:
    def result(target: Target) -> str:
        if target.passed is None:
            return "-" if target.limit.startswith("(") else "n/a"
        return "PASS" if target.passed else "FAIL"

    rows = [[t.name, t.measured, t.limit, result(t)] for t in found]
    headers = ["target (same server, same run)", "measured", "target", "result"]
    return table(headers, rows, align="llll")


async def run_all(bench: Bench, large_runs: int) -> int:
    """Every workload, each table as soon as it is done, then the targets."""
    began = time.monotonic()
    reports: dict[str, Report] = {}

    def record(key: str, report: Report) -> None:
        reports[key] = report
        print(report.render() + "\n", flush=True)

    record("fanout-small", await fanout.measure(bench, FANOUT_SMALL))
    record("fanout-large", await fanout.measure(bench, FANOUT_LARGE, runs=large_runs))
    record("chain", await chain.measure(bench, CHAIN_DEPTH))
    record("lane", await lane.measure(bench, LANE_ACTIONS, keys=1, runs=large_runs))
    record("lane-keys", await lane.measure(bench, LANE_KEYS_ACTIONS, keys=LANE_KEYS_ACTIONS))
    record("checksum", await checksum.measure(bench, CHECKSUM_STARTS, runs=large_runs))
    found = targets(reports)
    minutes = (time.monotonic() - began) / 60
    passed = sum(t.passed is True for t in found)
    # a row without a limit only informs
    scored = sum(not t.limit.startswith("(") for t in found)
    print("== targets ==")
    print(render_targets(found))
    print(f"\n{passed}/{scored} targets pass; the workloads took {minutes:.1f} min", flush=True)
    progress(f"done in {minutes:.1f} min")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.all", description=__doc__)
    add_common_arguments(parser)
    parser.add_argument(
        "--large-runs",
        type=int,
        default=1,
        help=f"runs of fan-out {FANOUT_LARGE}, lane {LANE_ACTIONS} and checksum "
        f"{CHECKSUM_STARTS} (default 1)",
    )
    args = parser.parse_args()
    if args.large_runs < 1:
        raise SystemExit("--large-runs must be at least 1")
    options = options_from(args)
    run_main(lambda: with_bench(options, lambda bench: run_all(bench, args.large_runs)))


if __name__ == "__main__":
    main()
