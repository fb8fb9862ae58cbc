"""S4.6: cancelling a performing action just as its step's activity completes.

The cancel signal and the activity's result can reach the workflow in the same
workflow task; the SDK then hands the work the activity's result and the cancel
is spent. Before `StepRuns._stop_if_interrupted` the work went on regardless: an
outbound action waited for a completion forever (its `result()` never came; on
the time-skipping server its workflow timed out ten years later), and a
two-step action ran its second step to its end while it ended as cancelled. Each round
releases the step right after the cancel is sent, so the race is hit in many
rounds; every round must end cancelled, promptly, with no later step finished.
"""

from __future__ import annotations

import asyncio
import threading

import stepped_temporal as stepped
from tests.support import car_class, until

ROUNDS = 8


def _gated(definition, gates: dict[int, threading.Event], running: dict[int, threading.Event]):
    """A first step that signals it runs, then holds until its car's gate opens."""

    @definition.step
    def _(car, step):
        running[car.id].set()
        assert gates[car.id].wait(30), "the test never opened the gate"


async def _cancel_as_the_step_ends(handle, car_id, gates, running) -> None:
    await asyncio.to_thread(running[car_id].wait, 30)
    assert await handle.cancel() is True
    gates[car_id].set()


async def test_cancelling_an_outbound_action_as_its_step_ends(stepped_env):
    Car = car_class()
    gates = {n: threading.Event() for n in range(1, ROUNDS + 1)}
    running = {n: threading.Event() for n in range(1, ROUNDS + 1)}
    paint = Car.stepped_action("paint", outbound=True)
    _gated(paint, gates, running)
    paint.cancelled(lambda car, action: car.honk())
    cars = [stepped_env.create(Car, id=n) for n in range(1, ROUNDS + 1)]

    for car in cars:
        handle = await stepped.start(car, "paint")
        await _cancel_as_the_step_ends(handle, car.id, gates, running)
        result = await asyncio.wait_for(handle.result(), 30)
        assert result.status == "cancelled", car.id
        assert stepped_env.reload(car).honks == 1, car.id  # the cancelled callback ran once
        assert await stepped.complete(car, "paint") is False  # nothing left performing


async def test_cancelling_between_two_steps_runs_no_second_step(stepped_env):
    Car = car_class()
    gates = {n: threading.Event() for n in range(1, ROUNDS + 1)}
    running = {n: threading.Event() for n in range(1, ROUNDS + 1)}
    service = Car.stepped_action("service")
    _gated(service, gates, running)
    service.step(lambda car, step: car.honk())
    cars = [stepped_env.create(Car, id=n) for n in range(1, ROUNDS + 1)]

    for car in cars:
        handle = await stepped.start(car, "service")
        await _cancel_as_the_step_ends(handle, car.id, gates, running)
        result = await asyncio.wait_for(handle.result(), 30)
        assert result.status == "cancelled", car.id
        # a cancel that came after step 0's end abandons step 1 mid-run (its effect
        # may land: S4.6 cannot undo a running step), but never does a cancelled
        # action carry on to finish a later step
        assert [s.status for s in result.steps[1:]] in ([], ["performing"]), result.steps
    # and the lane of each car moved on: a new service performs at once
    gates[1].clear()
    running[1].clear()
    again = await stepped.start(cars[0], "service")
    await until(again, lambda s: s.status == "performing")
    gates[1].set()
    assert (await asyncio.wait_for(again.result(), 30)).status == "succeeded"


async def test_cancelling_an_outbound_action_as_soon_as_it_performs(stepped_env):
    """The same race as the step ends on its own: cancel the moment the action shows
    as performing (its quick step still running in most rounds)."""
    Car = car_class()
    paint = Car.stepped_action("paint", outbound=True)
    paint.step(lambda car, step: car.honk())
    cars = [stepped_env.create(Car, id=n) for n in range(1, 2 * ROUNDS + 1)]

    for car in cars:
        handle = await stepped.start(car, "paint")
        await until(handle, lambda s: s.status == "performing")
        assert await handle.cancel() is True
        result = await asyncio.wait_for(handle.result(), 30)
        assert result.status == "cancelled", car.id
