"""S4.8: one step's children join their lanes in the order of the calls — also
past a batch of child starts, with keys interleaved, and when a `before` hook
(which may change a child's key) stands between them; the step lists its children
in call order. `keys.join_order` is the rule; the workflow follows it."""

from __future__ import annotations

import itertools

import stepped_temporal as stepped
from stepped_temporal.keys import join_order
from tests.support import car_class, performing, until


def test_join_order_waits_only_where_keys_meet():
    assert join_order(["a", "b", "c"]) is None  # a fan-out over keys: no waiting
    assert join_order(["a", "a", "a"]) == [[], [0], [1]]
    assert join_order(["a", "b", "a", "b"]) == [[], [], [0], [1]]
    # an unknown key waits for everything before it, and everything after waits for it
    assert join_order(["a", "b", None, "a", "c"]) == [[], [], [0, 1], [2], [2]]
    assert join_order([None, None]) == [[], [0]]


def _garage(Car, *, before_on=()):
    block = Car.stepped_action("block", outbound=True)  # one per lane, by car
    block.concurrency_key(lambda car: "garage" if car.id == 1 else "yard")
    block.step(lambda car, step: None)
    for name in ("visit", "inspect"):
        definition = Car.stepped_action(name)
        definition.concurrency_key(lambda car, label: "garage" if label[0] != "x" else "yard")
        definition.step(lambda car, step, label: car.change_location(label))
        if name in before_on:
            definition.before(lambda car, action, label: None)


async def _run_tour(env, car, labels):
    """Block "garage" and "yard", then one step asks for a child per label;
    returns the children's results in call order, once the blockers completed."""
    yard = env.create(type(car), id=2)
    for blocked in (car, yard):
        await until(await stepped.start(blocked, "block"), performing)
    tour = await stepped.start(car, "tour", labels)
    state = await until(
        tour, lambda s: s.steps and len(s.steps[0].actions) == len(labels), seconds=60
    )
    # the last call joins last: once it has its keys, every earlier one has joined
    last = stepped.action_handle(state.steps[0].actions[-1])
    await until(last, lambda s: s.concurrency_key is not None, seconds=60)
    assert await stepped.complete(car, "block") is True
    assert await stepped.complete(yard, "block") is True
    assert (await tour.result()).status == "succeeded"
    children = [stepped.action_handle(a) for a in state.steps[0].actions]
    return [await c.result() for c in children]


async def test_sixty_calls_on_one_busy_key_leave_the_last(stepped_env):
    """Past the 50-a-task batch of child starts, the 60th call still wins."""
    Car = car_class()
    _garage(Car)
    tour = Car.stepped_action("tour")
    tour.step(lambda car, step, labels: [step.do("visit", label) for label in labels])
    car = stepped_env.create(Car, id=1)
    labels = [f"v{n:02d}" for n in range(60)]

    results = await _run_tour(stepped_env, car, labels)

    assert [r.arguments[0] for r in results] == labels  # listed in call order
    assert [r.status for r in results] == ["superseded"] * 59 + ["succeeded"]
    assert all(r.resolved_by == n.id for r, n in itertools.pairwise(results))
    assert stepped_env.reload(car).location == "v59"


async def test_interleaved_keys_and_a_before_hook_keep_call_order(stepped_env):
    """Children on "garage" and "yard" interleaved, one of them behind a `before`
    hook (its key unknown in advance): on each key the last call wins."""
    Car = car_class()
    _garage(Car, before_on=("inspect",))
    tour = Car.stepped_action("tour")

    @tour.step
    def _(car, step, labels):
        for label in labels:
            step.do("inspect" if label.startswith("i") else "visit", label)

    car = stepped_env.create(Car, id=1)
    labels = ["g1", "x1", "i-g2", "x2", "g3", "x3"]  # x… go to "yard", the rest "garage"

    results = await _run_tour(stepped_env, car, labels)

    by_label = {r.arguments[0]: r.status for r in results}
    assert by_label == {
        "g1": "superseded",
        "i-g2": "superseded",
        "g3": "succeeded",  # the last call on the busy "garage"
        "x1": "superseded",
        "x2": "superseded",
        "x3": "succeeded",  # the last call on the busy "yard"
    }
