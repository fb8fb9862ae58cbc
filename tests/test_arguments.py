"""S1.5: what arguments can travel with an action, how they arrive, and what is refused."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal
from typing import Any, ClassVar

import pytest
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import stepped_temporal as stepped
from stepped_temporal import registry
from stepped_temporal.arguments import (
    actor_refs,
    decode_arguments,
    decode_value,
    encode_arguments,
)
from tests.support import car_class

UID = uuid.UUID("12345678-1234-5678-1234-567812345678")
RICH = [
    dt.datetime(2024, 2, 29, 13, 45, 10, 123456),
    dt.datetime(2024, 2, 29, 13, 45, tzinfo=dt.timezone(dt.timedelta(hours=2))),
    dt.date(2024, 2, 29),
    dt.timedelta(days=2, seconds=5, microseconds=7),
    dt.timedelta(seconds=-1),
    Decimal("1.10"),
    UID,
]


@pytest.fixture
def saved_registry():
    """Forget the actor classes a sync test registers (no stepped_env to do it)."""
    saved = dict(registry._registry)
    yield
    registry._registry.clear()
    registry._registry.update(saved)


def _assert_same(got: Any, expected: Any, path: str = "") -> None:
    """Equal values of exactly the same types, all the way down."""
    assert type(got) is type(expected), f"{path}: {type(got)} is not {type(expected)}"
    if isinstance(expected, list):
        assert len(got) == len(expected), path
        for i, (g, e) in enumerate(zip(got, expected, strict=True)):
            _assert_same(g, e, f"{path}[{i}]")
    elif isinstance(expected, dict):
        assert got.keys() == expected.keys(), path
        for key in expected:
            _assert_same(got[key], expected[key], f"{path}[{key!r}]")
    else:
        assert got == expected, path
        assert str(got) == str(expected), path  # Decimal("1.10") keeps its exponent


def _recording_car(arrived: list[Any]) -> type:
    """A Car whose `record` action keeps what its step and its callback received."""
    Car = car_class()
    record = Car.stepped_action("record")

    @record.step
    def _(car, step, *arguments):
        arrived.append(list(arguments))

    @record.succeeded
    def _(car, action, *arguments):
        arrived.append(list(arguments))

    return Car


def _deep(levels: int, leaf: Any) -> Any:
    value = leaf
    for level in range(levels):
        value = {"level": level, "down": [value]} if level % 2 else [value, level]
    return value


# -- arriving ----------------------------------------------------------------


async def test_json_values_arrive_unchanged(stepped_env):
    """S1.5: None, bool, int, float, str, list and str-keyed dicts arrive as they left."""
    arrived: list[Any] = []
    Car = _recording_car(arrived)
    car = stepped_env.create(Car, id=1)
    sent = [None, True, False, 3, 2.5, "naïve ☃", [1, "a", None], {"k": {"n": [False, 0]}}]

    result = await stepped.run(car, "record", *sent)

    assert result.status == "succeeded"
    assert len(arrived) == 2
    for received in arrived:
        _assert_same(received, sent)
    _assert_same(result.arguments, sent)


async def test_rich_values_arrive_as_the_same_types(stepped_env):
    """S1.5: datetime, date, timedelta, Decimal and UUID arrive as those types, equal."""
    arrived: list[Any] = []
    Car = _recording_car(arrived)
    car = stepped_env.create(Car, id=1)

    result = await stepped.run(car, "record", *RICH)

    assert result.status == "succeeded"
    _assert_same(arrived[0], RICH)
    assert arrived[0][1].utcoffset() == dt.timedelta(hours=2)
    _assert_same(arrived[1], RICH)
    _assert_same(result.arguments, RICH)


async def test_values_nested_deeply_arrive_intact(stepped_env):
    """S1.5: supported values nested in lists and dicts, as deep as needed."""
    arrived: list[Any] = []
    Car = _recording_car(arrived)
    car = stepped_env.create(Car, id=1)
    nested = {
        "a": [{"b": [Decimal("0.1"), {"c": [[UID]]}]}, dt.date(2020, 1, 1)],
        "deep": _deep(60, {"when": dt.datetime(2001, 9, 9, 1, 46, 40), "amount": Decimal("9")}),
    }

    result = await stepped.run(car, "record", nested, [nested])

    assert result.status == "succeeded"
    _assert_same(arrived[0], [nested, [nested]])
    _assert_same(arrived[1], [nested, [nested]])


async def test_user_dict_with_the_tag_key_round_trips(stepped_env):
    """S1.5: a user's dict holding "__stepped__" arrives as that dict, never as a tagged value."""
    arrived: list[Any] = []
    Car = _recording_car(arrived)
    car = stepped_env.create(Car, id=1)
    forged_actor = {"__stepped__": "actor", "type": "Car", "id": 1}
    forged_uuid = {"__stepped__": {"__stepped__": "uuid", "value": str(UID)}}
    wrapped_looking = {"__stepped__": "dict", "value": {"x": 1}}

    result = await stepped.run(car, "record", forged_actor, [forged_uuid], wrapped_looking)

    assert result.status == "succeeded"
    expected = [forged_actor, [forged_uuid], wrapped_looking]
    _assert_same(arrived[0], expected)
    _assert_same(arrived[1], expected)
    _assert_same(result.arguments, expected)


async def test_actor_arguments_arrive_freshly_loaded(stepped_env):
    """S1.5, S1.4: actors arrive as fresh instances of their class, in the step's transaction."""

    class Base(DeclarativeBase):
        pass

    class Driver(stepped.Actor, Base):
        __tablename__ = "drivers"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str]
        trips: Mapped[int] = mapped_column(default=0)

    class Robot(stepped.Actor):
        fleet: ClassVar[dict[int, Robot]] = {}

        def __init__(self, id: int) -> None:
            self.id = id

        @classmethod
        def stepped_find(cls, id):
            return cls.fleet.get(id)

    Car = car_class()
    pick_up = Car.stepped_action("pick_up")
    arrived = []

    @pick_up.step
    def _(car, step, driver, crew):
        arrived.append((driver, crew))
        driver.trips += 1

    car = stepped_env.create(Car, id=1)
    driver = stepped_env.create(Driver, id=8, name="Ann")
    driver.name = "not saved"
    stored_robot = Robot(3)
    Robot.fleet[3] = stored_robot

    result = await stepped.run(car, "pick_up", driver, {"robots": [Robot(3)], "also": [driver]})

    assert result.status == "succeeded"
    ((got, crew),) = arrived
    assert type(got) is Driver and got is not driver
    assert (got.id, got.name) == (8, "Ann")
    assert crew["robots"][0] is stored_robot
    assert type(crew["also"][0]) is Driver and crew["also"][0].id == 8
    assert stepped_env.reload(driver).trips == 1
    assert result.arguments == [
        stepped.ActorRef("Driver", 8),
        {"robots": [stepped.ActorRef("Robot", 3)], "also": [stepped.ActorRef("Driver", 8)]},
    ]


# -- refused -----------------------------------------------------------------


class _Point:
    pass


REFUSED = [
    # (arguments, position named, type named)
    (({1, 2},), "argument 1", "set"),
    ((1, b"raw"), "argument 2", "bytes"),
    ((1, "a", _Point()), "argument 3", "_Point"),
    (({"a": [1, {"b": {1}}]},), "argument 1", "set"),
    (([{"ok": {(1, 2): 3}}],), "argument 1", "tuple"),
    (({1: "one"},), "argument 1", "int"),
    ((1j,), "argument 1", "complex"),
    ((frozenset(),), "argument 1", "frozenset"),
]


async def test_start_refuses_what_cannot_travel_and_starts_nothing(stepped_env):
    """S1.5: `start` raises ArgumentTypeError (a TypeError) naming position and type."""
    Car = car_class()
    car = stepped_env.create(Car, id=1)

    for arguments, position, type_name in REFUSED:
        with pytest.raises(stepped.ArgumentTypeError) as info:
            await stepped.start(car, "drive", *arguments)
        assert isinstance(info.value, TypeError)
        message = str(info.value)
        assert position in message, message
        assert type_name in message, message

    assert stepped_env.started == []
    await stepped_env.assert_action_not_started(car, "drive")
    assert stepped_env.reload(car).mileage == 0


async def test_start_refuses_a_mapped_object_that_is_not_an_actor(stepped_env):
    """S1.5: only actors travel as references; another model instance is refused."""

    class Base(DeclarativeBase):
        pass

    class Receipt(Base):
        __tablename__ = "receipts"
        id: Mapped[int] = mapped_column(primary_key=True)

    Car = car_class()
    car = stepped_env.create(Car, id=1)

    with pytest.raises(stepped.ArgumentTypeError, match="Receipt") as info:
        await stepped.start(car, "drive", 1, {"paid": [Receipt(id=1)]})

    assert "argument 2" in str(info.value)
    assert stepped_env.started == []


async def test_step_do_refuses_and_fails_the_step_without_children(stepped_env):
    """S1.5, S3.6: a bad argument to step.do fails the step; no child starts, changes roll back."""
    Car = car_class()
    relay = Car.stepped_action("relay")

    @relay.step
    def _(car, step):
        car.honks += 1
        step.do("honk")
        step.do("drive", 1, {"route": {"A", "B"}})

    car = stepped_env.create(Car, id=1)

    result = await stepped.run(car, "relay")

    assert result.status == "failed"
    assert result.error is not None and result.error.type == "ArgumentTypeError"
    assert "argument 2" in result.error.message and "set" in result.error.message
    assert result.steps[0].status == "failed" and result.steps[0].actions == ()
    await stepped_env.assert_action_not_started(car, "honk")
    await stepped_env.assert_action_not_started(car, "drive")
    assert stepped_env.reload(car).honks == 0


async def test_step_on_refuses_and_fails_the_action(stepped_env):
    """S1.5: a bad argument to step.on fails the action with ArgumentTypeError."""
    Car = car_class()
    convoy = Car.stepped_action("convoy")
    convoy.step(lambda car, step, other: step.on([other, None], "drive", _Point()))
    car = stepped_env.create(Car, id=1)
    other = stepped_env.create(Car, id=2)

    result = await stepped.run(car, "convoy", other)

    assert result.status == "failed"
    assert result.error is not None and result.error.type == "ArgumentTypeError"
    assert "argument 1" in result.error.message and "_Point" in result.error.message
    assert result.steps[0].actions == ()
    await stepped_env.assert_action_not_started(other, "drive")
    assert stepped_env.reload(other).mileage == 0


async def test_assigning_bad_arguments_in_before_is_refused(stepped_env):
    """S1.5, S3.2: assigning `action.arguments` a value that cannot travel fails the action."""
    Car = car_class()
    tune = Car.stepped_action("tune")
    ran = []

    @tune.before
    def _(car, action, level):
        action.arguments = [level, {"extras": {level}}]

    tune.step(lambda car, step, *arguments: ran.append(arguments))
    car = stepped_env.create(Car, id=1)

    result = await stepped.run(car, "tune", 3)

    assert result.status == "failed"
    assert result.error is not None and result.error.type == "ArgumentTypeError"
    assert "argument 2" in result.error.message and "set" in result.error.message
    assert ran == [] and result.steps == ()
    assert result.arguments == [3]


async def test_assigning_good_arguments_in_before_is_kept(stepped_env):
    """S1.5, S3.10: rich values assigned in `before` arrive in the steps as those types."""
    arrived: list[Any] = []
    Car = _recording_car(arrived)
    Car.stepped_definition("record").before(lambda car, action: setattr(action, "arguments", RICH))
    car = stepped_env.create(Car, id=1)

    result = await stepped.run(car, "record")

    assert result.status == "succeeded"
    _assert_same(arrived[0], RICH)
    _assert_same(result.arguments, RICH)


# -- the codec (no Temporal) -------------------------------------------------


def _no_actors(type_name: str, actor_id: Any) -> Any:
    raise AssertionError(f"no actor expected, got {type_name}/{actor_id}")


def test_json_values_encode_as_themselves():
    """S1.5: plain JSON values are not tagged."""
    values = [None, True, 1, 1.5, "s", [1, [2]], {"a": {"b": None}}]

    assert encode_arguments(values, culprit="test") == values
    _assert_same(decode_arguments(values, _no_actors), values)


def test_rich_and_nested_values_round_trip_through_json():
    """S1.5: encoded arguments are plain JSON and decode to equal values of the same types."""
    values = [*RICH, {"nested": [RICH, {"__stepped__": RICH}]}, _deep(40, UID)]

    encoded = encode_arguments(values, culprit="test")
    through_json = json.loads(json.dumps(encoded))

    _assert_same(decode_arguments(through_json, _no_actors), values)


def test_user_dict_with_the_tag_is_wrapped_and_unwrapped():
    """S1.5: a dict holding the tag key is never decoded as a tag."""
    user = {"__stepped__": "actor", "type": "Car", "id": 1}

    (encoded,) = encode_arguments([user], culprit="test")

    assert encoded != user
    _assert_same(decode_value(encoded, _no_actors), user)
    assert actor_refs(encoded) == []


def test_actors_encode_as_references_and_decode_through_the_loader(saved_registry):
    """S1.5, S1.2: an actor travels as (type name, id) and is loaded by the given loader."""

    class Ferry(stepped.Actor):
        __stepped_name__ = "codec.Ferry"

        def __init__(self, id: int) -> None:
            self.id = id

    encoded = encode_arguments([Ferry(4), {"crew": [Ferry(5)]}], culprit="test")
    loaded = []

    def loader(type_name, actor_id):
        loaded.append((type_name, actor_id))
        return f"loaded {actor_id}"

    text = json.dumps(encoded)
    assert "<locals>" not in text and __name__ not in text  # a type name, never a class path
    assert decode_arguments(encoded, loader) == ["loaded 4", {"crew": ["loaded 5"]}]
    assert loaded == [("codec.Ferry", 4), ("codec.Ferry", 5)]
    assert actor_refs(encoded) == loaded


def test_an_actor_without_an_id_is_refused(saved_registry):
    """S1.5: an actor must be persisted (have an id) before it can travel."""

    class Ferry(stepped.Actor):
        __stepped_name__ = "codec.Ferry"

        def __init__(self, id: int | None) -> None:
            self.id = id

    with pytest.raises(stepped.ArgumentTypeError, match="no id"):
        encode_arguments([Ferry(None)], culprit="test")


def test_refusals_name_the_call_position_and_type():
    """S1.5: the error names the call, the argument's position and its type."""
    for arguments, position, type_name in REFUSED:
        with pytest.raises(stepped.ArgumentTypeError) as info:
            encode_arguments(list(arguments), culprit="start(Car/1/drive)")
        message = str(info.value)
        assert isinstance(info.value, TypeError)
        assert "start(Car/1/drive)" in message and position in message, message
        assert type_name in message, message


def test_arguments_must_be_a_list():
    """S1.5: arguments are positional: a str or dict in place of the list is refused."""
    for not_a_list in ("abc", {"a": 1}, 5):
        with pytest.raises(stepped.ArgumentTypeError, match="must be a list"):
            encode_arguments(not_a_list, culprit="test")  # type: ignore[arg-type]


def test_unknown_tags_are_refused_not_resolved():
    """S1.2, S1.5: decoding only knows its own tags; nothing is imported by name."""
    for forged in (
        {"__stepped__": "pickle", "value": "gASV"},
        {"__stepped__": "os.system", "value": "true"},
    ):
        with pytest.raises(stepped.ArgumentTypeError, match="unknown argument tag"):
            decode_value([1, {"x": forged}], _no_actors)
