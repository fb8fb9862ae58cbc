"""An action's part in finding deadlocks across trees (S4.9): it passes a probe on
along its own wait-for edges, recognises one that came back to it, and checks
its edge on the confirm pass (what its step waits on; whom it shares). The
protocol and why it is sound: `wait_for`.

- A performing action waits on what its current step waits on: each child, or
  the successor the lane forwarded it to (`Dependencies.waits_on`).
- A pending or sharing action waits in its lane, which knows for whom: the
  probe goes to the lane, which adds the hop.
- Anything else (preparing, final, between steps) waits on nobody: the probe
  stops. A later edge of such an action starts its own probe when it joins.
- A forward (S4.2) can reach a parent after a probe did: the probe then went to
  the superseded child, which ended and dropped it. So the action keeps the
  probes that passed it, and on a forward sends them on to the successor.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from .action_run import ActionRun
    from .dependencies import Dependencies
    from .wait_for import CONFIRM, SEEK, SHARED, WAITS, Hop, Probe
    from .workflow_support import signal

__all__ = ["answer", "forwarded"]


async def answer(action: ActionRun, dependencies: Dependencies, probe: Probe) -> None:
    """Act on a probe that reached this action."""
    me = action.data.id
    if not probe.well_formed(action.input.shape.max_hops):
        workflow.logger.warning("action %s: probe dropped: %r", me, probe)
    elif probe.phase == SEEK and probe.path[-1].to == me:
        await _seek(action, dependencies, probe)
    elif probe.phase == CONFIRM and _holds(action, dependencies, probe.path[probe.at]):
        owner, following = probe.next_owner()
        await signal(owner, "probe", following)


async def _seek(action: ActionRun, dependencies: Dependencies, probe: Probe) -> None:
    me = action.data.id
    if probe.origin == me:
        if action.data.status == "pending":  # it came back: confirm the cycle hop by hop
            confirming = probe.confirming()
            if confirming.path[0].owner == me:  # our own sharing edge: no signal to ourselves
                await answer(action, dependencies, confirming)
            else:
                await signal(confirming.path[0].owner, "probe", confirming)
        return
    if probe.origin in action.probed or probe.visits(me):
        return  # passed on already, or a cycle that is not the origin's (its own join finds it)
    shape = action.input.shape
    if len(probe.path) >= shape.max_hops:
        workflow.logger.warning("action %s: probe of %s dropped: too long", me, probe.origin)
        return
    action.probed[probe.origin] = probe
    if len(action.probed) > shape.probes_remembered:
        del action.probed[next(iter(action.probed))]
    prepared = action.prepared
    if action.data.status == "pending" and prepared is not None and prepared.lane_id:
        if prepared.outcome == "joined":  # pending or sharing: the lane adds the hop
            await signal(prepared.lane_id, "probe", probe)
        return
    hops = [Hop(me, WAITS, to) for to in sorted(_waits_on(action, dependencies))]
    sends = [signal(hop.to, "probe", probe.extended(hop)) for hop in hops]
    await asyncio.gather(*sends)


def forwarded(action: ActionRun, dependencies: Dependencies, successor: str) -> None:
    """A dependency now waits on `successor`: the probes that passed this action
    while it still pointed at the superseded child go on to the successor."""
    if successor not in _waits_on(action, dependencies):
        return
    hop = Hop(action.data.id, WAITS, successor)
    for probe in action.probed.values():
        if not probe.visits(successor):
            task = asyncio.ensure_future(signal(successor, "probe", probe.extended(hop)))
            action.sending.add(task)
            task.add_done_callback(action.sending.discard)


def _holds(action: ActionRun, dependencies: Dependencies, hop: Hop) -> bool:
    """Whether this action still waits for `hop.to` as the hop says."""
    data = action.data
    if hop.action_id != data.id:
        return False
    if hop.kind == SHARED:
        waiting = data.status == "pending" and not action.cancel_requested
        return waiting and data.resolved_by == hop.to
    return hop.kind == WAITS and hop.to in _waits_on(action, dependencies)


def _waits_on(action: ActionRun, dependencies: Dependencies) -> set[str]:
    if action.data.status != "performing":
        return set()
    return dependencies.waits_on()
