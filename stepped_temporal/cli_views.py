"""The `stepped-temporal` commands that look at actions and lanes: tree, lanes (S9.2, S9.5).

Each connects like the others (`cli_setup.connect`) and turns what a user can
get wrong — an unknown id, encrypted payloads without the key, a server that
cannot list — into one line (`CommandError`).
"""

from __future__ import annotations

import argparse
import json

from .cli_setup import EXIT_USAGE, CommandError, check_database, connect

__all__ = ["run_lanes", "run_tree"]


async def run_tree(arguments: argparse.Namespace) -> int:
    """`stepped-temporal tree ACTION_ID`."""
    from temporalio.service import RPCError

    from .errors import SteppedError
    from .trees import collect_tree, format_tree, tree_json, watch_tree

    if arguments.watch and arguments.json:
        raise CommandError("--watch draws the tree as text: drop --json", EXIT_USAGE)
    client = await connect(arguments)
    try:
        if arguments.watch:
            await watch_tree(client, arguments.action_id, interval=arguments.interval)
            return 0
        tree = await collect_tree(client, arguments.action_id)
    except RPCError as error:
        raise CommandError(f"no action {arguments.action_id!r}: {error}") from None
    except KeyError as error:  # the SDK's word for a payload encoding it cannot read
        if "binary/encrypted" not in str(error):
            raise
        raise CommandError(
            f"action {arguments.action_id!r} has encrypted payloads: set STEPPED_CODEC_KEY "
            f"to the key its workers use"
        ) from None
    except SteppedError as error:  # e.g. codec.DecryptionError: a key that does not fit
        raise CommandError(str(error)) from None
    if arguments.json:
        print(json.dumps(tree_json(tree), indent=2))
    else:
        print(format_tree(tree))
    return 0


async def run_lanes(arguments: argparse.Namespace) -> int:
    """`stepped-temporal lanes [KEY]` (S9.5)."""
    from temporalio.service import RPCError

    from . import config
    from .lane_listing import contended_lanes, format_lane, format_lanes, lane_detail

    client = await connect(arguments)
    output: object
    try:
        if arguments.key is None:
            found = await contended_lanes(client)
            output = [lane.as_json() for lane in found] if arguments.json else format_lanes(found)
        else:  # an uncontended key's holder is its claim row: the database answers
            engine = check_database(arguments.database_url)
            config.configure(client=client, engine=engine, task_queue=arguments.task_queue)
            one = await lane_detail(client, arguments.key)
            output = one.as_json() if arguments.json else format_lane(one)
    except RPCError as error:
        raise CommandError(f"cannot list lanes: {error.message}") from None
    print(json.dumps(output, indent=2) if arguments.json else output)
    return 0
