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

Size (S11.1, `BOUNDED_PROBES`): a parent of thousands of children must not signal
them all in one task — Temporal refuses a run more than its pending-signals limit,
and fails the task again on every retry. So a probe goes only to children whose
workflows exist (one the child window still holds back waits on nobody yet, and
starts a probe of its own when it joins a lane), and at most `child_window`
probe signals are under way at once (the recorded window is at most half the
cluster's pending operations, `shapes.action_shape`). Runs recorded before
signalled every unconcluded child at once, and replay that way.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from .action_run import ActionRun
    from .dependencies import Dependencies
    from .wait_for import CONFIRM, SEEK, SHARED, WAITS, Hop, Probe
    from .workflow_support import signal

__all__ = ["BOUNDED_PROBES", "answer", "forwarded"]

#: the patch marker of probes sent to started children only, `child_window` at a time
BOUNDED_PROBES = "stepped-bounded-probes"


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
    window = _window(action)
    targets = _waits_on(action, dependencies, started=window is not None)
    hops = [Hop(me, WAITS, to) for to in sorted(targets)]
    await asyncio.gather(*(_send(window, hop.to, probe.extended(hop)) for hop in hops))


def _window(action: ActionRun) -> asyncio.Semaphore | None:
    """The bound on probes under way, None in runs recorded before it existed."""
    if action.probe_window is None and workflow.patched(BOUNDED_PROBES):
        action.probe_window = asyncio.Semaphore(action.input.shape.child_window)
    return action.probe_window


async def _send(window: asyncio.Semaphore | None, to: str, probe: Probe) -> bool:
    if window is None:
        return await signal(to, "probe", probe)
    async with window:
        return await signal(to, "probe", probe)


def forwarded(action: ActionRun, dependencies: Dependencies, successor: str) -> None:
    """A dependency now waits on `successor`: the probes that passed this action
    while it still pointed at the superseded child go on to the successor."""
    if successor not in _waits_on(action, dependencies):
        return
    hop = Hop(action.data.id, WAITS, successor)
    for probe in action.probed.values():
        if not probe.visits(successor):
            sent = _send(action.probe_window, successor, probe.extended(hop))
            task = asyncio.ensure_future(sent)
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


def _waits_on(action: ActionRun, dependencies: Dependencies, *, started: bool = False) -> set[str]:
    if action.data.status != "performing":
        return set()
    return dependencies.waits_on(started=started)
