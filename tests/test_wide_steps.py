"""S11.1 inside a step: a step too wide for one history continues as new part way, and
every run stays small — its children all run once, in call order where S4.8 asks,
its waits still wait their time, its failures still fail it, and every id is still
listed (S11.2).

The cluster's limits are declared small (`configure(server_limits=…)`, S11.5):
history 500 events and 20 pending operations, so at most 10 children are open at
once, a run continues as new past 50 events when the rest of the step would take it
past 100, and its stop (S11.4) is 330. A step of 120 children (about 520 events)
needs several runs. Both test servers serve.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import replace

import pytest

import stepped_temporal as stepped
from stepped_temporal import client as stepped_client
from tests.support import car_class
from tests.test_long_actions import runs_of

LIMITS = stepped.ServerLimits(history_events=500, pending_operations=20)
#: ... and payloads of 32 KiB: a page of children takes at most 2 KiB (about 25)
PAGED = replace(LIMITS, payload_bytes=32 * 1024)
BOTH = pytest.mark.parametrize("limits", [LIMITS, PAGED], ids=["one-page", "pages"])
WIDTH = 120
#: a run's events: it continues as new near 100, once the at most ten children
#: open then have ended (about three events each)
MOST_EVENTS = 100 + 10 * 3 + 40


def _fleet(env, Car, count: int = WIDTH):
    """A boss and `count` cars; each car's `honk` honks once."""
    Car.stepped_action("honk").step(lambda car, step: car.honk())
    boss, *cars = (env.create(Car, id=n) for n in range(count + 1))
    return boss, cars


async def _inputs(env, workflow_id: str) -> list[dict]:
    """The `resume` each run's input carried, first run first (None for the first)."""
    client, run_id, carried = env.client, None, []
    while True:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        started = history.events[0].workflow_execution_started_event_attributes
        resume = json.loads(started.input.payloads[0].data).get("resume")
        carried.append(resume)
        if resume is None:
            return carried[::-1]
        run_id = started.continued_execution_run_id


@BOTH
async def test_a_wide_step_continues_as_new_part_way_and_lists_every_child(stepped_env, limits):
    """120 children: several runs, none past about 170 events; each child ran once;
    the result counts all 120, `step_actions` lists them all, in call order, and each
    run's input carries only the children it has not started."""
    stepped.configure(server_limits=limits)
    Car = car_class()
    boss, cars = _fleet(stepped_env, Car)
    fleet = Car.stepped_action("fleet")
    fleet.step(lambda car, step, cars: step.on(cars, "honk"))
    fleet.step(lambda car, step, cars: car.drive(1))

    handle = await stepped.start(boss, "fleet", cars)
    result = await handle.result()

    assert result.status == "succeeded", result.error
    step = result.steps[0]
    assert (step.status, step.actions_count, step.pending_actions_count) == ("succeeded", 120, 0)
    assert step.unsuccessful_actions_count == 0
    assert {stepped_env.reload(car).honks for car in cars} == {1}
    assert stepped_env.reload(boss).mileage == 1
    listed = [action_id async for action_id in handle.step_actions(0)]
    assert len(set(listed)) == 120
    assert [int(action_id.split("/")[1]) for action_id in listed] == list(range(1, 121))
    assert listed[:50] == list(step.actions[:50]) and listed[-50:] == list(step.actions[-50:])
    counts = await runs_of(stepped_env, handle.id)
    print(f"runs of a 120-child step: {counts}")
    assert len(counts) >= 3 and max(counts) < MOST_EVENTS, counts
    carried = [resume.get("step") for resume in (await _inputs(stepped_env, handle.id))[1:]]
    rests = [rest for rest in carried if rest is not None]
    left = [len(rest["children"]) for rest in rests]
    assert left and max(left) < 120, left
    if limits is LIMITS:  # all the intents came at once: each run carries the rest
        assert left == sorted(left, reverse=True), left
        assert {rest["first_number"] + len(rest["children"]) for rest in rests} == {120}
    else:  # in pages of about 25: a run carries the rest of one, and where it is
        assert max(left) <= 30 and all(rest["pages_key"] for rest in rests), rests
        assert max(len(json.dumps(rest)) for rest in rests) < 4096
        first = [r["first_number"] for r in rests]
        assert first == sorted(first) and len(set(first)) == len(first), first


@BOTH
async def test_the_children_of_one_lane_join_it_in_call_order_across_runs(stepped_env, limits):
    """S4.8 across the hand-over: 60 children queue in one `"queue"` lane; they perform
    in call order, each once, whichever run started them."""
    stepped.configure(server_limits=limits)
    Car = car_class()
    order: list[int] = []
    visit = Car.stepped_action("visit", lane="queue")
    # (a key of this test's own: the lane of another test's worker may still idle)
    garage = f"garage-{uuid.uuid4().hex}"
    visit.concurrency_key(lambda car, n: garage)
    visit.step(lambda car, step, n: order.append(n))
    line = Car.stepped_action("line")
    line.step(lambda car, step: [step.do("visit", n) for n in range(60)])
    car = stepped_env.create(Car, id=1)

    handle = await stepped.start(car, "line")
    result = await handle.result()

    assert result.status == "succeeded", result.error
    assert order == list(range(60))
    assert len(await runs_of(stepped_env, handle.id)) >= 2


@BOTH
async def test_a_wait_runs_its_time_across_the_hand_over(stepped_env, limits):
    """S3.12: a step that waits 20 seconds beside its 120 children hands the wait over
    with them; the step ends when the wait has run its time, not sooner."""
    stepped.configure(server_limits=limits)
    Car = car_class()
    boss, cars = _fleet(stepped_env, Car)
    slow = Car.stepped_action("slow")
    slow.step(lambda car, step, cars: None)  # (the wide one is not the step prepare runs)

    @slow.step
    def _(car, step, cars):
        step.wait(20)
        step.on(cars, "honk")

    result = await stepped.run(boss, "slow", cars)

    assert result.status == "succeeded", result.error
    step = result.steps[1]
    assert list(step.waits) == [20] and step.actions_count == 120
    took = step.completed_at - step.started_at
    assert took.total_seconds() >= 20
    carried = [r["step"] for r in (await _inputs(stepped_env, result.id))[1:] if r.get("step")]
    assert carried and carried[0]["waits"], carried[0]  # (the first hand-over had it open)
    assert {stepped_env.reload(c).honks for c in cars} == {1}


@BOTH
async def test_failures_across_runs_fail_the_step(stepped_env, limits):
    """S3.7, S3.8: a child failing in an early run and a body that marked the step
    failed both fail it once every child concluded, counted across the runs."""
    stepped.configure(server_limits=limits)
    Car = car_class()
    boss, cars = _fleet(stepped_env, Car)

    def fussy(car, step):
        if car.id == 3:
            raise ValueError("no horn")
        car.honk()

    Car.stepped_action("fussy").step(fussy)
    Car.stepped_action("one_fails").step(lambda car, step, cars: step.on(cars, "fussy"))

    @Car.stepped_action("marked").step
    def _(car, step, cars):
        step.on(cars, "honk")
        step.status = "failed"

    failing = await stepped.run(boss, "one_fails", cars)
    marked = await stepped.run(boss, "marked", cars)

    assert failing.status == "failed"
    assert failing.steps[0].unsuccessful_actions_count == 1
    assert failing.steps[0].actions_count == 120
    assert failing.error is not None and "1 of its dependencies" in failing.error.message
    assert marked.status == "failed"
    assert marked.error is not None and "set its status to failed" in marked.error.message
    assert marked.steps[0].pending_actions_count == 0
    honks = {car.id: stepped_env.reload(car).honks for car in cars}
    assert honks.pop(3) == 1 and set(honks.values()) == {2}  # each child ran once
    for result in (failing, marked):
        assert len(await runs_of(stepped_env, result.id)) >= 3


@pytest.mark.parametrize("revision", [5], ids=["revision-5"])
async def test_inputs_of_an_older_release_never_continue_inside_a_step(
    stepped_env, monkeypatch, revision
):
    """An action started as the release before this one starts it keeps a step of 40
    children in one run."""
    stepped.configure(server_limits=LIMITS)
    monkeypatch.setattr(stepped_client, "REVISION", revision)
    Car = car_class()
    boss, cars = _fleet(stepped_env, Car, 40)
    Car.stepped_action("fleet").step(lambda car, step, cars: step.on(cars, "honk"))

    result = await stepped.run(boss, "fleet", cars)

    assert result.status == "succeeded"
    (count,) = await runs_of(stepped_env, result.id)
    assert count > 100  # (where this release would have continued as new)


async def test_a_page_no_longer_recorded_fails_its_step_naming_it(stepped_env):
    """Pages are records: one pruned before its step read it is named, not retried."""
    from temporalio.exceptions import ApplicationError
    from temporalio.testing import ActivityEnvironment

    from stepped_temporal.step_pages import PAGES_GONE, read_page
    from stepped_temporal.unit_messages import PageInput
    from stepped_temporal.wire import encode

    with pytest.raises(ApplicationError) as raised:
        await ActivityEnvironment().run(read_page, encode(PageInput("run/step/3", 2, 5)))
    assert raised.value.type == PAGES_GONE and raised.value.non_retryable
    assert "page 2 of 5" in str(raised.value) and "run/step/3" in str(raised.value)


def test_children_split_into_pages_by_count_and_size(stepped_env):
    """At most 500 intents a page and a sixteenth of the payload limit; join order
    numbered from each page's first child, earlier pages below 0."""
    from stepped_temporal.messages import ChildIntent
    from stepped_temporal.step_pages import split

    stepped.configure(server_limits=stepped.ServerLimits())
    small = [ChildIntent("Car", n, "honk", []) for n in range(1_201)]
    assert [len(p.children) for p in split(small, None)] == [500, 500, 201]
    chain = [[n - 1] if n else [] for n in range(1_201)]
    pages = split(small, chain)
    assert pages[1].join_after[0] == [-1] and pages[1].join_after[1] == [0]
    stepped.configure(server_limits=stepped.ServerLimits(payload_bytes=16 * 1024))
    large = [ChildIntent("Car", n, "honk", ["x" * 300]) for n in range(10)]
    sizes = [len(p.children) for p in split(large, None)]
    assert sum(sizes) == 10 and max(sizes) <= 3, sizes
    assert [c.actor_id for p in split(large, None) for c in p.children] == list(range(10))
