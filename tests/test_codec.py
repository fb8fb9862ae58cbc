"""The encryption codec (codec.py): payloads round-trip, tampering and wrong keys are
refused clearly, bad keys in the environment name their variable, plain payloads
pass through; and end to end, Temporal's history of an action tree, its lane and
a failure holds no argument in clear, while the codec client reads every result."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload, SearchAttributes
from temporalio.api.failure.v1 import Failure
from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

import stepped_temporal as stepped
from stepped_temporal.client import ActionHandle
from stepped_temporal.codec import (
    CIPHER,
    ENCODING,
    KEY_ID_METADATA,
    CodecKeyError,
    DecryptionError,
    EncryptionCodec,
    data_converter,
    generate_key,
    is_encrypted,
    key_from_env,
    key_id,
    old_keys_from_env,
)
from stepped_temporal.testing import SteppedTestEnvironment, handle_stepped_action_exceptions
from stepped_temporal.worker import create_worker
from tests.support import car_class, performing, until

KEY = base64.b64encode(bytes(range(32))).decode()
OTHER_KEY = base64.b64encode(bytes(range(100, 132))).decode()
SECRET = "licence-plate-XYZ123"


def _plain(text: str) -> Payload:
    return DataConverter.default.payload_converter.to_payloads([text])[0]


# -- the codec on its own ----------------------------------------------------


async def test_values_round_trip_and_are_sealed():
    converter = data_converter(KEY)
    values = [SECRET, {"arguments": [SECRET, 7, None]}, None, b"\x00raw", 3.5, [True]]

    payloads = await converter.encode(values)

    assert len(payloads) == len(values)
    for payload in payloads:
        assert payload.metadata["encoding"] == ENCODING == b"binary/encrypted"
        assert payload.metadata[KEY_ID_METADATA] == key_id(base64.b64decode(KEY)).encode()
        assert payload.metadata["encryption-cipher"] == CIPHER
        assert SECRET.encode() not in payload.SerializeToString()
        assert b"json/plain" not in payload.SerializeToString()  # inner metadata is sealed too
    assert await converter.decode(payloads) == values


async def test_equal_payloads_encrypt_differently():
    codec = EncryptionCodec(KEY)
    one, two = await codec.encode([_plain(SECRET), _plain(SECRET)])
    assert one.data != two.data
    assert await codec.decode([one, two]) == [_plain(SECRET), _plain(SECRET)]


async def test_encoding_twice_does_not_wrap_twice():
    codec = EncryptionCodec(KEY)
    [sealed] = await codec.encode([_plain(SECRET)])
    assert await codec.encode([sealed]) == [sealed]


async def test_tampered_ciphertext_is_refused():
    codec = EncryptionCodec(KEY)
    [sealed] = await codec.encode([_plain(SECRET)])
    for position in (0, 12, len(sealed.data) // 2, len(sealed.data) - 1):  # nonce, body, tag
        tampered = Payload()
        tampered.CopyFrom(sealed)
        data = bytearray(tampered.data)
        data[position] ^= 0x01
        tampered.data = bytes(data)
        with pytest.raises(DecryptionError, match="failed authentication"):
            await codec.decode([tampered])
    truncated = Payload(metadata=dict(sealed.metadata), data=sealed.data[:5])
    with pytest.raises(DecryptionError, match="failed authentication"):
        await codec.decode([truncated])


async def test_a_payload_moved_under_another_key_id_is_refused():
    """Relabelling the key id does not help: the rightful key of that id fails to open it."""
    sealed = (await EncryptionCodec(OTHER_KEY).encode([_plain(SECRET)]))[0]
    sealed.metadata[KEY_ID_METADATA] = EncryptionCodec(KEY).key_id.encode()
    with pytest.raises(DecryptionError, match="failed authentication"):
        await EncryptionCodec(KEY).decode([sealed])


async def test_the_wrong_key_is_refused_with_a_clear_error():
    [sealed] = await EncryptionCodec(KEY).encode([_plain(SECRET)])
    wrong = EncryptionCodec(OTHER_KEY)

    with pytest.raises(DecryptionError) as caught:
        await wrong.decode([sealed])

    message = str(caught.value)
    assert EncryptionCodec(KEY).key_id in message  # which key the payload wants
    assert "STEPPED_CODEC_KEY" in message and "STEPPED_CODEC_KEYS" in message
    assert KEY not in message and OTHER_KEY not in message
    assert isinstance(caught.value, stepped.SteppedError)


async def test_the_wrong_key_fails_a_client_decode_clearly():
    converter = data_converter(KEY)
    payloads = await converter.encode([SECRET])
    with pytest.raises(DecryptionError, match="no configured key"):
        await data_converter(OTHER_KEY).decode(payloads)


async def test_old_keys_decode_after_rotation():
    old = EncryptionCodec(OTHER_KEY)
    [before] = await old.encode([_plain("before rotation")])
    rotated = EncryptionCodec(KEY, old_keys=[OTHER_KEY])

    [after] = await rotated.encode([_plain("after rotation")])

    assert after.metadata[KEY_ID_METADATA] == rotated.key_id.encode() != old.key_id.encode()
    assert rotated.key_ids == (rotated.key_id, old.key_id)
    assert await rotated.decode([before, after]) == [
        _plain("before rotation"),
        _plain("after rotation"),
    ]
    with pytest.raises(DecryptionError):  # the old codec does not know the new key
        await old.decode([after])


async def test_unencrypted_payloads_pass_through_untouched():
    """Turning encryption on must not break workflows whose history is in clear."""
    codec = EncryptionCodec(KEY)
    plain = [_plain(SECRET), Payload(metadata={"encoding": b"binary/null"}), Payload()]
    [sealed] = await codec.encode([_plain("sealed")])

    decoded = await codec.decode([plain[0], sealed, plain[1], plain[2]])

    assert decoded == [plain[0], _plain("sealed"), plain[1], plain[2]]
    assert decoded[0] is plain[0]
    assert not is_encrypted(plain[0]) and is_encrypted(sealed)
    assert await data_converter(KEY).decode([plain[0]]) == [SECRET]


async def test_failure_messages_are_encrypted_by_default():
    converter = data_converter(KEY)
    failure = Failure()
    await converter.encode_failure(ApplicationError(f"no parking for {SECRET}"), failure)

    assert SECRET.encode() not in failure.SerializeToString()
    assert is_encrypted(failure.encoded_attributes)
    decoded = await data_converter(KEY).decode_failure(failure)
    assert str(decoded) == f"no parking for {SECRET}"

    clear = Failure()
    await data_converter(KEY, encode_failures=False).encode_failure(ApplicationError(SECRET), clear)
    assert clear.message == SECRET


def test_the_codec_never_shows_its_key():
    codec = EncryptionCodec(KEY, old_keys=[OTHER_KEY])
    shown = repr(codec) + str(codec.key_ids)
    assert KEY not in shown and OTHER_KEY not in shown
    assert base64.b64decode(KEY).hex() not in shown


# -- keys ----------------------------------------------------------------------


def test_key_from_env_reads_base64():
    assert key_from_env({"STEPPED_CODEC_KEY": KEY}) == base64.b64decode(KEY)
    assert key_from_env({"STEPPED_CODEC_KEY": f"  {KEY}\n"}) == base64.b64decode(KEY)
    urlsafe = base64.urlsafe_b64encode(b"\xff" * 32).decode()
    assert key_from_env({"STEPPED_CODEC_KEY": urlsafe}) == b"\xff" * 32
    assert key_from_env({}) is None
    assert len(base64.b64decode(generate_key())) == 32 and generate_key() != generate_key()


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("not base64 at all!", "not valid base64"),
        (base64.b64encode(b"x" * 16).decode(), "decodes to 16 bytes"),
        (base64.b64encode(b"x" * 33).decode(), "decodes to 33 bytes"),
        ("ab" * 32, "looks like hex"),
        ("", "is empty"),
        ("sécret-clé", "not valid base64"),
    ],
)
def test_a_malformed_env_key_names_the_variable_not_the_key(value, reason):
    with pytest.raises(CodecKeyError) as caught:
        key_from_env({"STEPPED_CODEC_KEY": value})
    message = str(caught.value)
    assert message.startswith("STEPPED_CODEC_KEY ") and reason in message
    if value:
        assert value not in message
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, stepped.SteppedError)


def test_a_malformed_old_key_names_its_variable_and_position():
    with pytest.raises(CodecKeyError, match=r"^STEPPED_CODEC_KEYS \(key 2\) is not valid base64"):
        old_keys_from_env({"STEPPED_CODEC_KEYS": f"{OTHER_KEY}, oops!"})
    assert old_keys_from_env({"STEPPED_CODEC_KEYS": f"{OTHER_KEY},{KEY} "}) == [
        base64.b64decode(OTHER_KEY),
        base64.b64decode(KEY),
    ]
    assert old_keys_from_env({}) == []


async def test_data_converter_reads_the_environment(monkeypatch):
    monkeypatch.delenv("STEPPED_CODEC_KEY", raising=False)
    monkeypatch.delenv("STEPPED_CODEC_KEYS", raising=False)
    with pytest.raises(CodecKeyError, match=r"^STEPPED_CODEC_KEY is not set"):
        data_converter()

    monkeypatch.setenv("STEPPED_CODEC_KEY", "too-short")
    with pytest.raises(CodecKeyError, match=r"^STEPPED_CODEC_KEY "):
        data_converter()

    old_payloads = await data_converter(OTHER_KEY).encode([SECRET])
    monkeypatch.setenv("STEPPED_CODEC_KEY", KEY)
    monkeypatch.setenv("STEPPED_CODEC_KEYS", OTHER_KEY)
    converter = data_converter()
    codec = converter.payload_codec
    assert isinstance(codec, EncryptionCodec)
    assert codec.key_id == EncryptionCodec(KEY).key_id
    assert await converter.decode(old_payloads) == [SECRET]
    assert isinstance(converter.payload_converter, type(DataConverter.default.payload_converter))


# -- end to end ----------------------------------------------------------------


@asynccontextmanager
async def _encrypted_env(key: str) -> AsyncIterator[tuple[SteppedTestEnvironment, Client]]:
    """A test environment whose Stepped client and worker encrypt every payload.

    `env.client` stays a client without the codec: it reads what Temporal stores.
    The environment's own (plain) worker polls its own task queue, which nothing
    uses once Stepped is configured with the codec client and a queue of its own.
    """
    async with SteppedTestEnvironment.start() as env:
        options = env.client.config()
        options["data_converter"] = data_converter(key)
        encrypted = Client(**options)
        stepped.configure(client=encrypted, task_queue=f"stepped-codec-{uuid.uuid4().hex[:8]}")
        async with create_worker():
            yield env, encrypted


async def _action_ids(client: Client, roots: list[str]) -> list[str]:
    """The roots and, recursively, every child they started."""
    found: list[str] = []
    queue = list(roots)
    while queue:
        action_id = queue.pop(0)
        if action_id in found:
            continue
        found.append(action_id)
        state = await ActionHandle(client, action_id).describe()
        for step in state.steps:
            queue.extend(step.actions)
    return found


def _payloads(message: Message) -> Iterator[Payload]:
    """Every payload inside a protobuf message, except search attributes (never encoded)."""
    if isinstance(message, Payload):
        yield message
        return
    if isinstance(message, SearchAttributes):
        return
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            items = list(value.values())
        elif isinstance(value, Message):
            items = [value]
        else:
            items = list(value)
        for item in items:
            if isinstance(item, Message):
                yield from _payloads(item)


#: what Temporal's core writes, in plain JSON, beside a local activity's (encoded)
#: result in its marker: bookkeeping of the SDK, never user data
LOCAL_ACTIVITY_FIELDS = {
    "seq",
    "attempt",
    "activity_id",
    "activity_type",
    "complete_time",
    "backoff",
    "original_schedule_time",
    "activation_index",
}


async def _stored(plain: Client, workflow_id: str) -> tuple[bytes, list[Payload]]:
    """A workflow's history as Temporal stores it: raw event bytes and its payloads,
    less the core's own local-activity and patch bookkeeping (checked to be only that)."""
    history = await plain.get_workflow_handle(workflow_id).fetch_history()
    raw = b"".join(event.SerializeToString() for event in history.events)
    payloads = []
    for event in history.events:
        marker = event.marker_recorded_event_attributes
        bookkeeping = []
        if event.HasField("marker_recorded_event_attributes") and "data" in marker.details:
            assert marker.marker_name == "core_local_activity", marker.marker_name
            bookkeeping = list(marker.details["data"].payloads)
            for payload in bookkeeping:
                assert set(json.loads(payload.data)) <= LOCAL_ACTIVITY_FIELDS, payload.data
        elif event.HasField("marker_recorded_event_attributes"):
            # a `workflow.patched` marker: the patch id, nothing of the user's
            assert marker.marker_name == "core_patch", marker.marker_name
            bookkeeping = [p for key in marker.details for p in marker.details[key].payloads]
            for payload in bookkeeping:
                assert set(json.loads(payload.data)) <= {"id", "deprecated"}, payload.data
        payloads += [p for p in _payloads(event) if p not in bookkeeping]
    return raw, payloads


def _visiting(Car):
    """visit(location): drive (a child), wait an hour, then change_location(location) (a child)."""
    visit = Car.stepped_action("visit")

    @visit.step
    def _(car, step, location):
        step.do("drive", 10)
        step.wait(timedelta(hours=1))

    @visit.step
    def _(car, step, location):
        step.do("change_location", location)

    return visit


def _parking(Car):
    """park(plate): wait an hour, then change_location(plate)."""
    park = Car.stepped_action("park")

    @park.step
    def _(car, step, plate):
        step.wait(timedelta(hours=1))

    @park.step
    def _(car, step, plate):
        car.change_location(plate)

    return park


def _towing(Car):
    """tow(plate): raises an exception quoting the plate."""
    tow = Car.stepped_action("tow")

    @tow.step
    def _(car, step, plate):
        raise RuntimeError(f"no parking for {plate}")

    return tow


@pytest.mark.time_skipping
async def test_history_holds_no_argument_in_clear():
    """A tree run through the codec client: right result, and every payload Temporal
    stored, in every workflow of the tree, is ciphertext without the secret."""
    async with _encrypted_env(KEY) as (env, encrypted):
        Car = car_class()  # inside: the environment forgets it afterwards
        _visiting(Car)
        car = env.create(Car, id=1)

        result = await stepped.run(car, "visit", SECRET)

        assert result.status == "succeeded" and result.arguments == [SECRET]
        assert env.reload(car).location == SECRET and env.reload(car).mileage == 10
        ids = await _action_ids(encrypted, env.started)
        children = [(await ActionHandle(encrypted, i).describe()) for i in ids[1:]]
        assert sorted((c.name, tuple(c.arguments)) for c in children) == [
            ("change_location", (SECRET,)),
            ("drive", (10,)),
        ]
        for workflow_id in ids:
            raw, payloads = await _stored(env.client, workflow_id)
            assert SECRET.encode() not in raw, workflow_id
            assert payloads and all(is_encrypted(p) for p in payloads), workflow_id
        with pytest.raises(KeyError, match="Unknown payload encoding binary/encrypted"):
            await ActionHandle(env.client, ids[0]).describe()  # without the codec


@pytest.mark.time_skipping
async def test_lane_payloads_are_encrypted_too():
    """Two actions contending for one key start a lane workflow; its joins, state and
    results are ciphertext as well, and both actions end right."""
    async with _encrypted_env(KEY) as (env, _):
        Car = car_class()
        _parking(Car)
        car = env.create(Car, id=1)
        first = await stepped.start(car, "park", SECRET)
        await until(first, performing)
        second = await stepped.start(car, "park", SECRET + "-second")

        one, two = await first.result(), await second.result()

        assert one.status == two.status == "succeeded"
        assert two.started_at >= one.completed_at  # one at a time: the lane worked
        assert env.reload(car).location == SECRET + "-second"
        lane = "stepped-lane/Car/1/park"
        try:
            await env.client.get_workflow_handle(lane).describe()
        except RPCError:  # pragma: no cover - the lane design changed
            pytest.fail(f"no lane workflow {lane} started for two contending actions")
        for workflow_id in [first.id, second.id, lane]:
            raw, payloads = await _stored(env.client, workflow_id)
            assert SECRET.encode() not in raw, workflow_id
            assert payloads and all(is_encrypted(p) for p in payloads), workflow_id


@pytest.mark.parametrize("handled", [True, False], ids=["handled", "retried"])
async def test_failure_messages_do_not_leak(handled):
    """A step's exception quoting an argument, handled at once or retried until the
    retry policy gives up: the codec client reads the message, Temporal's history
    never holds it in clear (failure messages and stack traces are encrypted)."""
    only = [RuntimeError] if handled else [KeyError]
    async with _encrypted_env(KEY) as (env, _):
        Car = car_class()
        _towing(Car)
        car = env.create(Car, id=1)

        with handle_stepped_action_exceptions(only=only):
            result = await stepped.run(car, "tow", SECRET)

        assert result.status == "failed"
        assert result.error is not None and SECRET in result.error.message
        raw, payloads = await _stored(env.client, result.id)
        assert SECRET.encode() not in raw
        assert payloads and all(is_encrypted(p) for p in payloads)
        history = await env.client.get_workflow_handle(result.id).fetch_history()
        failures = [
            e.activity_task_failed_event_attributes.failure
            for e in history.events
            if e.HasField("activity_task_failed_event_attributes")
        ]
        if not handled:  # the step's activity failed: its message is ciphertext
            assert failures and all(f.message == "Encoded failure" for f in failures)
            assert all(is_encrypted(f.encoded_attributes) for f in failures)


@pytest.mark.time_skipping
async def test_without_the_codec_the_secret_is_in_history(stepped_env):
    """The control: the same check finds the secret when nothing encrypts."""
    Car = car_class()
    _visiting(Car)
    car = stepped_env.create(Car, id=1)

    result = await stepped.run(car, "visit", SECRET)

    assert result.status == "succeeded"
    raw, payloads = await _stored(stepped_env.client, result.id)
    assert SECRET.encode() in raw
    assert payloads and not any(is_encrypted(p) for p in payloads)
