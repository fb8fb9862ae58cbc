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

#: the issue's targets
FANOUT_TIME_RATIO = 1.3
FANOUT_EVENTS_RATIO = 1.5
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


def targets(reports: dict[str, Report]) -> list[Target]:
    """Evaluate the issue's targets on the reports of one invocation."""
    found = []
    small = reports["fanout-small"]
    baseline = fanout.best_raw(small)  # the faster of unbatched and batched raw
    stepped_small, raw_small = small.summary("stepped"), small.summary(baseline)
    time_ratio = ratio(stepped_small.wall, raw_small.wall)
    found.append(
        Target(
            f"fan-out {FANOUT_SMALL}: wall time stepped/{baseline}",
            _fmt(time_ratio),
            f"<= {FANOUT_TIME_RATIO}x",
            _check(time_ratio, lambda v: v <= FANOUT_TIME_RATIO),
        )
    )
    events_ratio = ratio(stepped_small.events_per_leaf, raw_small.events_per_leaf)
    found.append(
        Target(
            f"fan-out {FANOUT_SMALL}: history events/leaf stepped/{baseline}",
            _fmt(events_ratio),
            f"<= {FANOUT_EVENTS_RATIO}x",
            _check(events_ratio, lambda v: v <= FANOUT_EVENTS_RATIO),
        )
    )
    large_runs = reports["fanout-large"].runs.get("stepped", [])
    completed = [r for r in large_runs if r.wall is not None and r.ok]
    slowest = max((r.wall for r in completed if r.wall is not None), default=None)
    found.append(
        Target(
            f"fan-out {FANOUT_LARGE}: completes (stepped)",
            f"{len(completed)}/{len(large_runs)} runs ok"
            + (f", slowest {slowest:.1f}s" if slowest is not None else ""),
            "every run, before the deadline",
            bool(large_runs) and len(completed) == len(large_runs),
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
    lane_runs: list[Run] = reports["lane"].runs.get("stepped", [])
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
