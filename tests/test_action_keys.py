"""S3.3, S2.6: concurrency_key, checksum_key and checksum of an action.

Both keys default to the tenancy key; a blank result (None, "", []) means the
default; a list is joined with "/"; anything else is str()-ed. The checksum is
`stepped.checksum(fn(...))` when a checksum function is defined, else None.
Keys are computed from the arguments as `before` left them.
"""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import stepped_temporal as stepped
from tests.support import car_class


def _returning(value):
    return lambda car: value


async def test_keys_default_to_the_tenancy_key_and_checksum_to_none(stepped_env):
    """S1.3, S3.3: without key functions both keys are the tenancy key; no checksum."""
    Car = car_class()
    Car.stepped_action("park").step(lambda car, step: car.honk())
    car = stepped_env.create(Car, id=7)

    declared = await stepped.run(car, "park")
    undeclared = await stepped.run(car, "drive", 3)

    assert declared.status == undeclared.status == "succeeded"
    assert declared.concurrency_key == declared.checksum_key == "Car/7/park"
    assert undeclared.concurrency_key == undeclared.checksum_key == "Car/7/drive"
    assert declared.checksum is None and undeclared.checksum is None


async def test_blank_keys_mean_the_default(stepped_env):
    """S3.3: a key function returning None, "" or [] leaves the tenancy key."""
    Car = car_class()
    car = stepped_env.create(Car, id=1)

    for blank in (None, "", []):
        definition = Car.stepped_action("drive_one_way_street")
        definition.concurrency_key(_returning(blank))
        definition.checksum_key(_returning(blank))
        definition.step(lambda car, step: car.honk())

        result = await stepped.run(car, "drive_one_way_street")

        assert result.status == "succeeded", blank
        assert result.concurrency_key == "Car/1/drive_one_way_street", blank
        assert result.checksum_key == "Car/1/drive_one_way_street", blank
    assert stepped_env.reload(car).honks == 3


async def test_a_list_key_is_joined_with_slashes(stepped_env):
    """S3.3: key functions get (actor, *arguments); a list result is joined with "/"."""
    Car = car_class()
    definition = Car.stepped_action("tour")

    @definition.concurrency_key
    def _(car, city, days):
        return ["Car", city, days]

    @definition.checksum_key
    def _(car, city, days):
        return [type(car).__name__, car.id, "tour"]

    definition.step(lambda car, step, city, days: car.change_location(city))
    car = stepped_env.create(Car, id=4)

    result = await stepped.run(car, "tour", "Oslo", 3)

    assert result.status == "succeeded"
    assert result.concurrency_key == "Car/Oslo/3"
    assert result.checksum_key == "Car/4/tour"
    assert stepped_env.reload(car).location == "Oslo"


async def test_other_key_values_are_str_ed(stepped_env):
    """S3.3: a key that is neither blank nor a list is str()-ed."""

    class Garage:
        def __str__(self) -> str:
            return "garage-north"

    Car = car_class()
    definition = Car.stepped_action("service")
    definition.concurrency_key(_returning(42))
    definition.checksum_key(_returning(Garage()))
    definition.step(lambda car, step: car.honk())
    car = stepped_env.create(Car, id=1)

    result = await stepped.run(car, "service")

    assert result.status == "succeeded"
    assert result.concurrency_key == "42"
    assert result.checksum_key == "garage-north"


async def test_checksum_is_the_digest_of_the_checksum_function(stepped_env):
    """S3.3, S5.1: checksum = stepped.checksum(fn(actor, *arguments)); None gives None."""
    Car = car_class()
    listed = Car.stepped_action("listed")
    listed.checksum(lambda car, first, second: [first, second])
    listed.step(lambda car, step, first, second: car.honk())
    numbered = Car.stepped_action("numbered")
    numbered.checksum(lambda car: 25)
    numbered.step(lambda car, step: car.honk())
    nothing = Car.stepped_action("nothing")
    nothing.checksum(_returning(None))
    nothing.step(lambda car, step: car.honk())
    car = stepped_env.create(Car, id=1)

    listed_result = await stepped.run(car, "listed", "a", "b")
    numbered_result = await stepped.run(car, "numbered")
    nothing_result = await stepped.run(car, "nothing")

    assert listed_result.checksum == stepped.checksum(["a", "b"])
    assert listed_result.checksum == (
        "0473ef2dc0d324ab659d3580c1134e9d812035905c4781fdd6d529b0c6860e13"
    )
    assert numbered_result.checksum == (
        "b7a56873cd771f2c446d369b649430b65a756ba278ff97ec81bb6f55b2e73569"
    )
    assert nothing_result.checksum is None
    assert listed_result.checksum_key == "Car/1/listed"
    assert stepped_env.reload(car).honks == 3


async def test_keys_and_checksum_see_the_arguments_before_changed(stepped_env):
    """S3.2, S3.3: keys and checksum are computed from the arguments as before left them."""
    Car = car_class()
    multiplied = Car.stepped_action("multiplied_drive")
    seen = []

    @multiplied.before
    def _(car, action, distance):
        action.arguments = [distance * 2]

    @multiplied.concurrency_key
    def _(car, distance):
        seen.append(("concurrency_key", distance))
        return ["Car", "distance", distance]

    @multiplied.checksum_key
    def _(car, distance):
        seen.append(("checksum_key", distance))
        return f"drive-{distance}"

    @multiplied.checksum
    def _(car, distance):
        seen.append(("checksum", distance))
        return distance

    multiplied.step(lambda car, step, distance: step.do("drive", distance))
    car = stepped_env.create(Car, id=1)

    result = await stepped.run(car, "multiplied_drive", 5)

    assert result.status == "succeeded"
    assert result.arguments == [10]
    assert result.concurrency_key == "Car/distance/10"
    assert result.checksum_key == "drive-10"
    assert result.checksum == stepped.checksum(10)
    assert sorted(seen) == [("checksum", 10), ("checksum_key", 10), ("concurrency_key", 10)]
    assert stepped_env.reload(car).mileage == 10


async def test_keys_may_name_an_actor_method(stepped_env):
    """S2.6, S3.3: a method name is called on the actor with no arguments."""

    class Base(DeclarativeBase):
        pass

    class Truck(stepped.Actor, Base):
        __tablename__ = "trucks"
        id: Mapped[int] = mapped_column(primary_key=True)
        depot: Mapped[str] = mapped_column(default="north")
        loads: Mapped[int] = mapped_column(default=0)

        def depot_lane(self):
            return ["depot", self.depot]

        def load_marker(self):
            return f"loads-{self.loads}"

        def load(self, amount):
            self.loads += amount

    definition = Truck.stepped_action("load")
    definition.concurrency_key("depot_lane")
    definition.checksum_key("depot_lane")
    definition.checksum("load_marker")
    truck = stepped_env.create(Truck, id=3)

    result = await stepped.run(truck, "load", 2)

    assert result.status == "succeeded"
    assert result.concurrency_key == result.checksum_key == "depot/north"
    assert result.checksum == stepped.checksum("loads-0")
    assert stepped_env.reload(truck).loads == 2
