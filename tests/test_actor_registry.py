"""S1.1, S1.2, S1.3, S1.6: actor classes, their type names, identity and loading."""

from __future__ import annotations

import asyncio
import time
from typing import ClassVar

import pytest
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, object_session
from temporalio.client import WorkflowFailureError

import stepped_temporal as stepped
from stepped_temporal import registry
from stepped_temporal.config import settings
from stepped_temporal.failures import action_data
from stepped_temporal.messages import ActionData, ActionInput
from tests.support import activity_attempts, car_class


@pytest.fixture
def saved_registry():
    """Forget the actor classes a sync test registers (no stepped_env to do it)."""
    saved = dict(registry._registry)
    yield
    registry._registry.clear()
    registry._registry.update(saved)


def _lorry_class(step_name: str) -> type:
    """A Lorry whose `haul` action runs `step_name`; same module and qualname every call."""

    class Base(DeclarativeBase):
        pass

    class Lorry(stepped.Actor, Base):
        __tablename__ = "lorries"
        id: Mapped[int] = mapped_column(primary_key=True)
        loads: Mapped[int] = mapped_column(default=0)
        trips: Mapped[int] = mapped_column(default=0)

        def load(self) -> None:
            self.loads += 1

        def travel(self) -> None:
            self.trips += 1

    haul = Lorry.stepped_action("haul")
    haul.step(lambda lorry, step: getattr(lorry, step_name)())
    return Lorry


async def test_mapped_actor_is_loaded_by_primary_key(stepped_env):
    """S1.1, S1.4: a SQLAlchemy actor is loaded fresh by primary key in the step."""
    Car = car_class()
    seen = []
    inspect_action = Car.stepped_action("inspect")

    @inspect_action.step
    def _(car, step):
        seen.append((type(car), car.id, car.mileage))
        car.honk()

    stepped_env.create(Car, id=1, mileage=10)
    car = stepped_env.create(Car, id=2, mileage=20)
    car.mileage = 999  # not saved: the step must see the database, not this object

    result = await stepped.run(car, "inspect")

    assert result.status == "succeeded"
    assert (result.actor_type, result.actor_id) == ("Car", 2)
    assert seen == [(Car, 2, 20)]
    assert stepped_env.reload(car).honks == 1


async def test_composite_and_string_primary_keys(stepped_env):
    """S1.1, S1.3: actors keyed by a str or by several columns are loaded by that key."""

    class Base(DeclarativeBase):
        pass

    class Seat(stepped.Actor, Base):
        __tablename__ = "seats"
        row: Mapped[int] = mapped_column(primary_key=True)
        number: Mapped[int] = mapped_column(primary_key=True)
        taken: Mapped[bool] = mapped_column(default=False)

        def reserve(self) -> None:
            self.taken = True

    class Plate(stepped.Actor, Base):
        __tablename__ = "plates"
        id: Mapped[str] = mapped_column(primary_key=True)
        stamps: Mapped[int] = mapped_column(default=0)

        def stamp(self) -> None:
            self.stamps += 1

    neighbour = stepped_env.create(Seat, row=3, number=5)
    seat = stepped_env.create(Seat, row=3, number=4)
    plate = stepped_env.create(Plate, id="AB-123")

    reserving = await stepped.start(seat, "reserve")
    stamping = await stepped.start(plate, "stamp")

    assert reserving.id.startswith("Seat/3/4/reserve/")
    assert stamping.id.startswith("Plate/AB-123/stamp/")
    assert (await reserving.result()).status == "succeeded"
    assert (await stamping.result()).status == "succeeded"
    assert stepped_env.reload(seat).taken is True
    assert stepped_env.reload(neighbour).taken is False
    assert stepped_env.reload(plate).stamps == 1


async def test_plain_class_actor_is_found_with_stepped_find(stepped_env):
    """S1.1: a plain class actor is loaded with stepped_find(cls, id) and names itself by id."""

    class Robot(stepped.Actor):
        fleet: ClassVar[dict[int, Robot]] = {}

        def __init__(self, id: int) -> None:
            self.id = id
            self.beeps = 0

        @classmethod
        def stepped_find(cls, id):
            return cls.fleet.get(id)

        def beep(self, times: int) -> None:
            self.beeps += times

    stored = Robot(5)
    Robot.fleet[5] = stored
    caller = Robot(5)  # another object with the same id: the action loads the stored one

    handle = await stepped.start(caller, "beep", 3)
    result = await handle.result()

    assert handle.id.startswith("Robot/5/beep/")
    assert result.status == "succeeded"
    assert (result.actor_type, result.actor_id) == ("Robot", 5)
    assert (stored.beeps, caller.beeps) == (3, 0)


async def test_stepped_name_sets_the_type_name(stepped_env):
    """S1.1, S1.3: `__stepped_name__` replaces the class name in type name and ids."""

    class Base(DeclarativeBase):
        pass

    class Automobile(stepped.Actor, Base):
        __tablename__ = "automobiles"
        __stepped_name__ = "Vehicle"
        id: Mapped[int] = mapped_column(primary_key=True)
        honks: Mapped[int] = mapped_column(default=0)

        def honk(self) -> None:
            self.honks += 1

    assert registry.actor_class("Vehicle") is Automobile
    assert "Automobile" not in registry._registry
    car = stepped_env.create(Automobile, id=3)

    handle = await stepped.start(car, "honk")
    result = await handle.result()

    assert handle.id.startswith("Vehicle/3/honk/")
    assert result.actor_type == "Vehicle" and result.status == "succeeded"
    assert stepped_env.reload(car).honks == 1


def test_type_name_defaults_to_the_class_name(saved_registry):
    """S1.1: without `__stepped_name__`, the type name is `__name__`."""

    class Gadget(stepped.Actor):
        pass

    class Widget(stepped.Actor):
        __stepped_name__ = "test_actor_registry.Widget"

    assert registry.actor_type_name(Gadget) == "Gadget"
    assert registry.actor_class("Gadget") is Gadget
    assert registry.actor_type_name(Widget) == "test_actor_registry.Widget"
    assert registry.actor_class("test_actor_registry.Widget") is Widget


def test_a_taken_type_name_raises(saved_registry):
    """S1.1: another class (other module or qualname) under a taken name raises."""

    class First(stepped.Actor):
        __stepped_name__ = "test_actor_registry.Taken"

    with pytest.raises(stepped.DefinitionError, match=r"test_actor_registry\.Taken") as info:

        class Second(stepped.Actor):
            __stepped_name__ = "test_actor_registry.Taken"

    assert "Second" in str(info.value) and "First" in str(info.value)
    assert registry.actor_class("test_actor_registry.Taken") is First


def test_a_taken_name_raises_for_mapped_models_too(saved_registry):
    """S1.1: two applications' `Car` models clash unless one sets `__stepped_name__`."""
    Car = car_class()

    class Base(DeclarativeBase):
        pass

    with pytest.raises(stepped.DefinitionError, match="Car"):

        class Car(stepped.Actor, Base):
            __tablename__ = "other_cars"
            id: Mapped[int] = mapped_column(primary_key=True)

    class OtherCar(stepped.Actor, Base):
        __tablename__ = "other_cars_renamed"
        __stepped_name__ = "test_actor_registry.OtherCar"
        id: Mapped[int] = mapped_column(primary_key=True)

    assert registry.actor_class("Car") is Car
    assert registry.actor_class("test_actor_registry.OtherCar") is OtherCar


async def test_same_module_and_qualname_replaces_with_its_definitions(stepped_env):
    """S1.1: rebuilding a class (same module and qualname) replaces it, definitions included."""
    Old = _lorry_class("load")
    New = _lorry_class("travel")

    assert New is not Old
    assert registry.actor_class("Lorry") is New
    assert New.stepped_definition("haul") is not Old.stepped_definition("haul")
    lorry = stepped_env.create(New, id=1)

    result = await stepped.run(lorry, "haul")

    assert result.status == "succeeded"
    reloaded = stepped_env.reload(lorry)
    assert type(reloaded) is New
    assert (reloaded.loads, reloaded.trips) == (0, 1)


async def test_unknown_actor_type_in_workflow_input_fails_clearly(stepped_env):
    """S1.2: a forged input naming an unregistered type fails; nothing is imported by name."""
    Car = car_class()
    stepped_env.create(Car, id=1)
    task_queue = settings().task_queue
    forged_names = ["Nope", f"{Car.__module__}.{Car.__qualname__}", "os.path"]

    for number, type_name in enumerate(forged_names):
        handle = await stepped_env.client.start_workflow(
            "SteppedAction",
            ActionInput(
                action_id=f"forged/{number}",
                actor_type=type_name,
                actor_id=1,
                name="drive",
                arguments=[],
                task_queue=task_queue,
            ),
            id=f"forged/{number}",
            task_queue=task_queue,
            result_type=ActionData,
        )
        with pytest.raises(WorkflowFailureError) as failed:  # S9.4
            await asyncio.wait_for(handle.result(), 15)
        data = action_data(failed.value.cause)

        assert data is not None and data.status == "failed", type_name
        assert data.error is not None and data.error.type == "UnknownActorType"
        assert repr(type_name) in data.error.message
        assert data.steps == []
        assert data.completed_at is not None


async def test_workflow_id_starts_with_the_tenancy_key(stepped_env):
    """S1.3, S9.2: the action id starts with "<TypeName>/<id>/<action name>/"."""
    Car = car_class()
    Car.stepped_action("visit").step(lambda car, step, location: car.change_location(location))
    car = stepped_env.create(Car, id=7)

    handle = await stepped.start(car, "visit", "London")
    result = await handle.result()

    assert handle.id.startswith("Car/7/visit/")
    assert handle.workflow_id == handle.id == result.id
    assert result.tenancy_key == "Car/7/visit"
    assert result.concurrency_key == result.checksum_key == "Car/7/visit"
    assert (await handle.describe()).id == handle.id


async def test_deleted_actor_fails_with_actor_not_found_at_once(stepped_env):
    """S1.6: an actor deleted before its action runs fails it with ActorNotFound, no retries."""
    Car = car_class()
    car = stepped_env.create(Car, id=4)
    with stepped_env.session() as session, session.begin():
        session.delete(session.get(Car, 4))

    began = time.monotonic()
    handle = await stepped.start(car, "drive", 5)
    result = await asyncio.wait_for(handle.result(), 15)
    elapsed = time.monotonic() - began

    assert result.status == "failed"
    assert result.error is not None and result.error.type == "ActorNotFound"
    assert "Car" in result.error.message and "4" in result.error.message
    assert result.steps == ()
    assert await activity_attempts(handle) == [1]
    assert elapsed < 10, f"failing on a deleted actor took {elapsed:.1f}s"


async def test_actor_deleted_between_steps_fails_the_next_step(stepped_env):
    """S1.6: a step that finds its actor gone fails the action with ActorNotFound."""
    Car = car_class()
    scrap = Car.stepped_action("scrap")
    ran = []

    @scrap.step
    def _(car, step):
        object_session(car).delete(car)

    @scrap.step
    def _(car, step):
        ran.append("second")

    car = stepped_env.create(Car, id=2)

    handle = await stepped.start(car, "scrap")
    result = await asyncio.wait_for(handle.result(), 15)

    assert result.status == "failed"
    assert result.error is not None and result.error.type == "ActorNotFound"
    assert [s.status for s in result.steps] == ["succeeded", "failed"]
    assert ran == []
    assert all(attempt == 1 for attempt in await activity_attempts(handle))


async def test_deleted_actor_in_arguments_fails_the_action(stepped_env):
    """S1.6, S1.5: an actor argument that no longer exists fails the action with ActorNotFound."""
    Car = car_class()
    tow = Car.stepped_action("tow")
    ran = []
    tow.step(lambda car, step, other: ran.append(other))
    car = stepped_env.create(Car, id=1)
    ghost = stepped_env.create(Car, id=2)
    with stepped_env.session() as session, session.begin():
        session.delete(session.get(Car, 2))

    result = await asyncio.wait_for(stepped.run(car, "tow", ghost), 15)

    assert result.status == "failed"
    assert result.error is not None and result.error.type == "ActorNotFound"
    assert "2" in result.error.message
    assert ran == []


async def test_child_on_a_deleted_actor_fails_its_parent(stepped_env):
    """S1.6, S3.14: a child action on a deleted actor fails, and so does its parent."""
    Car = car_class()
    leader = stepped_env.create(Car, id=1)
    ghost = stepped_env.create(Car, id=2)
    with stepped_env.session() as session, session.begin():
        session.delete(session.get(Car, 2))
    Car.stepped_action("convoy").step(lambda car, step: step.on(ghost, "honk"))

    result = await asyncio.wait_for(stepped.run(leader, "convoy"), 15)

    assert result.status == "failed"
    assert result.steps[0].status == "failed"
    assert result.steps[0].unsuccessful_actions_count == 1
    (child_id,) = result.steps[0].actions
    assert child_id.startswith("Car/2/honk/")
    child = await stepped.action_handle(child_id, stepped_env.client).describe()
    assert child.status == "failed"
    assert child.error is not None and child.error.type == "ActorNotFound"
    assert not child.root


async def test_loading_an_actor_reads_it_fresh_by_its_key_on_each_database(stepped_db_env):
    """S1.3, S1.6: `load_actor` (one prepared SELECT per class, cheaper than
    Session.get) returns the row's current state by a single, string or composite
    key; an object already in the session is returned as is; a missing row is
    ActorNotFound; a key of the wrong arity is refused, naming the class."""
    env = stepped_db_env

    class Base(DeclarativeBase):
        pass

    class Berth(stepped.Actor, Base):
        __tablename__ = f"berths_{id(env)}"
        dock: Mapped[str] = mapped_column(primary_key=True)
        number: Mapped[int] = mapped_column(primary_key=True)
        boats: Mapped[int] = mapped_column(default=0)

    Car = car_class()
    env.create(Berth, dock="north", number=2, boats=1)
    env.create(Car, id=5, mileage=7)
    with env.session() as session, session.begin():
        session.get(Berth, ("north", 2)).boats = 3  # changed after it was created

    with env.session() as session:
        berth = registry.load_actor(session, "Berth", ["north", 2])
        car = registry.load_actor(session, "Car", 5)
        assert (berth.dock, berth.number, berth.boats) == ("north", 2, 3)
        assert (car.id, car.mileage) == (5, 7)
        assert registry.load_actor(session, "Car", 5) is car  # the identity map first
        with pytest.raises(stepped.ActorNotFound, match="Berth with id"):
            registry.load_actor(session, "Berth", ["north", 9])
        with pytest.raises(Exception, match="Berth"):
            registry.load_actor(session, "Berth", "north")
