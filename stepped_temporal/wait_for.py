"""Deadlocks across trees (S4.9): the probes that walk the wait-for graph, and the
pure rules on them. Standard library only, so workflow code can use it.

The graph. An action waits for another when it is *pending* in a lane (for the
lane's performing action), *shared* with an action (for that action, S4.3), or
*performing* while its current step waits on a child (for the child, or for
the successor the lane forwarded it to, S4.2). Nobody holds the whole graph:
a lane knows its pending actions and followers, an action knows what its step
waits on. A cycle can only close when a lane places a candidate behind a
performer or beside an action it shares: children are edges older than their
own joins, and a newly granted performer waits on nothing yet.

Edge chasing (Chandy-Misra-Haas, AND model). When a lane places a candidate
that someone waits on (its parent, dependents it inherited) behind a performer,
or shares it, the lane sends a probe — origin: the candidate; path: the first
hop — to the action it now waits for. An action passes the probe on along its
own edges: a performing action to each child its step waits on, a pending or
sharing one to its lane, which adds the hop (pending behind whom, sharing
whom) and sends it on. A probe that reaches its origin has walked a cycle.

No false positive. Edges here, once gone, never come back (an action performs,
waits on a dependency, or sits in a queue once), so the origin sends a
*confirm* pass along the same path: each hop's owner checks that its edge still
holds. If every hop held when the probe passed and again when the confirm
passed, every edge held at the moment between the two passes: the cycle was
real. Only then is one action deadlocked.

Exactly one per cycle. Several joins can close one cycle at once, and every
probe that finds it agrees on the same victim: the join of the cycle that came
last (the lane's clock, then the action id) — the one that closed it. The
confirming owner asks the victim's lane to deadlock it, which it does only if
the victim still waits there (a second request finds it gone). Cycles that
close at the same time are each broken at their own latest join, and that set
of victims is one a detector breaking one cycle at a time would pick, latest
victim first: a cycle whose victim is v holds no later victim (v is its
latest join), so breaking the later ones first leaves it whole. No cycle ever
loses two actions where one would do (tests/test_deadlock_oracle.py checks
exactly this against a brute-force search).

Cost. Nothing while no lane is contended: no lane, no probe. A join sends one
probe, and only when someone waits on the candidate and the lane has a
performer (a root started from outside never does); every action passes on a
given probe once (it remembers recent origins) and no path grows beyond
`MAX_HOPS`, so a probe costs at most one signal per edge reachable from the
performer, and most stop at once at a performer whose step waits on no child.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from itertools import pairwise

from .keys import lane_id

__all__ = [
    "BREAK",
    "CONFIRM",
    "KINDS",
    "MAX_HOPS",
    "PENDING",
    "SEEK",
    "SHARED",
    "WAITS",
    "Hop",
    "Probe",
    "stamp",
]

#: the three kinds of edge (see the module's docstring)
PENDING, SHARED, WAITS = "pending", "shared", "waits"
KINDS = (PENDING, SHARED, WAITS)
#: a probe seeks a cycle, confirms one hop by hop, then asks for the victim's deadlock
SEEK, CONFIRM, BREAK = "seek", "confirm", "break"
PHASES = (SEEK, CONFIRM, BREAK)
#: a probe whose path grows past this is dropped (no tree is this deep across lanes)
MAX_HOPS = 64


def stamp(moment: datetime) -> str:
    """A join's time as the lane saw it: ISO text that sorts as time does."""
    return moment.isoformat(timespec="microseconds")


@dataclass(frozen=True)
class Hop:
    """One edge of the wait-for graph: `action_id` waits for `to`."""

    action_id: str
    #: PENDING (in lane `key`, behind `to`), SHARED (in lane `key`, mirrors `to`)
    #: or WAITS (its current step waits on `to`)
    kind: str
    to: str
    key: str | None = None
    #: PENDING and SHARED: when it joined the lane (`stamp`)
    joined_at: str | None = None

    @property
    def owner(self) -> str:
        """The workflow that knows whether this edge still holds: the lane for a
        pending action (it leaves only through the lane), the action itself for
        the others (a follower may end, by cancel, without telling the lane)."""
        if self.kind != PENDING:
            return self.action_id
        assert self.key is not None
        return lane_id(self.key)

    def text(self) -> str:
        if self.kind == WAITS:
            return f"{self.action_id} waits for {self.to}"
        how = "pending in" if self.kind == PENDING else "sharing in"
        return f"{self.action_id} ({how} lane {self.key!r}) waits for {self.to}"


@dataclass(frozen=True)
class Probe:
    """A walk of the wait-for graph from `origin`, whose join may have closed a cycle."""

    origin: str
    path: list[Hop] = field(default_factory=list)
    phase: str = SEEK
    #: CONFIRM: the hop being checked
    at: int = 0

    def well_formed(self, max_hops: int = MAX_HOPS) -> bool:
        """A probe any Stepped workflow could have sent: a chain of at most `max_hops`
        known hops starting at its origin (anything else is dropped, never acted on)."""
        path = self.path
        if not path or len(path) > max_hops or self.phase not in PHASES:
            return False
        if path[0].action_id != self.origin or not 0 <= self.at < len(path):
            return False
        for hop, following in pairwise(path):
            if hop.to != following.action_id:
                return False
        for hop in path:
            if hop.kind not in KINDS or (hop.kind != WAITS and not hop.key):
                return False
        return self.phase == SEEK or self.closed()

    def closed(self) -> bool:
        """The path came back to where it started: a cycle."""
        return self.path[-1].to == self.origin

    def visits(self, action_id: str) -> bool:
        """Whether the walk already went through `action_id`."""
        return any(hop.action_id == action_id for hop in self.path)

    def extended(self, hop: Hop) -> Probe:
        return replace(self, path=[*self.path, hop])

    def confirming(self, at: int = 0) -> Probe:
        return replace(self, phase=CONFIRM, at=at)

    def breaking(self) -> Probe:
        return replace(self, phase=BREAK, at=self.path.index(self.victim()))

    def next_owner(self) -> tuple[str, Probe]:
        """Where a confirmed hop sends the probe on: the next hop's owner, or after
        the last, the victim's lane with the request to break the cycle."""
        if self.at + 1 < len(self.path):
            following = self.confirming(self.at + 1)
            return following.path[following.at].owner, following
        breaking = self.breaking()
        victim = breaking.path[breaking.at]
        assert victim.key is not None  # a join: pending or sharing, in a lane
        return lane_id(victim.key), breaking

    def victim(self) -> Hop:
        """The join that closed the cycle: the latest by the lanes' clocks, then by id."""
        joins = [hop for hop in self.path if hop.kind != WAITS]
        return max(joins, key=lambda hop: (hop.joined_at or "", hop.action_id))

    def describe(self) -> str:
        """The cycle, from the victim round: every action and lane key in it."""
        victim = self.path.index(self.victim())
        cycle = self.path[victim:] + self.path[:victim]
        keys = sorted({hop.key for hop in cycle if hop.key})
        return (
            f"action {cycle[0].action_id} closed a cycle of waits across lanes "
            f"{', '.join(repr(key) for key in keys)}: "
            + "; ".join(hop.text() for hop in cycle)
            + " — it would wait for itself"
        )
