"""S4.2: a candidate supersedes every pending action of its lane and takes over
whoever waited on them — roots and nested alike, counted per dependency."""

from __future__ import annotations

from datetime import timedelta

import pytest

import stepped_temporal as stepped
from tests.support import car_class, joined, performing, until


async def _after_children_joined(parent, count):
    """The parent's result, once its first step's `count` children all joined their lane
    (time skipping stays locked until then, so the blocker keeps performing)."""
    state = await until(parent, lambda s: s.steps and len(s.steps[0].actions) >= count)
    for child_id in state.steps[0].actions:
        await until(stepped.action_handle(child_id), lambda s: joined(s) or s.final)
    return await parent.result()


def _declare(Car):
    """visit(location): waits an hour, then moves; catch-all callbacks count honks."""
    visit = Car.stepped_action("visit")

    @visit.step
    def _(car, step, location):
        step.wait(timedelta(hours=1))

    @visit.step
    def _(car, step, location):
        if location == "nowhere":
            raise ValueError("no such place")
        car.change_location(location)

    @visit.after()
    def _(car, action, location):
        car.honk()

    return visit


@pytest.mark.time_skipping
async def test_pending_root_is_superseded_by_a_newer_root(stepped_env):
    """S4.2: superseded at once, completed_at and resolved_by set, no callbacks."""
    Car = car_class()
    _declare(Car)
    car = stepped_env.create(Car, id=1)

    first = await stepped.start(car, "visit", "Bratislava")
    await until(first, performing)
    second = await stepped.start(car, "visit", "Paris")
    await until(second, joined)
    third = await stepped.start(car, "visit", "Berlin")

    superseded = await second.result()
    assert superseded.status == "superseded"
    assert superseded.resolved_by == third.id
    assert superseded.completed_at is not None and superseded.started_at is None
    assert superseded.after_callbacks_succeeded_count is None and superseded.steps == ()
    assert (await first.describe()).status == "performing"

    done_first, done_third = await first.result(), await third.result()
    assert (done_first.status, done_third.status) == ("succeeded", "succeeded")
    assert done_third.started_at >= done_first.completed_at
    reloaded = stepped_env.reload(car)
    assert (reloaded.location, reloaded.honks) == ("Berlin", 2)


@pytest.mark.time_skipping
async def test_nested_action_superseded_by_a_root_hands_over_its_parent_step(stepped_env):
    """S4.2: the waiting step lists both and concludes when the root successor ends."""
    Car = car_class()
    _declare(Car)
    rush = Car.stepped_action("rush")

    @rush.step
    def _(car, step, other, location):
        step.on(other, "visit", location)

    car, other = stepped_env.create(Car, id=1), stepped_env.create(Car, id=2)
    blocker = await stepped.start(other, "visit", "Bratislava")
    await until(blocker, performing)
    parent = await stepped.start(car, "rush", other, "Vienna")
    state = await until(parent, lambda s: s.steps and s.steps[0].actions)
    (child_id,) = state.steps[0].actions
    await until(stepped.action_handle(child_id), joined)

    successor = await stepped.start(other, "visit", "Prague")

    child = await stepped.action_handle(child_id).result()
    assert (child.status, child.resolved_by, child.root) == ("superseded", successor.id, False)
    waiting = await until(parent, lambda s: successor.id in s.steps[0].actions)
    assert waiting.steps[0].actions == (child_id, successor.id)
    assert waiting.steps[0].pending_actions_count == 1

    done = await parent.result()
    assert done.status == "succeeded"
    assert (await successor.result()).status == "succeeded"
    assert done.steps[0].pending_actions_count == 0
    assert stepped_env.reload(other).location == "Prague"


@pytest.mark.time_skipping
async def test_root_superseded_by_a_nested_action(stepped_env):
    """S4.2: a nested candidate supersedes a pending root; the root's result names it."""
    Car = car_class()
    _declare(Car)
    rush = Car.stepped_action("rush")

    @rush.step
    def _(car, step, other):
        step.on(other, "visit", "Vienna")

    car, other = stepped_env.create(Car, id=1), stepped_env.create(Car, id=2)
    blocker = await stepped.start(other, "visit", "Bratislava")
    await until(blocker, performing)
    pending_root = await stepped.start(other, "visit", "Paris")
    await until(pending_root, joined)

    parent = await stepped.start(car, "rush", other)
    superseded = await pending_root.result()
    child_id = (await parent.describe()).steps[0].actions[0]
    assert (superseded.status, superseded.resolved_by) == ("superseded", child_id)

    assert (await parent.result()).status == "succeeded"
    assert stepped_env.reload(other).location == "Vienna"


@pytest.mark.time_skipping
async def test_three_dependencies_superseded_by_one_successor_each_conclude(stepped_env):
    """S4.2: a step whose three children end superseded by one successor completes
    when it finishes — one conclusion per dependency, never a hang (the gem hangs)."""
    Car = car_class()
    _declare(Car)
    convoy = Car.stepped_action("convoy")

    @convoy.step
    def _(car, step, other):
        for place in ("Linz", "Graz", "Vienna"):
            step.on(other, "visit", place)

    car, other = stepped_env.create(Car, id=1), stepped_env.create(Car, id=2)
    blocker = await stepped.start(other, "visit", "Bratislava")
    await until(blocker, performing)

    result = await _after_children_joined(await stepped.start(car, "convoy", other), 3)

    assert result.status == "succeeded"
    step = result.steps[0]
    assert len(step.actions) == 3 and step.pending_actions_count == 0
    children = {i: await stepped.action_handle(i).describe() for i in step.actions}
    statuses = sorted(c.status for c in children.values())
    assert statuses == ["succeeded", "superseded", "superseded"]
    (winner,) = [i for i, c in children.items() if c.status == "succeeded"]
    for state in children.values():  # every superseded one leads to the winner
        current = state
        while current.status == "superseded":
            current = children[current.resolved_by]
        assert current.id == winner
    # children start concurrently, so which one joins last (and wins) is not fixed
    assert stepped_env.reload(other).location == children[winner].arguments[0]


@pytest.mark.time_skipping
async def test_successor_failure_fails_every_inherited_dependency(stepped_env):
    """S4.2, S3.14: dependents moved to a failing successor conclude unsuccessfully."""
    Car = car_class()
    _declare(Car)
    convoy = Car.stepped_action("convoy")

    @convoy.step
    def _(car, step, other):
        step.on(other, "visit", "Linz")
        step.on(other, "visit", "Graz")

    car, other = stepped_env.create(Car, id=1), stepped_env.create(Car, id=2)
    blocker = await stepped.start(other, "visit", "Bratislava")
    await until(blocker, performing)
    parent = await stepped.start(car, "convoy", other)
    state = await until(parent, lambda s: s.steps and len(s.steps[0].actions) == 2)
    for child_id in state.steps[0].actions:
        await until(stepped.action_handle(child_id), lambda s: joined(s) or s.final)

    failing = await stepped.start(other, "visit", "nowhere")

    assert (await failing.result()).status == "failed"
    result = await parent.result()
    assert result.status == "failed"
    assert result.steps[0].status == "failed"
    assert result.steps[0].unsuccessful_actions_count == 2
    assert result.steps[0].actions[-1] == failing.id
