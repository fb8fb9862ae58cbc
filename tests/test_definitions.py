"""S2.1-S2.6, S9.1: declaring actions, inheriting them, and what undeclared names do."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import stepped_temporal as stepped
from stepped_temporal import registry
from tests.support import car_class

STATUSES = ("succeeded", "failed", "cancelled", "timed_out")


@pytest.fixture
def saved_registry():
    """Forget the actor classes a sync test registers (no stepped_env to do it)."""
    saved = dict(registry._registry)
    yield
    registry._registry.clear()
    registry._registry.update(saved)


def car_and_truck() -> tuple[type, type]:
    """A Car and its subclass Truck, in one table (single-table inheritance)."""

    class Base(DeclarativeBase):
        pass

    class Car(stepped.Actor, Base):
        __tablename__ = "cars"
        __mapper_args__ = {"polymorphic_on": "kind", "polymorphic_identity": "car"}
        id: Mapped[int] = mapped_column(primary_key=True)
        kind: Mapped[str]
        mileage: Mapped[int] = mapped_column(default=0)
        honks: Mapped[int] = mapped_column(default=0)
        location: Mapped[str | None] = mapped_column(default=None)

        def drive(self, miles: int) -> None:
            self.mileage += miles

        def honk(self) -> None:
            self.honks += 1

    class Truck(Car):
        __mapper_args__ = {"polymorphic_identity": "truck"}

    return Car, Truck


async def _until_performing(handle: stepped.ActionHandle) -> None:
    for _ in range(200):
        if (await handle.describe()).status == "performing":
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{handle.id} never started performing")


# -- S2.1 declaring ----------------------------------------------------------


def test_stepped_action_returns_a_definition_exposing_its_settings(saved_registry):
    """S2.1: the Definition names its action and class and shows how it was declared."""
    Car = car_class()

    def tow(action):
        pass

    retry = stepped.RetryPolicy(maximum_attempts=5)
    plain = Car.stepped_action("visit")
    towing = Car.stepped_action("tow", job=tow, retry=retry)
    painting = Car.stepped_action("paint", outbound=True, timeout=timedelta(seconds=5))

    assert isinstance(plain, stepped.Definition)
    assert (plain.name, plain.actor_class) == ("visit", Car)
    assert (plain.outbound, plain.timeout, plain.job, plain.retry) == (False, None, None, None)
    assert plain.steps == [] and plain.after_callbacks == []
    assert (towing.outbound, towing.job, towing.retry) == (True, tow, retry)
    assert (painting.outbound, painting.timeout) == (True, timedelta(seconds=5))
    assert Car.stepped_definition("visit") is plain
    assert Car.stepped_definition("tow") is towing


def test_decorators_return_the_function_and_record_it(saved_registry):
    """S2.1: every decorator returns what it decorates; steps and callbacks are listed."""
    Car = car_class()
    visit = Car.stepped_action("visit")

    def first(car, step):
        pass

    def second(car, step):
        pass

    def early(car, step):
        pass

    def hook(car, action):
        pass

    def key(car):
        return "k"

    def on_success(car, action):
        pass

    def on_failure(car, action):
        pass

    def on_cancel(car, action):
        pass

    def on_time_out(car, action):
        pass

    def on_some(car, action):
        pass

    assert visit.step(first) is first
    assert visit.step(second) is second
    assert visit.prepend_step(early) is early
    assert visit.before(hook) is hook
    for decorator in (visit.concurrency_key, visit.checksum, visit.checksum_key):
        assert decorator(key) is key
    assert visit.succeeded(on_success) is on_success
    assert visit.failed(on_failure) is on_failure
    assert visit.cancelled(on_cancel) is on_cancel
    assert visit.timed_out(on_time_out) is on_time_out
    assert visit.after("failed", "cancelled")(on_some) is on_some

    assert visit.steps == [early, first, second]
    assert visit.after_callbacks == [
        ("succeeded", on_success),
        ("failed", on_failure),
        ("cancelled", on_cancel),
        ("timed_out", on_time_out),
        ("failed", on_some),
        ("cancelled", on_some),
    ]


async def test_redeclaring_replaces_the_definition(stepped_env):
    """S2.1: declaring a name again on the same class replaces the earlier definition."""
    Car = car_class()
    first = Car.stepped_action("service")
    first.step(lambda car, step: car.honk())
    second = Car.stepped_action("service")
    second.step(lambda car, step: car.drive(10))
    car = stepped_env.create(Car, id=1)

    result = await stepped.run(car, "service")

    assert Car.stepped_definition("service") is second
    assert result.status == "succeeded" and len(result.steps) == 1
    reloaded = stepped_env.reload(car)
    assert (reloaded.honks, reloaded.mileage) == (0, 10)


# -- S2.2, S2.3 generated steps and undeclared names ------------------------


async def test_definition_without_steps_calls_the_method(stepped_env):
    """S2.2: no steps → one generated step calls the same-named method with the arguments."""
    Car = car_class()
    drive = Car.stepped_action("drive")
    car = stepped_env.create(Car, id=1)

    result = await stepped.run(car, "drive", 6)

    assert drive.steps == []
    assert result.status == "succeeded" and len(result.steps) == 1
    assert stepped_env.reload(car).mileage == 6


async def test_prepended_step_runs_before_the_generated_one(stepped_env):
    """S2.2, S2.4: a prepended step runs first, then the generated method step."""
    Car = car_class()
    Car.stepped_action("drive")
    order = []

    @Car.prepend_stepped_action_step("drive")
    def _(car, step, miles):
        order.append(("prepended", car.mileage, miles))
        car.honk()

    car = stepped_env.create(Car, id=1, mileage=1)

    result = await stepped.run(car, "drive", 6)

    assert result.status == "succeeded" and len(result.steps) == 2
    assert order == [("prepended", 1, 6)]
    reloaded = stepped_env.reload(car)
    assert (reloaded.honks, reloaded.mileage) == (1, 7)


async def test_undeclared_public_method_runs(stepped_env):
    """S2.3: an undeclared name that is a public method runs as if declared without steps."""
    Car = car_class()
    car = stepped_env.create(Car, id=1)

    result = await stepped.run(car, "change_location", "Oslo")

    assert result.status == "succeeded" and len(result.steps) == 1
    assert stepped_env.reload(car).location == "Oslo"
    assert Car.stepped_definition("change_location") is None


async def test_names_that_are_not_public_methods_are_refused(stepped_env):
    """S2.3: private names, non-method attributes and unknown names raise ActionNotFound."""

    class Base(DeclarativeBase):
        pass

    class Van(stepped.Actor, Base):
        __tablename__ = "vans"
        id: Mapped[int] = mapped_column(primary_key=True)
        mileage: Mapped[int] = mapped_column(default=0)
        color = "red"

        def _secret(self) -> None:
            self.mileage = 1000

        @staticmethod
        def helper() -> None:
            pass

        def honk(self) -> None:
            pass

    van = stepped_env.create(Van, id=1)

    for name in ("_secret", "__init__", "color", "mileage", "helper", "fly", "stepped_action"):
        with pytest.raises(stepped.ActionNotFound) as info:
            await stepped.start(van, name)
        message = str(info.value)
        assert "Van" in message and repr(name) in message, message

    assert stepped_env.started == []
    assert stepped_env.reload(van).mileage == 0


async def test_a_child_with_an_unknown_name_fails_the_step(stepped_env):
    """S2.3: a step asking for an action that does not exist fails with ActionNotFound."""
    Car = car_class()
    Car.stepped_action("fly_away").step(lambda car, step: step.do("fly"))
    car = stepped_env.create(Car, id=1)

    result = await stepped.run(car, "fly_away")

    assert result.status == "failed"
    assert result.error is not None and result.error.type == "ActionNotFound"
    assert "'fly'" in result.error.message
    assert result.steps[0].actions == ()


async def test_strict_mode_requires_declarations(stepped_env):
    """S2.3: with configure(strict=True) only declared actions start."""
    Car = car_class()
    Car.stepped_action("drive")
    car = stepped_env.create(Car, id=1)

    stepped.configure(strict=True)
    try:
        with pytest.raises(stepped.ActionNotFound, match="honk"):
            await stepped.start(car, "honk")
        result = await stepped.run(car, "drive", 3)
    finally:
        stepped.configure(strict=False)

    assert result.status == "succeeded"
    assert len(stepped_env.started) == 1
    assert stepped_env.reload(car).mileage == 3


# -- S2.4 inheritance --------------------------------------------------------


def test_stepped_definition_finds_own_inherited_or_none(saved_registry):
    """S2.4: `stepped_definition` returns the class's own definition, else the inherited one."""
    Car, Truck = car_and_truck()
    service = Car.stepped_action("service")

    assert Truck.stepped_definition("service") is service
    assert Car.stepped_definition("wash") is None and Truck.stepped_definition("wash") is None
    own = Truck.stepped_action("service")
    assert Truck.stepped_definition("service") is own
    assert Car.stepped_definition("service") is service


async def test_subclasses_inherit_and_redefining_affects_only_them(stepped_env):
    """S2.4: a subclass runs the parent's definition until it redefines its own."""
    Car, Truck = car_and_truck()
    Car.stepped_action("service").step(lambda car, step: car.honk())
    car = stepped_env.create(Car, id=1)
    truck = stepped_env.create(Truck, id=2)

    assert (await stepped.run(truck, "service")).status == "succeeded"
    assert stepped_env.reload(truck).honks == 1

    Truck.stepped_action("service").step(lambda truck, step: truck.drive(10))
    assert (await stepped.run(car, "service")).status == "succeeded"
    assert (await stepped.run(truck, "service")).status == "succeeded"

    reloaded_car, reloaded_truck = stepped_env.reload(car), stepped_env.reload(truck)
    assert (reloaded_car.honks, reloaded_car.mileage) == (1, 0)
    assert (reloaded_truck.honks, reloaded_truck.mileage) == (1, 10)


async def test_after_stepped_action_on_a_subclass_leaves_the_parent_alone(stepped_env):
    """S2.4: `after_stepped_action` on a subclass copies the inherited definition first."""
    Car, Truck = car_and_truck()
    service = Car.stepped_action("service")
    service.step(lambda car, step: car.honk())

    @Truck.after_stepped_action("service", "succeeded")
    def _(truck, action):
        truck.location = "checked"

    copied = Truck.stepped_definition("service")
    assert copied is not service and copied.actor_class is Truck
    assert copied.steps == service.steps and service.after_callbacks == []
    car = stepped_env.create(Car, id=1)
    truck = stepped_env.create(Truck, id=2)

    car_result = await stepped.run(car, "service")
    truck_result = await stepped.run(truck, "service")

    assert car_result.after_callbacks_succeeded_count is None
    assert truck_result.after_callbacks_succeeded_count == 1
    reloaded_car, reloaded_truck = stepped_env.reload(car), stepped_env.reload(truck)
    assert (reloaded_car.honks, reloaded_car.location) == (1, None)
    assert (reloaded_truck.honks, reloaded_truck.location) == (1, "checked")


async def test_prepend_on_a_subclass_leaves_the_parent_alone(stepped_env):
    """S2.4: `prepend_stepped_action_step` on a subclass changes only the subclass."""
    Car, Truck = car_and_truck()
    order = []
    Car.stepped_action("service").step(lambda car, step: order.append(("step", type(car).__name__)))

    @Truck.prepend_stepped_action_step("service")
    def _(truck, step):
        order.append(("prepended", type(truck).__name__))

    car = stepped_env.create(Car, id=1)
    truck = stepped_env.create(Truck, id=2)

    car_result = await stepped.run(car, "service")
    truck_result = await stepped.run(truck, "service")

    assert (len(car_result.steps), len(truck_result.steps)) == (1, 2)
    assert order == [("step", "Car"), ("prepended", "Truck"), ("step", "Truck")]
    assert len(Car.stepped_definition("service").steps) == 1


async def test_subclass_hooks_may_come_before_the_action_is_declared(stepped_env):
    """S2.4, S2.3: on an undeclared name they declare it on the subclass only."""
    Car, Truck = car_and_truck()

    @Truck.after_stepped_action("drive")
    def _(truck, action, miles):
        truck.location = f"{action.status} after {miles}"

    @Truck.prepend_stepped_action_step("honk")
    def _(truck, step):
        truck.location = "prepped"

    assert Car.stepped_definition("drive") is None and Car.stepped_definition("honk") is None
    car = stepped_env.create(Car, id=1)
    truck = stepped_env.create(Truck, id=2)

    car_drive = await stepped.run(car, "drive", 3)
    truck_drive = await stepped.run(truck, "drive", 4)
    assert (car_drive.after_callbacks_succeeded_count, len(car_drive.steps)) == (None, 1)
    assert (truck_drive.after_callbacks_succeeded_count, len(truck_drive.steps)) == (1, 1)
    reloaded_car, reloaded_truck = stepped_env.reload(car), stepped_env.reload(truck)
    assert (reloaded_car.mileage, reloaded_car.location) == (3, None)
    assert (reloaded_truck.mileage, reloaded_truck.location) == (4, "succeeded after 4")

    assert (await stepped.run(car, "honk")).status == "succeeded"
    truck_honk = await stepped.run(truck, "honk")
    assert len(truck_honk.steps) == 2
    reloaded_car, reloaded_truck = stepped_env.reload(car), stepped_env.reload(truck)
    assert (reloaded_car.honks, reloaded_car.location) == (1, None)
    assert (reloaded_truck.honks, reloaded_truck.location) == (1, "prepped")


# -- S2.5 after-callback statuses -------------------------------------------


def test_after_without_statuses_means_all_four(saved_registry):
    """S2.5: `after()` registers the callback for every final status it can have."""
    Car = car_class()
    visit = Car.stepped_action("visit")

    def callback(car, action):
        pass

    visit.after()(callback)
    Car.after_stepped_action("visit")(callback)

    assert sorted(visit.after_callbacks) == sorted([(status, callback) for status in STATUSES] * 2)
    assert visit.after(stepped.Status.FAILED)(callback) is callback
    assert visit.callbacks_for("failed") == [callback] * 3


def test_invalid_after_status_raises_naming_the_valid_ones(saved_registry):
    """S2.5: an invalid status raises InvalidStatus (a ValueError) when defined."""
    Car = car_class()
    visit = Car.stepped_action("visit")

    for bad in ("done", "pending", "performing", "superseded", "deadlocked", "Succeeded"):
        with pytest.raises(stepped.InvalidStatus) as info:
            visit.after("succeeded", bad)
        assert isinstance(info.value, ValueError)
        message = str(info.value)
        assert repr(bad) in message and all(status in message for status in STATUSES)
        with pytest.raises(ValueError, match="valid"):
            Car.after_stepped_action("visit", bad)

    assert visit.after_callbacks == []


async def test_catch_all_callback_runs_for_each_final_status(stepped_env):
    """S2.5, S3.9: one `after()` callback runs on success, failure and cancellation."""
    Car = car_class()
    statuses = []

    def record(car, action, *arguments):
        statuses.append(action.status)

    Car.stepped_action("drive").after()(record)
    Car.stepped_action("crash").step(lambda car, step: step.do("missing_method"))
    Car.stepped_definition("crash").after()(record)
    stall = Car.stepped_action("stall")
    stall.step(lambda car, step: step.wait(timedelta(hours=1)))
    stall.after()(record)
    car = stepped_env.create(Car, id=1)

    drove = await stepped.run(car, "drive", 1)
    crashed = await stepped.run(car, "crash")
    stalling = await stepped.start(car, "stall")
    await _until_performing(stalling)
    await stalling.cancel()
    stalled = await stalling.result()

    assert [r.status for r in (drove, crashed, stalled)] == ["succeeded", "failed", "cancelled"]
    assert [r.after_callbacks_succeeded_count for r in (drove, crashed, stalled)] == [1, 1, 1]
    assert statuses == ["succeeded", "failed", "cancelled"]


# -- S2.6 keys and checksums -------------------------------------------------


async def test_keys_and_checksum_take_functions_of_the_arguments(stepped_env):
    """S2.6, S3.3: fn(actor, *arguments) computes concurrency_key, checksum_key and checksum."""
    Car = car_class()
    wash = Car.stepped_action("wash")
    wash.concurrency_key(lambda car, soap, rounds: ["bay", car.id, soap])
    wash.checksum_key(lambda car, soap, rounds: f"wash-{soap}")
    wash.checksum(lambda car, soap, rounds: [soap, rounds])
    wash.step(lambda car, step, soap, rounds: car.honk())
    car = stepped_env.create(Car, id=1)

    result = await stepped.run(car, "wash", "foam", 2)

    assert result.status == "succeeded"
    assert result.concurrency_key == "bay/1/foam"
    assert result.checksum_key == "wash-foam"
    assert result.checksum == stepped.checksum(["foam", 2])


async def test_keys_and_checksum_take_method_names(stepped_env):
    """S2.6: a method name is called on the actor with no arguments."""

    class Base(DeclarativeBase):
        pass

    class Bus(stepped.Actor, Base):
        __tablename__ = "buses"
        id: Mapped[int] = mapped_column(primary_key=True)
        depot: Mapped[str]
        washes: Mapped[int] = mapped_column(default=0)

        def lane(self) -> str:
            return f"depot-{self.depot}"

        def achievement_key(self) -> list[str]:
            return ["Bus", "wash"]

        def wash_digest(self) -> dict[str, str]:
            return {"depot": self.depot}

    wash = Bus.stepped_action("wash")
    assert wash.concurrency_key("lane") == "lane"
    wash.checksum_key("achievement_key")
    wash.checksum("wash_digest")

    @wash.step
    def _(bus, step, rounds):
        bus.washes += rounds

    bus = stepped_env.create(Bus, id=1, depot="north")

    result = await stepped.run(bus, "wash", 3)

    assert result.status == "succeeded"
    assert result.concurrency_key == "depot-north"
    assert result.checksum_key == "Bus/wash"
    assert result.checksum == stepped.checksum({"depot": "north"})
    assert stepped_env.reload(bus).washes == 3


async def test_a_key_method_that_does_not_exist_fails_the_action(stepped_env):
    """S2.6: naming a method the actor lacks fails the action with a clear error."""
    Car = car_class()
    wash = Car.stepped_action("wash")
    wash.concurrency_key("no_such_lane")
    wash.step(lambda car, step: car.honk())
    car = stepped_env.create(Car, id=1)

    result = await stepped.run(car, "wash")

    assert result.status == "failed"
    assert result.error is not None and result.error.type == "DefinitionError"
    assert "no_such_lane" in result.error.message
    assert result.steps == () and stepped_env.reload(car).honks == 0


# -- S9.1 generated methods --------------------------------------------------


async def test_declared_actions_get_later_and_now_methods(stepped_env):
    """S9.1, S3.13: `<name>_later` starts the action, `<name>_now` runs it; both are roots."""
    Car = car_class()
    Car.stepped_action("drive")
    car = stepped_env.create(Car, id=1)

    handle = await car.drive_later(4)
    started = await handle.result()
    ran = await car.drive_now(2)

    assert isinstance(handle, stepped.ActionHandle)
    assert handle.id.startswith("Car/1/drive/")
    assert isinstance(ran, stepped.ActionResult) and ran.id != handle.id
    assert (started.status, ran.status) == ("succeeded", "succeeded")
    assert started.root and ran.root
    assert started.arguments == [4] and ran.arguments == [2]
    assert stepped_env.reload(car).mileage == 6
    assert not hasattr(Car, "honk_later") and not hasattr(Car, "honk_now")


async def test_a_class_own_later_method_is_not_overwritten(stepped_env):
    """S9.1: a method the class defines itself keeps its name; the other one is generated."""

    class Base(DeclarativeBase):
        pass

    class Tram(stepped.Actor, Base):
        __tablename__ = "trams"
        id: Mapped[int] = mapped_column(primary_key=True)
        stop: Mapped[str | None] = mapped_column(default=None)

        def visit(self, stop: str) -> None:
            self.stop = stop

        def visit_later(self) -> str:
            return f"my own visit_later for {self.id}"

    own = Tram.__dict__["visit_later"]
    Tram.stepped_action("visit")
    tram = stepped_env.create(Tram, id=1)

    assert Tram.__dict__["visit_later"] is own
    assert tram.visit_later() == "my own visit_later for 1"
    result = await tram.visit_now("Rome")
    assert result.status == "succeeded"
    assert stepped_env.reload(tram).stop == "Rome"
    assert stepped_env.started == [result.id]
