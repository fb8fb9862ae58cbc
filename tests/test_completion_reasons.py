"""S9.6: `stepped.complete(actor, name, status, reason=…)` — a reason given with an
unsuccessful status becomes the action's error, which the parent's failure, the
tree and the Temporal failure show; bad reasons are refused before anything is
sent. (S6.1-S6.3 themselves: test_outbound.py.)"""

from __future__ import annotations

import pytest

import stepped_temporal as stepped
from tests.support import car_class, performing, until


def _approve(Car):
    """approve: outbound, its steps done at once; a parent `release` waits on it."""
    approve = Car.stepped_action("approve", outbound=True)
    approve.step(lambda car, step: None)
    release = Car.stepped_action("release")
    release.step(lambda car, step: step.do("approve"))


async def _performing_approval(stepped_env, car):
    parent = await stepped.start(car, "release")
    state = await until(parent, lambda s: s.steps and s.steps[0].actions)
    child = stepped.action_handle(state.steps[0].actions[0])
    await until(child, lambda s: performing(s) and s.steps and s.steps[-1].status == "succeeded")
    return parent, child


@pytest.mark.parametrize("status", ["failed", "cancelled", "timed_out"])
async def test_a_reason_becomes_the_error_of_an_unsuccessful_completion(stepped_env, status):
    Car = car_class()
    _approve(Car)
    car = stepped_env.create(Car, id=1)
    parent, child = await _performing_approval(stepped_env, car)

    assert await stepped.complete(car, "approve", status, reason="rejected by ops") is True
    result = await child.result()

    assert result.status == status
    assert result.error is not None
    assert (result.error.type, result.error.message) == ("CompletedFromOutside", "rejected by ops")
    assert (await parent.result()).status == "failed"  # an unsuccessful dependency


async def test_the_actor_method_and_the_test_environment_take_a_reason(stepped_env):
    Car = car_class()
    _approve(Car)
    one, two = stepped_env.create(Car, id=1), stepped_env.create(Car, id=2)
    _, first = await _performing_approval(stepped_env, one)
    _, second = await _performing_approval(stepped_env, two)

    assert await one.complete_stepped_action("approve", "failed", reason="no budget") is True
    assert await stepped_env.complete(await second.describe(), "failed", "too late") is True

    assert (await first.result()).error.message == "no budget"  # type: ignore[union-attr]
    assert (await second.result()).error.message == "too late"  # type: ignore[union-attr]


async def test_without_a_reason_an_unsuccessful_completion_has_no_error(stepped_env):
    Car = car_class()
    _approve(Car)
    car = stepped_env.create(Car, id=1)
    _, child = await _performing_approval(stepped_env, car)
    assert await stepped.complete(car, "approve", "failed") is True
    result = await child.result()
    assert result.status == "failed" and result.error is None


@pytest.mark.parametrize(
    ("status", "reason", "culprit"),
    [
        ("succeeded", "fine", "unsuccessful status"),
        ("failed", 42, "must be a str"),
        ("failed", "x" * 5000, "5,000 characters"),
    ],
)
async def test_a_bad_reason_is_refused_before_anything_is_sent(
    stepped_env, status, reason, culprit
):
    Car = car_class()
    _approve(Car)
    car = stepped_env.create(Car, id=1)
    _, child = await _performing_approval(stepped_env, car)

    with pytest.raises(ValueError, match=culprit) as refused:
        await stepped.complete(car, "approve", status, reason=reason)
    assert "'approve'" in str(refused.value)
    assert (await child.describe()).status == "performing"  # nothing reached it
    assert await stepped.complete(car, "approve") is True
