"""The `stepped-temporal` command."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the `stepped-temporal` console script."""
    parser = argparse.ArgumentParser(
        prog="stepped-temporal", description="Stepped actions on Temporal."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="run a small fleet of cars on an embedded dev server")
    arguments = parser.parse_args(argv)
    if arguments.command == "demo":
        from .demo import run_demo

        status = asyncio.run(run_demo())
    else:  # pragma: no cover - argparse refuses unknown commands
        parser.error(f"unknown command {arguments.command}")
    _exit(status)


def _exit(status: int) -> None:
    # temporalio/sdk-python#300: the Rust bridge can crash interpreter shutdown.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


if __name__ == "__main__":
    main()
