"""S4.9 (and S4.4), randomised: many trees with random keys and random child calls,
many seeds, against a brute-force cycle search on the recorded wait-for edges.

Per seed, 2-5 roots each perform in their own lane and, once every root performs
(their gates open together), visit 0-3 random lanes: another root's (an edge
of the wait-for graph between roots), their own (S4.4) or a free one. Whatever
the timing, afterwards:
- every tree finished (nothing hangs);
- every deadlocked visit names a cycle that is in the recorded graph, hop by
  hop (no false positive), and every deadlocked root-to-root edge lies on a
  cycle of that graph;
- removing the deadlocked edges leaves no cycle (every cycle was broken), and
  the deadlocks could have come one at a time, each breaking a cycle that was
  still whole (exactly one per cycle);
- a root fails exactly when one of its visits (or the successor it was handed
  to, S4.2) ended unsuccessfully.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import re

import stepped_temporal as stepped
from tests.test_cross_tree_deadlocks import DEADLINE, at_gate, fleet_class, open_gate

#: the seeds tried (more: STEPPED_ORACLE_SEEDS=first:stop)
SEEDS = range(*map(int, os.environ.get("STEPPED_ORACLE_SEEDS", "0:16").split(":")))
AT_ONCE = 4


def plan(seed: int) -> dict[int, tuple[str, list[list[str]]]]:
    """Car id → (own key, visits) for one seed."""
    rng = random.Random(seed)
    count = rng.randint(2, 5)
    keys = [f"s{seed}k{i}" for i in range(count)]
    leads = {}
    for i in range(count):
        visits = []
        for j in range(rng.randint(0, 3)):
            roll = rng.random()
            if roll < 0.08:
                key = keys[i]  # its own lane: S4.4
            elif roll < 0.25:
                key = f"s{seed}free{i}.{j}"
            else:
                key = rng.choice([k for k in keys if k != keys[i]] or keys)
            visits.append(["visit", key])
        leads[seed * 100 + i] = (keys[i], visits)
    return leads


async def run_seed(env, Car, seed: int) -> dict:
    leads = plan(seed)
    cars = {n: env.create(Car, id=n) for n in leads}
    roots = {n: await stepped.start(cars[n], "lead", *args) for n, args in leads.items()}
    for root in roots.values():
        await at_gate(root)
    await asyncio.gather(*(open_gate(cars[n]) for n in leads))
    try:
        results = await asyncio.wait_for(
            asyncio.gather(*(root.result() for root in roots.values())), DEADLINE
        )
    except TimeoutError:
        raise AssertionError(f"seed {seed} hangs:\n{await stuck(roots)}") from None
    by_root = dict(zip(leads, results, strict=True))
    actions: dict[str, stepped.ActionData] = {}
    for result in by_root.values():
        actions[result.id] = result
        for action_id in result.steps[1].actions if len(result.steps) > 1 else []:
            actions[action_id] = await stepped.action_handle(action_id).result()
    return {"leads": leads, "roots": by_root, "actions": actions}


async def stuck(roots: dict) -> str:
    """Who waits on what, for a seed that hangs."""
    lines = []
    for root in roots.values():
        state = await root.describe()
        lines.append(f"{state.id} {state.status} key={state.concurrency_key}")
        for step in state.steps:
            for action_id in step.actions:
                child = await stepped.action_handle(action_id).describe()
                lines.append(
                    f"  {child.id} {child.status} key={child.concurrency_key} "
                    f"by={child.resolved_by}"
                )
    return "\n".join(lines)


def final(actions: dict, action_id: str) -> stepped.ActionData:
    """Where a dependency on `action_id` ended: through successors (S4.2)."""
    action = actions[action_id]
    while action.status == "superseded":
        action = actions[action.resolved_by]
    return action


def check(seed: int, run: dict) -> tuple[int, int]:
    """The oracle; returns (deadlocks across trees, all deadlocks)."""
    leads, roots, actions = run["leads"], run["roots"], run["actions"]
    owner = {key: roots[n].id for n, (key, _) in leads.items()}
    # the wait-for graph between roots, one edge per visit: (root, root, visit)
    edges = []
    for result in roots.values():
        assert result.status in ("succeeded", "failed"), (seed, result.id, result.status)
        for visit_id in visits_of(result, actions):
            key = actions[visit_id].concurrency_key
            if key in owner:
                edges.append((result.id, owner[key], visit_id))
    deadlocked = {a.id for a in actions.values() if a.status == "deadlocked"}
    broken = [e for e in edges if final(actions, e[2]).id in deadlocked]
    standing = [e for e in edges if e not in broken]
    assert not any(cycle_through(e, standing) for e in standing), (seed, "a cycle was left")
    across = 0
    for victim_id in deadlocked:
        victim = actions[victim_id]
        assert victim.error.type == "Deadlock", victim.error
        if "closed a cycle" in victim.error.message:
            across += 1
            assert_real_cycle(seed, victim, actions, owner)
        else:  # S4.4: its own root performs in that lane
            assert owner.get(victim.concurrency_key) == victim.parent_id, victim.error.message
    assert one_at_a_time(broken, edges, actions), (seed, "two deadlocks for one cycle")
    for result in roots.values():
        visits = visits_of(result, actions)
        ended_badly = any(final(actions, v).status != "succeeded" for v in visits)
        assert (result.status == "failed") == ended_badly, (seed, result.id)
    return across, len(deadlocked)


def one_at_a_time(broken: list, edges: list, actions: dict) -> bool:
    """Exactly one per cycle: the deadlocks could have come one at a time, each
    on a cycle that was still whole — some order of them in which each one's
    edges close a cycle of the graph without the edges of those before it."""
    victims: dict[str, list] = {}
    for edge in broken:
        victims.setdefault(final(actions, edge[2]).id, []).append(edge)
    for order in itertools.permutations(victims):
        gone: list = []
        for victim in order:
            left = [e for e in edges if e not in gone]
            if not any(cycle_through(e, left) for e in victims[victim]):
                break
            gone += victims[victim]
        else:
            return True
    return False


def visits_of(root, actions: dict) -> list[str]:
    """The visits the root's second step asked for (not successors it was handed)."""
    listed = root.steps[1].actions if len(root.steps) > 1 else []
    return [a for a in listed if actions[a].parent_id == root.id]


HOP = re.compile(
    r"(\S+) \((?:pending|sharing) in lane '([^']+)'\) waits for (\S+)|(\S+) waits for (\S+)"
)


def assert_real_cycle(seed: int, victim, actions: dict, owner: dict) -> None:
    """Every hop the message names is an edge of the recorded graph, and they close."""
    text = victim.error.message.split(": ", 1)[1].removesuffix(" — it would wait for itself")
    chain = []
    for part in text.split("; "):
        hop = HOP.fullmatch(part)
        assert hop, (seed, part)
        if hop.group(1):  # pending in that lane, behind the root performing there
            waiting, key, to = hop.group(1), hop.group(2), hop.group(3)
            assert actions[waiting].concurrency_key == key and owner[key] == to, (seed, part)
        else:  # a root's step waits on a visit, or on the successor it was handed
            waiting, to = hop.group(4), hop.group(5)
            assert to in actions[waiting].steps[1].actions, (seed, part)
        chain.append((waiting, to))
    assert chain[0][0] == victim.id
    for (_, to), (following, _) in zip(chain, chain[1:] + chain[:1], strict=True):
        assert to == following, (seed, text)


def cycle_through(edge: tuple, edges: list) -> bool:
    """Whether `edge` lies on a cycle of `edges`."""
    return edge[0] == edge[1] or reaches(edge[1], edge[0], edges)


def reaches(start: str, goal: str, edges: list) -> bool:
    """Whether a path of `edges` leads from `start` to `goal`."""
    seen, frontier = {start}, [start]
    while frontier:
        node = frontier.pop()
        for a, b, _ in edges:
            if a == node and b not in seen:
                if b == goal:
                    return True
                seen.add(b)
                frontier.append(b)
    return False


async def test_random_trees_against_a_brute_force_cycle_search(stepped_env):
    Car = fleet_class()
    across = deadlocks = 0
    seeds = list(SEEDS)
    for first in range(0, len(seeds), AT_ONCE):
        batch = seeds[first : first + AT_ONCE]
        runs = await asyncio.gather(*(run_seed(stepped_env, Car, seed) for seed in batch))
        for seed, run in zip(batch, runs, strict=True):
            found_across, found = check(seed, run)
            across += found_across
            deadlocks += found
    print(f"{len(seeds)} seeds: {deadlocks} deadlocks, {across} of them across trees")
    assert across > 0  # the seeds do make cycles across trees
