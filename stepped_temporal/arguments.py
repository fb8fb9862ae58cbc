"""Arguments travel as JSON: plain values as they are, the rest tagged (S1.5).

A tagged value is a dict ``{"__stepped__": tag, ...}``; a user's own dict that
happens to contain the key ``"__stepped__"`` is wrapped so it never decodes as
a tag. Only the tags below exist: nothing in a payload names a module, a class
or a function, so decoding can never import or call anything by name.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from .config import settings
from .errors import ArgumentTypeError, ArgumentValueError
from .registry import ActorBase, actor_ref

TAG = "__stepped__"

#: What decoding does with an actor reference: (type name, id) -> the value to put there.
ActorLoader = Callable[[str, Any], Any]

#: The share of the cluster's payload limit an action's arguments may take as JSON
#: (S11.3): they travel in its workflow input, its result and every activity input
#: of it, beside Stepped's own fields; Temporal refuses a payload over the limit
#: (2 MiB by default: 512 KiB of arguments) and its SDK warns from 512 KiB on.
ARGUMENTS_SHARE = 4


def max_arguments_bytes() -> int:
    """The most an action's arguments may take as JSON on the configured cluster."""
    return settings().server_limits.payload_bytes // ARGUMENTS_SHARE


_SUPPORTED = (
    "JSON values (None, bool, int, float, str, list, dict with str keys), actors, "
    "datetime, date, timedelta, Decimal and UUID"
)


def encode_arguments(arguments: Sequence[Any], *, culprit: str) -> list[Any]:
    """Encode a call's positional arguments; `culprit` names the call in errors."""
    if isinstance(arguments, (str, bytes, dict)) or not isinstance(arguments, Sequence):
        raise ArgumentTypeError(
            f"{culprit}: arguments must be a list, got {type(arguments).__name__}"
        )
    encoded = [_encode(v, f"argument {i + 1}", culprit, "") for i, v in enumerate(arguments)]
    size = len(json.dumps(encoded, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    most = max_arguments_bytes()
    if size > most:
        limit = settings().server_limits.payload_bytes
        raise ArgumentValueError(
            f"{culprit}: the arguments take {size:,} bytes as JSON; at most "
            f"{most:,} bytes travel with an action (a quarter of the "
            f"cluster's payload limit of {limit:,} bytes, ServerLimits.payload_bytes: they "
            f"travel beside Stepped's own fields): keep large data in your database and "
            f"pass its id"
        )
    return encoded


def to_json_value(value: Any) -> Any:
    """Encode one value (used for checksums of rich values)."""
    return _encode(value, "value", "checksum", "")


def _encode(value: Any, position: str, culprit: str, path: str) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)) and type(value) in (int, float):
        return value
    if isinstance(value, list):
        return [_encode(v, position, culprit, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ArgumentTypeError(
                    f"{culprit}: {position}{path} is a dict with a key of type "
                    f"{type(key).__name__} ({key!r}); only str keys can travel"
                )
            out[key] = _encode(item, position, culprit, f"{path}[{key!r}]")
        return {TAG: "dict", "value": out} if TAG in out else out
    if isinstance(value, dt.datetime):
        return {TAG: "datetime", "value": value.isoformat()}
    if isinstance(value, dt.date):
        return {TAG: "date", "value": value.isoformat()}
    if isinstance(value, dt.timedelta):
        return {TAG: "timedelta", "value": [value.days, value.seconds, value.microseconds]}
    if isinstance(value, Decimal):
        return {TAG: "decimal", "value": str(value)}
    if isinstance(value, uuid.UUID):
        return {TAG: "uuid", "value": str(value)}
    if isinstance(value, ActorBase):
        type_name, actor_id = actor_ref(value)
        return {TAG: "actor", "type": type_name, "id": actor_id}
    raise ArgumentTypeError(
        f"{culprit}: {position}{path} has type "
        f"{type(value).__module__}.{type(value).__qualname__}, "
        f"which cannot travel with an action; use {_SUPPORTED}"
    )


def decode_arguments(encoded: Sequence[Any], load_actor: ActorLoader) -> list[Any]:
    """Decode encoded arguments; actor references go through `load_actor`."""
    return [decode_value(value, load_actor) for value in encoded]


def decode_value(value: Any, load_actor: ActorLoader) -> Any:
    """Decode one encoded value."""
    if isinstance(value, list):
        return [decode_value(v, load_actor) for v in value]
    if not isinstance(value, dict):
        return value
    tag = value.get(TAG)
    if tag is None:
        return {k: decode_value(v, load_actor) for k, v in value.items()}
    inner: Any = value.get("value")
    if tag == "dict":
        return {k: decode_value(v, load_actor) for k, v in inner.items()}
    if tag == "actor":
        return load_actor(value["type"], value["id"])
    if tag == "datetime":
        return dt.datetime.fromisoformat(inner)
    if tag == "date":
        return dt.date.fromisoformat(inner)
    if tag == "timedelta":
        days, seconds, micros = inner
        return dt.timedelta(days=days, seconds=seconds, microseconds=micros)
    if tag == "decimal":
        return Decimal(inner)
    if tag == "uuid":
        return uuid.UUID(inner)
    raise ArgumentTypeError(f"unknown argument tag {tag!r} in an action payload")


def actor_refs(encoded: Any) -> list[tuple[str, Any]]:
    """Every (type name, id) an encoded value refers to, in order."""
    found: list[tuple[str, Any]] = []
    decode_value(encoded, lambda type_name, actor_id: found.append((type_name, actor_id)))
    return found
