"""What every `stepped-temporal` command sets up: Temporal, the database, the app (S9.3).

Connecting to Temporal (flags, environment, Temporal's config profiles, the
encrypting codec), checking the database, importing the application's actor
modules and serving a worker until a signal. Each failure is a `CommandError`:
one line for the user and an exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

__all__ = [
    "EXIT_FAILURE",
    "EXIT_USAGE",
    "CommandError",
    "check_database",
    "codec_converter",
    "codec_note",
    "connect",
    "import_apps",
    "serve",
]

EXIT_USAGE = 2
EXIT_FAILURE = 1


class CommandError(Exception):
    """A one-line error for the user; the command exits with `status`."""

    def __init__(self, message: str, status: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.status = status


def codec_converter(arguments: argparse.Namespace) -> Any | None:
    """The encrypting data converter `--codec` asks for, or None; key errors in one line."""
    wanted = arguments.codec
    if wanted is None:
        wanted = "STEPPED_CODEC_KEY" in os.environ or "STEPPED_CODEC_KEYS" in os.environ
    if not wanted:
        return None
    try:
        from .codec import data_converter
    except ImportError as error:
        raise CommandError(
            f"encryption needs the cryptography package ({error}): "
            f'pip install "stepped_temporal[codec]"',
            EXIT_USAGE,
        ) from None
    try:
        return data_converter()
    except ValueError as error:  # CodecKeyError: names the variable, never the key
        raise CommandError(str(error), EXIT_USAGE) from None


def codec_note(converter: Any | None) -> str:
    """`, payloads encrypted (key id ...)` for banners, or nothing."""
    codec = getattr(converter, "payload_codec", None)
    key_id = getattr(codec, "key_id", None)
    return f", payloads encrypted (key id {key_id})" if key_id else ""


def import_apps(modules: Sequence[str]) -> list[str]:
    """Import the application modules; return the actor type names they declared."""
    from .registry import registered_actor_classes

    sys.path.insert(0, os.getcwd())
    names: list[str] = []
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as error:
            raise CommandError(
                f"cannot import module {module!r}: {type(error).__name__}: {error}", EXIT_USAGE
            ) from None
        declared = [
            c.__dict__.get("__stepped_name__", c.__name__)
            for c in registered_actor_classes()
            if c.__module__ == module or c.__module__.startswith(module + ".")
        ]
        if not declared:
            raise CommandError(
                f"module {module!r} declares no stepped_temporal.Actor subclasses", EXIT_USAGE
            )
        names += declared
    return names


async def connect(arguments: argparse.Namespace) -> Any:
    """Connect to Temporal from flags, the environment and Temporal's config profiles."""
    from temporalio.client import Client
    from temporalio.envconfig import ClientConfig
    from temporalio.service import TLSConfig

    try:
        options: dict[str, Any] = dict(
            ClientConfig.load_client_connect_config(
                profile=arguments.profile, config_file=arguments.config_file
            )
        )
    except Exception as error:
        raise CommandError(f"cannot read Temporal client configuration: {error}") from None
    if arguments.address:
        options["target_host"] = arguments.address
    options.setdefault("target_host", "localhost:7233")
    if arguments.namespace:
        options["namespace"] = arguments.namespace
    if arguments.api_key:
        options["api_key"] = arguments.api_key
    if arguments.tls or arguments.tls_cert:
        options["tls"] = TLSConfig(
            client_cert=Path(arguments.tls_cert).read_bytes() if arguments.tls_cert else None,
            client_private_key=Path(arguments.tls_key).read_bytes() if arguments.tls_key else None,
        )
    converter = codec_converter(arguments)
    if converter is not None:
        options["data_converter"] = converter
    bind = getattr(arguments, "metrics_bind", None)
    if bind:
        from .metrics import prometheus_runtime

        try:
            options["runtime"] = prometheus_runtime(bind)
        except Exception as error:  # a bad address, or a port in use
            raise CommandError(f"cannot serve metrics on {bind}: {error}") from None
    address = options["target_host"]
    try:
        return await asyncio.wait_for(Client.connect(**options), timeout=15)
    except Exception as error:
        reason = str(error) or type(error).__name__
        raise CommandError(f"cannot connect to Temporal at {address}: {reason}") from None


def check_database(url: str) -> sa.Engine:
    """An engine for `url` that answered a query; the error hides the password."""
    from . import config

    shown = sa.make_url(url).render_as_string(hide_password=True)
    try:
        engine = config.create_engine(url)
        with engine.connect() as connection:
            connection.execute(sa.text("select 1"))
    except Exception as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CommandError(f"cannot connect to the database {shown}: {reason}") from None
    return engine


async def serve(worker: Any, banner: str) -> None:
    """Run `worker` until SIGINT or SIGTERM, then shut it down gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(number, stop.set)
    async with worker:
        print(banner, flush=True)
        await stop.wait()
        print("stopping: letting running activities finish ...", flush=True)
    print("stopped", flush=True)
