"""The codec wired in: `SteppedTestEnvironment.start(data_converter=...)`,
`configure(data_converter=...)`, and the CLI's `--codec` (worker, dev, tree)."""

from __future__ import annotations

import argparse
import base64

import pytest
from temporalio.client import Client
from temporalio.converter import DataConverter

import stepped_temporal as stepped
from stepped_temporal import cli, cli_setup, cli_views, config
from stepped_temporal.codec import EncryptionCodec, data_converter, is_encrypted
from stepped_temporal.testing import SteppedTestEnvironment
from tests.support import car_class

KEY = base64.b64encode(bytes(range(32))).decode()
OTHER_KEY = base64.b64encode(bytes(range(100, 132))).decode()
SECRET = "licence-plate-XYZ123"


def _tour(Car):
    tour = Car.stepped_action("tour")
    tour.step(lambda car, step, plate: step.do("change_location", plate))
    return tour


async def _stored_in_clear(env: SteppedTestEnvironment, workflow_id: str) -> tuple[bool, bool]:
    """(the secret is in the raw history, every input/result payload is encrypted)."""
    plain = Client(**{**env.client.config(), "data_converter": DataConverter.default})
    history = await plain.get_workflow_handle(workflow_id).fetch_history()
    raw = b"".join(event.SerializeToString() for event in history.events)
    started = history.events[0].workflow_execution_started_event_attributes
    return SECRET.encode() in raw, all(is_encrypted(p) for p in started.input.payloads)


async def test_the_test_environment_takes_a_data_converter():
    async with SteppedTestEnvironment.start(data_converter=data_converter(KEY)) as env:
        Car = car_class()  # inside: the environment forgets it afterwards
        _tour(Car)
        car = env.create(Car, id=1)
        await stepped.start(car, "tour", SECRET)

        [result] = await env.perform_stepped_actions()
        states = await env.actions()

        assert isinstance(env.client.data_converter.payload_codec, EncryptionCodec)
        assert result.arguments == [SECRET]
        assert [(s.name, s.status) for s in states] == [
            ("tour", "succeeded"),
            ("change_location", "succeeded"),
        ]
        assert env.reload(car).location == SECRET
        for state in states:
            assert await _stored_in_clear(env, state.id) == (False, True)


async def test_configure_connects_with_the_data_converter():
    converter = data_converter(KEY)
    async with SteppedTestEnvironment.start(data_converter=converter) as env:
        Car = car_class()
        _tour(Car)
        address = env.client.service_client.config.target_host
        config.configure(address=address, data_converter=converter)
        assert config.settings().client is None  # reconnects with the converter

        client = await config.get_client()

        assert client is not env.client and client.data_converter is converter
        car = env.create(Car, id=1)
        result = await stepped.run(car, "tour", SECRET)
        assert result.succeeded and result.arguments == [SECRET]
        assert await _stored_in_clear(env, result.id) == (False, True)


def _arguments(*argv: str) -> argparse.Namespace:
    return cli._parser().parse_args(list(argv))


def test_the_cli_codec_follows_the_environment(monkeypatch):
    monkeypatch.delenv("STEPPED_CODEC_KEY", raising=False)
    monkeypatch.delenv("STEPPED_CODEC_KEYS", raising=False)
    assert cli_setup.codec_converter(_arguments("worker", "--app", "m")) is None
    with pytest.raises(cli_setup.CommandError, match=r"^STEPPED_CODEC_KEY is not set") as caught:
        cli_setup.codec_converter(_arguments("worker", "--app", "m", "--codec"))
    assert caught.value.status == cli_setup.EXIT_USAGE

    monkeypatch.setenv("STEPPED_CODEC_KEY", KEY)
    for argv in (["worker", "--app", "m"], ["dev", "--app", "m"], ["tree", "Car/1/x/y"]):
        converter = cli_setup.codec_converter(_arguments(*argv))
        assert isinstance(converter.payload_codec, EncryptionCodec), argv
        assert cli_setup.codec_note(converter) == (
            f", payloads encrypted (key id {converter.payload_codec.key_id})"
        )
    assert cli_setup.codec_converter(_arguments("worker", "--app", "m", "--no-codec")) is None
    assert cli_setup.codec_note(None) == cli_setup.codec_note(DataConverter.default) == ""


def test_a_malformed_key_is_one_line_naming_the_variable(monkeypatch):
    monkeypatch.setenv("STEPPED_CODEC_KEY", "hunter2-not-a-key")
    with pytest.raises(cli_setup.CommandError) as caught:
        cli_setup.codec_converter(_arguments("worker", "--app", "m"))
    message = str(caught.value)
    assert message.startswith("STEPPED_CODEC_KEY ") and "\n" not in message
    assert "hunter2" not in message


async def test_tree_reads_encrypted_actions_with_the_key_only(monkeypatch, capsys):
    for name in ("TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "STEPPED_CODEC_KEYS"):
        monkeypatch.delenv(name, raising=False)
    async with SteppedTestEnvironment.start(data_converter=data_converter(KEY)) as env:
        Car = car_class()
        _tour(Car)
        car = env.create(Car, id=1)
        result = await stepped.run(car, "tour", SECRET)
        address = env.client.service_client.config.target_host
        argv = ["tree", result.id, "--address", address]

        monkeypatch.setenv("STEPPED_CODEC_KEY", KEY)
        assert await cli_views.run_tree(_arguments(*argv)) == 0
        printed = capsys.readouterr().out
        assert "succeeded" in printed and "change_location" in printed

        monkeypatch.delenv("STEPPED_CODEC_KEY")
        with pytest.raises(
            cli_setup.CommandError, match="encrypted payloads: set STEPPED_CODEC_KEY"
        ):
            await cli_views.run_tree(_arguments(*argv))

        monkeypatch.setenv("STEPPED_CODEC_KEY", OTHER_KEY)
        with pytest.raises(cli_setup.CommandError, match="no configured key"):
            await cli_views.run_tree(_arguments(*argv))
