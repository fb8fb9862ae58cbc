"""wire.decode rebuilds, and wire.encode writes, every Stepped message exactly as
Temporal's converter does (S1.5: what travels is unchanged; only the work is cheaper)."""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any

import pytest
from temporalio.converter import DataConverter

from stepped_temporal import lane_messages, messages
from stepped_temporal.wire import decode, encode

CONVERTER = DataConverter.default.payload_converter
MESSAGES = sorted(
    (
        value
        for module in (messages, lane_messages)
        for value in vars(module).values()
        if dataclasses.is_dataclass(value)
        and isinstance(value, type)
        and value.__module__ == module.__name__
    ),
    key=lambda cls: cls.__name__,
)


def _sample(hint: Any, depth: int = 0) -> Any:
    """A value of `hint` unlike any default: every field filled, nested ones too."""
    origin, arguments = typing.get_origin(hint), typing.get_args(hint)
    if hint is str:
        return f"text-{depth}"
    if hint is bool:
        return True
    if hint is int:
        return 7 + depth
    if hint is float:
        return 2.5
    if hint is Any:
        return {"nested": [1, "two", None], "n": 3.5}
    if origin in (typing.Union, types.UnionType):
        return _sample(next(a for a in arguments if a is not type(None)), depth)
    if origin is list:
        return [_sample(arguments[0], depth + 1), _sample(arguments[0], depth + 2)]
    if origin is dict:
        return {"k": _sample(arguments[1], depth + 1)}
    assert dataclasses.is_dataclass(hint), hint
    hints = typing.get_type_hints(hint)
    return hint(**{f.name: _sample(hints[f.name], depth + 1) for f in dataclasses.fields(hint)})


def test_every_message_is_covered():
    names = {cls.__name__ for cls in MESSAGES}
    assert {"ActionInput", "Prepared", "StepOutcome", "ActionData", "LaneState"} <= names


@pytest.mark.parametrize("cls", MESSAGES, ids=lambda cls: cls.__name__)
def test_decode_matches_temporals_converter(cls):
    value = _sample(cls)
    payload = CONVERTER.to_payloads([value])
    theirs = CONVERTER.from_payloads(payload, [cls])[0]
    ours = decode(cls, json.loads(payload[0].data))
    assert ours == theirs == value
    assert type(ours) is cls


def test_missing_fields_take_defaults_and_unknown_ones_are_ignored():
    """An older writer left fields out; a newer one added some: both still decode."""
    decoded = decode(messages.ErrorData, {"type": "T", "message": "m", "added_later": 1})
    assert decoded == messages.ErrorData("T", "m")
    outcome = decode(messages.StepOutcome, {})
    assert outcome == messages.StepOutcome()


def test_unsupported_shapes_are_refused_by_name():
    @dataclasses.dataclass
    class Odd:
        value: int | str

    with pytest.raises(TypeError, match="unsupported union"):
        decode(Odd, {"value": 1})


@pytest.mark.parametrize("cls", MESSAGES, ids=lambda cls: cls.__name__)
def test_encode_is_read_back_by_both_readers_from_fewer_bytes(cls):
    """What `encode` writes, Temporal's converter (typed signals, the client's
    results) and `decode` (workflows, activities) both read back as the value;
    a message holding only defaults writes only the fields without one."""
    for value in (_sample(cls), _defaults(cls)):
        theirs = CONVERTER.to_payloads([value])[0]
        ours = CONVERTER.to_payloads([encode(value)])[0]
        assert ours.metadata == theirs.metadata
        assert len(ours.data) <= len(theirs.data)
        assert CONVERTER.from_payloads([ours], [cls])[0] == value
        assert decode(cls, json.loads(ours.data)) == value
    required = {f.name for f in dataclasses.fields(cls) if _required(f)}
    assert set(encode(_defaults(cls))) == required


def _required(field: dataclasses.Field[Any]) -> bool:
    return field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING


def _defaults(cls: Any) -> Any:
    """An instance with every field that has a default left at it."""
    hints = typing.get_type_hints(cls)
    return cls(**{f.name: _sample(hints[f.name]) for f in dataclasses.fields(cls) if _required(f)})


def test_a_default_of_another_type_is_written():
    """0 where False is the default (or 0 where 0.0 is) is not the default: written."""
    outcome = messages.StepOutcome(marked_failed=0)  # type: ignore[arg-type]
    assert encode(outcome) == {"marked_failed": 0}


def test_encode_leaves_what_it_does_not_know_to_temporals_encoder():
    """Tuples become lists as asdict + JSON make them; other values pass through
    untouched, so Temporal's own encoder still decides how they are written."""
    when = dataclasses.make_dataclass("When", [("at", Any), ("pair", Any)])
    import datetime as dt

    value = when(dt.datetime(2026, 12, 6, tzinfo=dt.UTC), (1, ("a", None)))
    encoded = encode(value)
    assert encoded == {"at": value.at, "pair": [1, ["a", None]]}
    assert CONVERTER.to_payloads([encoded])[0].data == CONVERTER.to_payloads([value])[0].data
