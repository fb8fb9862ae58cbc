"""Lane: many actions started at once through one lane (or one lane each).

    python -m bench.lane --actions 2000            # 2,000 actions, one concurrency key
    python -m bench.lane --actions 200 --keys 200  # 200 actions on 200 distinct lanes
    python -m bench.lane --actions 2000 --policy queue --only stepped  # S4.10 policies

Every action is started by the client (at most --concurrency starts at once),
each on its own car, and its result awaited; wall time runs from the first
start to the last result. In one lane, a newer pending action supersedes the
older pending ones, so fewer than N perform. Raw baseline (`raw_mutex.py`): a
hand-written per-key mutex workflow with the same rule, N requester workflows
on the same keys, and the same write for each one granted the lock.
The worker's RSS is sampled at 25/50/75/100 % of completed actions.
`--parents` has each stepped action asked for by a parent (`relay`, one per car,
in a lane of its own) that waits on it: every contended join then carries a
waiting parent, which is what makes a lane start a deadlock probe (S4.9); the
parents end succeeded whether their child performed or was superseded.
`--policy` runs the stepped actions under another lane policy (S4.10): queue
(every action performs, one at a time), cancel_in_progress (each join cancels
the performer), skip_if_busy (joins finding the lane busy end at once); the
raw mutex only implements the default, so compare those with `--only stepped`.
"""

from __future__ import annotations

import argparse
from collections import Counter
from typing import Any

from temporalio.client import WorkflowHandle

import stepped_temporal as stepped

from . import raw, raw_mutex
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
    rotated,
    run_main,
    run_variant,
    start_and_wait,
    with_bench,
)
from .models import Car

VARIANTS = ["stepped", "raw"]


async def measure(
    bench: Bench,
    actions: int,
    keys: int = 1,
    runs: int | None = None,
    policy: str = "supersede",
    parents: bool = False,
) -> Report:
    """`runs` runs of each variant (default: --runs)."""
    options = bench.options
    runs = runs or options.runs
    deadline = options.deadline or max(180.0, actions * 0.3)
    lanes = "one lane" if keys == 1 else f"{keys} lanes"
    report = Report(
        title=f"lane: {actions} actions on {lanes}"
        + ("" if policy == "supersede" else f", lane={policy!r}")
        + (", each asked for by a waiting parent" if parents else ""),
        leaves=actions,
        unit="actions",
        variants=options.variants(VARIANTS),
        ratios=[("stepped", "raw")] if not options.only else [],
    )
    for number in range(runs):
        for variant in rotated(options.variants(VARIANTS), number):
            progress(f"[lane {actions}x{keys}] run {number + 1}/{runs}: {variant}")
            first = bench.seed_cars(actions)
            if variant == "stepped":
                body = _stepped_body(bench, first, actions, keys, policy, parents)
                # the actions (and relays); lanes, for contended keys, come on top
                expected = 2 * actions if parents else actions
            else:
                body = raw_mutex_body(bench, first, actions, keys)
                expected = actions  # the mutex workflows come on top
            report.add(
                await run_variant(
                    bench,
                    label=f"lane{actions}x{keys}",
                    variant=variant,
                    worker=variant,
                    leaves=actions,
                    expected_ids=expected,
                    deadline=deadline,
                    body=body,
                )
            )
    report.notes.append(
        "both perform one action per key at a time and let a newer pending one supersede "
        "the older: stepped through its lanes, raw through a hand-written mutex workflow"
    )
    return report


def _stepped_body(
    bench: Bench, first: int, actions: int, keys: int, policy: str, parents: bool = False
) -> Body:
    """The stepped actions, started from outside or (`parents`) by waiting relays."""
    name = "relay" if parents else "bump" if policy == "supersede" else f"bump_{policy}"

    async def body(queue: str, worker: WorkerProcess) -> Outcome:
        async def start(index: int) -> stepped.ActionHandle:
            return await stepped.start(Car(id=first + index), name, _lane_key(queue, keys, index))

        async def wait(handle: stepped.ActionHandle) -> stepped.ActionResult:
            return await handle.result()

        sampler = RssSampler(worker, actions)
        results = await start_and_wait(
            actions, start, wait, concurrency=bench.options.concurrency, on_done=sampler
        )
        statuses = Counter(str(result.status) for result in results)
        visits = bench.visits(first, actions)
        if parents:  # every relay succeeds, whether its bump performed or was superseded
            ok = set(statuses) == {"succeeded"} and 0 < visits <= actions
            return Outcome(ok, f"relays: {dict(statuses)}; {visits} visits", sampler.samples)
        return _lane_outcome(statuses, "succeeded", visits, sampler, policy)

    return body


#: the statuses each lane policy may end an action with (S4.10)
ENDINGS = {
    "supersede": {"succeeded", "superseded"},
    "queue": {"succeeded"},
    "cancel_in_progress": {"succeeded", "superseded", "cancelled"},
    "skip_if_busy": {"succeeded", "cancelled"},
}


def _lane_outcome(
    counts: Counter[str],
    performed_as: str,
    visits: int,
    sampler: RssSampler,
    policy: str = "supersede",
) -> Outcome:
    """OK when only the policy's statuses occur and exactly the performed actions
    wrote — but a performer cancelled by a newer join (cancel_in_progress) may have
    written before its cancel came."""
    allowed = (ENDINGS[policy] - {"succeeded"}) | {performed_as}
    done = counts.get(performed_as, 0)
    extra = counts.get("cancelled", 0) if policy == "cancel_in_progress" else 0
    ok = set(counts) <= allowed and done <= visits <= done + extra
    summary = ", ".join(f"{count} {outcome}" for outcome, count in sorted(counts.items()))
    return Outcome(ok, f"{summary}; {visits} visits", sampler.samples)


def _lane_key(queue: str, keys: int, index: int) -> str:
    return f"bench/{queue}" if keys == 1 else f"bench/{queue}/{index % keys}"


def raw_mutex_body(bench: Bench, first: int, actions: int, keys: int) -> Body:
    """`actions` requesters of the hand-written mutex, on the same keys as stepped's."""

    async def body(queue: str, worker: WorkerProcess) -> Outcome:
        async def start(index: int) -> WorkflowHandle[Any, str]:
            car_id = first + index
            return await bench.client.start_workflow(
                raw_mutex.RawLaneAction.run,
                args=[car_id, _lane_key(queue, keys, index)],
                id=f"{queue}/lane-action/{car_id}",
                task_queue=queue,
                search_attributes=raw.attributes(car_id, "bump"),
            )

        async def wait(handle: WorkflowHandle[Any, str]) -> str:
            return await handle.result()

        sampler = RssSampler(worker, actions)
        outcomes = Counter(
            await start_and_wait(
                actions, start, wait, concurrency=bench.options.concurrency, on_done=sampler
            )
        )
        return _lane_outcome(outcomes, "performed", bench.visits(first, actions), sampler)

    return body


def raw_visits_body(bench: Bench, first: int, count: int) -> Body:
    """`count` raw workflows, one per car, each running the write."""

    async def body(queue: str, worker: WorkerProcess) -> Outcome:
        async def start(index: int) -> WorkflowHandle[Any, None]:
            car_id = first + index
            return await bench.client.start_workflow(
                raw.RawVisit.run,
                car_id,
                id=f"{queue}/visit/{car_id}",
                task_queue=queue,
                search_attributes=raw.attributes(car_id, "visit"),
            )

        async def wait(handle: WorkflowHandle[Any, None]) -> None:
            await handle.result()

        sampler = RssSampler(worker, count)
        await start_and_wait(
            count, start, wait, concurrency=bench.options.concurrency, on_done=sampler
        )
        visits = bench.visits(first, count)
        return Outcome(visits == count, f"{visits}/{count} visits", sampler.samples)

    return body


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.lane", description=__doc__)
    parser.add_argument("--actions", type=int, default=2000, help="actions started")
    parser.add_argument(
        "--keys", type=int, default=1, help="distinct concurrency keys (lanes), round robin"
    )
    parser.add_argument(
        "--policy",
        default="supersede",
        choices=list(ENDINGS),
        help="the stepped actions' lane policy (S4.10)",
    )
    parser.add_argument(
        "--parents",
        action="store_true",
        help="each stepped action asked for by a waiting parent (S4.9's probes)",
    )
    add_common_arguments(parser)
    args = parser.parse_args()
    options = options_from(args)

    async def work(bench: Bench) -> int:
        report = await measure(
            bench, args.actions, args.keys, policy=args.policy, parents=args.parents
        )
        print(report.render(), flush=True)
        return 0

    run_main(lambda: with_bench(options, work))


if __name__ == "__main__":
    main()
