"""S3.13, S3.14: trees of actions over several actors.

Actions started from outside are roots; actions started by a step are not and
name their parent. A child's failure fails its parent step, its parent action,
and so on up to the root.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, object_session

import stepped_temporal as stepped


def _fleet_classes():
    """A Fleet of Cars: tour (Fleet) → trip (each Car) → drive and inspect (each Car)."""

    class Base(DeclarativeBase):
        pass

    class Fleet(stepped.Actor, Base):
        __tablename__ = "fleets"
        id: Mapped[int] = mapped_column(primary_key=True)
        tours: Mapped[int] = mapped_column(default=0)

    class Car(stepped.Actor, Base):
        __tablename__ = "cars"
        id: Mapped[int] = mapped_column(primary_key=True)
        fleet_id: Mapped[int | None] = mapped_column(sa.ForeignKey("fleets.id"), default=None)
        mileage: Mapped[int] = mapped_column(default=0)
        inspections: Mapped[int] = mapped_column(default=0)
        broken: Mapped[bool] = mapped_column(default=False)

        def drive(self, miles: int) -> None:
            self.mileage += miles

        def inspect(self) -> None:
            if self.broken:
                raise ValueError(f"car {self.id} failed inspection")
            self.inspections += 1

    tour = Fleet.stepped_action("tour")

    @tour.step
    def _(fleet, step, miles):
        session = object_session(fleet)
        cars = session.scalars(sa.select(Car).where(Car.fleet_id == fleet.id).order_by(Car.id))
        step.on(cars, "trip", miles)

    @tour.step
    def _(fleet, step, miles):
        fleet.tours += 1

    trip = Car.stepped_action("trip")

    @trip.step
    def _(car, step, miles):
        step.do("drive", miles)
        step.do("inspect")

    return Fleet, Car


async def _describe(action_ids) -> list:
    return [await stepped.action_handle(i).describe() for i in action_ids]


async def test_a_three_level_tree_over_several_actors_succeeds(stepped_env):
    """S3.13, S3.11, S3.7: fleet → three cars → two actions each; all effects, roots, parents."""
    Fleet, Car = _fleet_classes()
    fleet = stepped_env.create(Fleet, id=1)
    cars = [stepped_env.create(Car, id=i, fleet_id=1) for i in (1, 2, 3)]
    outsider = stepped_env.create(Car, id=4)

    result = await stepped.run(fleet, "tour", 12)

    assert result.status == "succeeded"
    assert result.root and result.parent_id is None
    assert [s.status for s in result.steps] == ["succeeded", "succeeded"]
    fan_out = result.steps[0]
    assert len(fan_out.actions) == 3 and fan_out.pending_actions_count == 0
    trips = await _describe(fan_out.actions)
    assert sorted(t.actor_id for t in trips) == [1, 2, 3]
    grandchildren = []
    for trip in trips:
        assert (trip.actor_type, trip.name, trip.status) == ("Car", "trip", "succeeded")
        assert trip.id.startswith(f"Car/{trip.actor_id}/trip")
        assert not trip.root and trip.parent_id == result.id
        assert trip.arguments == [12]
        (step,) = trip.steps
        assert step.status == "succeeded" and len(step.actions) == 2
        for child in await _describe(step.actions):
            assert child.status == "succeeded"
            assert not child.root and child.parent_id == trip.id
            assert child.actor_id == trip.actor_id
            grandchildren.append((child.actor_id, child.name))
    assert sorted(grandchildren) == [
        (car_id, name) for car_id in (1, 2, 3) for name in ("drive", "inspect")
    ]
    assert len(await stepped_env.actions()) == 1 + 3 + 6
    for car in cars:
        reloaded = stepped_env.reload(car)
        assert (reloaded.mileage, reloaded.inspections) == (12, 1)
    reloaded_outsider = stepped_env.reload(outsider)
    assert (reloaded_outsider.mileage, reloaded_outsider.inspections) == (0, 0)
    assert stepped_env.reload(fleet).tours == 1


async def test_a_failing_grandchild_fails_every_level_up_to_the_root(stepped_env):
    """S3.14, S3.8: a failed grandchild fails its parent step, its parent and the root."""
    Fleet, Car = _fleet_classes()
    fleet = stepped_env.create(Fleet, id=1)
    cars = [stepped_env.create(Car, id=i, fleet_id=1, broken=i == 2) for i in (1, 2, 3)]

    result = await stepped.run(fleet, "tour", 5)

    assert result.status == "failed"
    assert result.root and result.error is not None
    assert len(result.steps) == 1  # the second step never ran
    fan_out = result.steps[0]
    assert fan_out.status == "failed"
    assert (fan_out.pending_actions_count, fan_out.unsuccessful_actions_count) == (0, 1)
    trips = {t.actor_id: t for t in await _describe(fan_out.actions)}
    assert {i: t.status for i, t in trips.items()} == {
        1: "succeeded",
        2: "failed",
        3: "succeeded",
    }
    broken_trip = trips[2]
    assert not broken_trip.root and broken_trip.parent_id == result.id
    (step,) = broken_trip.steps
    assert step.status == "failed"
    assert (step.pending_actions_count, step.unsuccessful_actions_count) == (0, 1)
    grandchildren = {c.name: c for c in await _describe(step.actions)}
    assert grandchildren["drive"].status == "succeeded"
    inspect = grandchildren["inspect"]
    assert inspect.status == "failed" and inspect.parent_id == broken_trip.id
    assert inspect.error is not None and inspect.error.type == "ValueError"
    assert "car 2 failed inspection" in inspect.error.message
    for trip_id in (1, 3):
        assert all(s.status == "succeeded" for s in trips[trip_id].steps)
    assert stepped_env.reload(fleet).tours == 0
    reloaded = [stepped_env.reload(car) for car in cars]
    assert [(car.mileage, car.inspections) for car in reloaded] == [(5, 1), (5, 0), (5, 1)]
