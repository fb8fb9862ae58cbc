"""S3.6, S3.7, S3.11, S3.12: steps run in order, dependencies start after the body."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

import stepped_temporal as stepped
from tests.support import car_class


async def test_undeclared_public_method_runs_as_one_step(stepped_env):
    """S2.2, S2.3, S1.4: a public method runs as a generated step; its change persists."""
    Car = car_class()
    car = stepped_env.create(Car, id=1)

    result = await stepped.run(car, "drive", 4)

    assert result.status == stepped.Status.SUCCEEDED
    assert result.root and result.current_step_index == 0 and len(result.steps) == 1
    assert result.checksum is None
    assert result.checksum_key == result.concurrency_key == "Car/1/drive"
    assert result.started_at is not None and result.completed_at is not None
    assert stepped_env.reload(car).mileage == 4


@pytest.mark.time_skipping
async def test_steps_fan_out_and_a_five_hour_wait_is_fast(stepped_env):
    """S3.6, S3.11, S3.12, S10.2: children and a long wait; None actors are skipped."""
    Car = car_class()
    park = Car.stepped_action("park")

    @park.step
    def _(car, step, miles):
        car.honk()

    @park.step
    def _(car, step, miles):
        step.do("honk")
        step.wait(timedelta(hours=5))
        step.on([car, None], "drive", miles)

    car = stepped_env.create(Car, id=1)
    began = time.monotonic()
    result = await stepped.run(car, "park", 10)
    elapsed = time.monotonic() - began

    assert result.status == "succeeded"
    assert [s.status for s in result.steps] == ["succeeded", "succeeded"]
    second = result.steps[1]
    assert len(second.actions) == 2 and second.waits == (18000.0,)
    assert second.pending_actions_count == 0
    reloaded = stepped_env.reload(car)
    assert (reloaded.honks, reloaded.mileage) == (2, 10)
    assert elapsed < 5, f"a 5-hour wait took {elapsed:.1f}s of wall time"
