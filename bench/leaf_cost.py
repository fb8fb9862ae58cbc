"""Where a leaf's activity time goes: Stepped's prepare against the raw write, in-process.

    python -m bench.leaf_cost --leaves 2000
    python -m bench.leaf_cost --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

A one-step Stepped leaf does all its database work in ONE local activity,
`prepare` (claim the key, erase the achievement, then run the step and record it). The
raw leaf's activity is `bench_raw_visit`: one UPDATE in one transaction. Both
run here through Temporal's `ActivityEnvironment` — the real activity code,
with its thread hop and payloads, but no server and no workflow — one leaf at
a time, so the CPU per leaf is the activity's own, without the noise of a
server sharing two cores. SQL statements and commits are counted on the
engine. The two variants alternate, `--runs` times each.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session
from temporalio.testing import ActivityEnvironment

import stepped_temporal as stepped
from stepped_temporal import config
from stepped_temporal.messages import ActionContext, PrepareInput
from stepped_temporal.preparing import prepare
from stepped_temporal.store import create_tables
from stepped_temporal.wire import encode

from . import raw
from .models import BenchBase, Car


def _counter(engine: sa.Engine) -> dict[str, int]:
    counts = {"statements": 0, "commits": 0}

    @sa.event.listens_for(engine, "before_cursor_execute")
    def _statement(*_: Any) -> None:
        counts["statements"] += 1

    @sa.event.listens_for(engine, "commit")
    def _commit(*_: Any) -> None:
        counts["commits"] += 1

    return counts


def _seed(engine: sa.Engine, first: int, count: int) -> None:
    with Session(engine) as session, session.begin():
        session.execute(
            sa.insert(Car), [{"id": n, "visits": 0} for n in range(first, first + count)]
        )


async def _stepped_leaf(environment: ActivityEnvironment, car_id: int) -> None:
    context = ActionContext(
        action_id=f"BenchCar/{car_id}/visit/{uuid.uuid4().hex[:16]}",
        actor_type="BenchCar",
        actor_id=car_id,
        name="visit",
        arguments=[],
        root=False,
    )
    # step records are keyed by the workflow run: one per leaf, as in a real fan-out;
    # prepare runs as a local activity (ActionInput.revision 2)
    environment.info = dataclasses.replace(
        environment.info, workflow_run_id=uuid.uuid4().hex, is_local=True
    )
    prepared = await environment.run(
        prepare,
        encode(PrepareInput(context, "bench-leaf-cost", perform_first_step=True, first_task=True)),
    )
    assert prepared["outcome"] == "claimed" and prepared["first_step"], prepared


async def _raw_leaf(environment: ActivityEnvironment, car_id: int) -> None:
    await asyncio.to_thread(environment.run, raw.visit, car_id)


Leaf = Callable[[ActivityEnvironment, int], Awaitable[None]]


async def _run(
    engine: sa.Engine, counts: dict[str, int], leaf: Leaf, first: int, n: int
) -> dict[str, float]:
    environment = ActivityEnvironment()
    before = dict(counts)
    cpu, wall = time.process_time(), time.perf_counter()
    for car_id in range(first, first + n):
        await leaf(environment, car_id)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    with engine.connect() as connection:
        visits = connection.scalar(
            sa.select(sa.func.sum(Car.visits)).where(Car.id.between(first, first + n - 1))
        )
    assert visits == n, f"{visits} visits for {n} leaves"
    return {
        "cpu_ms": cpu / n * 1000,
        "wall_ms": wall / n * 1000,
        "statements": (counts["statements"] - before["statements"]) / n,
        "commits": (counts["commits"] - before["commits"]) / n,
    }


async def main_async(args: argparse.Namespace) -> None:
    folder = Path(tempfile.mkdtemp(prefix="stepped-leaf-cost-"))
    url = args.database_url or f"sqlite:///{folder / 'bench.db'}"
    engine = config.create_engine(url)
    stepped.configure(engine=engine, task_queue="bench-leaf-cost")
    raw.use_engine(engine)
    create_tables(engine)
    BenchBase.metadata.drop_all(engine)
    BenchBase.metadata.create_all(engine)
    counts = _counter(engine)
    variants: dict[str, Leaf] = {"stepped": _stepped_leaf, "raw": _raw_leaf}
    results: dict[str, list[dict[str, float]]] = {v: [] for v in variants}
    next_id = 1
    warmup = min(100, args.leaves)
    for number in range(args.runs + 1):  # run 0 warms both up and is not counted
        order = list(variants) if number % 2 == 0 else list(reversed(variants))
        for variant in order:
            n = warmup if number == 0 else args.leaves
            _seed(engine, next_id, n)
            figures = await _run(engine, counts, variants[variant], next_id, n)
            next_id += n
            if number:
                results[variant].append(figures)
    print(
        f"leaf cost: {args.leaves} leaves x {args.runs} runs, {engine.dialect.name}, one at a time"
    )
    header = ("variant", "CPU ms/leaf", "(min-max)", "wall ms/leaf", "statements", "commits")
    print("{:<8} {:>12} {:>14} {:>13} {:>11} {:>8}".format(*header))
    for variant, runs in results.items():
        cpu = [r["cpu_ms"] for r in runs]
        print(
            f"{variant:<8} {statistics.median(cpu):12.3f} {f'({min(cpu):.3f}-{max(cpu):.3f})':>14} "
            f"{statistics.median(r['wall_ms'] for r in runs):13.3f} "
            f"{statistics.median(r['statements'] for r in runs):11.1f} "
            f"{statistics.median(r['commits'] for r in runs):8.1f}"
        )
    ratio = statistics.median(r["cpu_ms"] for r in results["stepped"]) / statistics.median(
        r["cpu_ms"] for r in results["raw"]
    )
    print(f"stepped/raw CPU per leaf: {ratio:.2f}x")
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.leaf_cost", description=__doc__)
    parser.add_argument("--leaves", type=int, default=2000, help="leaves per run")
    parser.add_argument("--runs", type=int, default=5, help="runs per variant, alternating")
    parser.add_argument("--database-url", help="default: a SQLite file in a temporary folder")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
