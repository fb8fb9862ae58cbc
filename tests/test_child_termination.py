"""S3.14 robustness: a child that ends without concluding (terminated by an
operator) fails its parent's step instead of hanging it."""

from __future__ import annotations

from datetime import timedelta

import stepped_temporal as stepped
from tests.support import car_class, first_child, performing, until


async def test_terminated_child_fails_the_parent_step(stepped_dev_env):
    """S3.14 (dev server: the time-skipping server does not tell a parent its child
    was terminated)."""
    stepped_env = stepped_dev_env
    Car = car_class()
    nap = Car.stepped_action("nap")
    nap.step(lambda car, step: step.wait(timedelta(days=1)))
    trip = Car.stepped_action("trip")
    trip.step(lambda car, step, other: step.on(other, "nap"))

    car, other = stepped_env.create(Car, id=1), stepped_env.create(Car, id=2)
    parent = await stepped.start(car, "trip", other)
    child = await first_child(parent)
    await until(child, performing)

    await stepped_env.client.get_workflow_handle(child.id).terminate("operator stopped it")

    result = await parent.result()
    assert result.status == "failed"
    assert result.steps[0].unsuccessful_actions_count == 1
