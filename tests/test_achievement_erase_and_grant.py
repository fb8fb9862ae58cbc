"""S3.5: performing erases the achievement under the checksum_key (also without
a checksum); S3.9: a clean success grants it, nothing else does; S5.3: a custom
checksum_key shares achievements across actors — on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

import stepped_temporal as stepped
from tests.support import achievement, car_class, grant


def _visit(Car, *, callback_fails: bool = False, step_fails: bool = False):
    visit = Car.stepped_action("visit")
    visit.checksum(lambda car, location: location)

    @visit.step
    def _(car, step, location):
        if step_fails:
            raise ValueError("road closed")
        car.change_location(location)

    if callback_fails:

        @visit.succeeded
        def _(car, action, location):
            raise RuntimeError("photo upload failed")

    return visit


async def test_clean_success_grants_the_checksum(stepped_db_env):
    """S3.9: succeeded, no callback failed, checksum set → achievement = checksum."""
    Car = car_class()
    _visit(Car)
    car = stepped_db_env.create(Car, id=1)

    await stepped.run(car, "visit", "Oslo")
    assert achievement(stepped_db_env, "Car/1/visit") == stepped.checksum("Oslo")
    again = await stepped.run(car, "visit", "Oslo")
    assert again.steps == ()  # skipped: achieved

    await stepped.run(car, "visit", "Rome")
    assert achievement(stepped_db_env, "Car/1/visit") == stepped.checksum("Rome")


async def test_failed_callback_grants_nothing(stepped_db_env):
    """S3.9: a failing after-callback keeps the status but grants no achievement,
    and the achievement erased on start stays erased."""
    Car = car_class()
    _visit(Car, callback_fails=True)
    car = stepped_db_env.create(Car, id=1)
    grant(stepped_db_env, "Car/1/visit", stepped.checksum("Paris"))

    result = await stepped.run(car, "visit", "Oslo")

    assert result.status == "succeeded" and result.after_callbacks_failed_count == 1
    assert achievement(stepped_db_env, "Car/1/visit") is None


@pytest.mark.parametrize("how", ["step raises", "cancelled in before"])
async def test_no_grant_for_other_statuses(stepped_db_env, how):
    """S3.9: failed or cancelled actions grant nothing."""
    Car = car_class()
    visit = _visit(Car, step_fails=how == "step raises")
    if how == "cancelled in before":
        visit.before(lambda car, action, location: action.cancel())
    car = stepped_db_env.create(Car, id=1)

    result = await stepped.run(car, "visit", "Oslo")

    assert result.status == ("failed" if how == "step raises" else "cancelled")
    assert achievement(stepped_db_env, "Car/1/visit") is None


async def test_performing_erases_even_without_a_checksum(stepped_db_env):
    """S3.5: an action without checksum function still erases what its key holds."""
    Car = car_class()
    Car.stepped_action("visit").step(lambda car, step, location: car.change_location(location))
    car = stepped_db_env.create(Car, id=1)
    grant(stepped_db_env, "Car/1/visit", stepped.checksum("Oslo"))

    result = await stepped.run(car, "visit", "Oslo")

    assert result.status == "succeeded" and result.checksum is None
    assert achievement(stepped_db_env, "Car/1/visit") is None


async def test_erase_happens_before_a_failing_step(stepped_db_env):
    """S3.5: the erase is done when performing starts, so a failing step does not
    leave the old achievement behind (its rollback does not undo the erase)."""
    Car = car_class()
    _visit(Car, step_fails=True)
    car = stepped_db_env.create(Car, id=1)
    grant(stepped_db_env, "Car/1/visit", stepped.checksum("Paris"))

    result = await stepped.run(car, "visit", "Oslo")

    assert result.status == "failed"
    assert achievement(stepped_db_env, "Car/1/visit") is None


async def test_custom_checksum_key_shares_achievements_across_actors(stepped_db_env):
    """S5.3: checksum_key ["Car", "drive"] is one achievement for every car."""
    Car = car_class()
    visit = _visit(Car)
    visit.checksum_key(lambda car, location: ["Car", "drive"])
    first, second = stepped_db_env.create(Car, id=1), stepped_db_env.create(Car, id=2)

    done = await stepped.run(first, "visit", "Oslo")
    skipped = await stepped.run(second, "visit", "Oslo")
    moved = await stepped.run(second, "visit", "Rome")

    assert done.checksum_key == skipped.checksum_key == "Car/drive"
    assert skipped.status == "succeeded" and skipped.steps == ()
    assert stepped_db_env.reload(second).location == "Rome" and len(moved.steps) == 1
    assert achievement(stepped_db_env, "Car/drive") == stepped.checksum("Rome")
