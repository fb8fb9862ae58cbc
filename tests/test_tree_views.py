"""S9.2, S9.5 for people: the tree shows timed waits (with the time left) and a
pending action's place in its lane; `stepped-temporal tree ID --watch` redraws it
until the action is final.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

import stepped_temporal as stepped
from stepped_temporal.trees import collect_tree, format_tree, tree_json
from tests.support import car_class, joined, performing, until

COMMAND = shutil.which("stepped-temporal") or str(Path(sys.executable).parent / "stepped-temporal")


async def test_tree_shows_waits_with_time_left_and_lane_positions(stepped_env):
    Car = car_class()
    trip = Car.stepped_action("trip")

    @trip.step
    def _(car, step, other):
        step.wait(timedelta(minutes=5))
        step.on(other, "drive", 3)

    hold = Car.stepped_action("hold", outbound=True)
    hold.concurrency_key(lambda car: "garage")
    hold.step(lambda car, step: None)
    paint = Car.stepped_action("paint")
    paint.concurrency_key(lambda car: "garage")
    paint.step(lambda car, step: car.honk())
    one, two = stepped_env.create(Car, id=1), stepped_env.create(Car, id=2)

    traveling = await stepped.start(one, "trip", two)
    state = await until(
        traveling,
        lambda s: s.steps and s.steps[0].waits and s.steps[0].pending_actions_count == 1,
    )
    (drive_id,) = state.steps[0].actions
    await until(stepped.action_handle(drive_id), lambda s: s.status == "succeeded")
    tree = await collect_tree(stepped_env.client, traveling.id)
    started = tree.state.steps[0].started_at
    assert started is not None
    lines = format_tree(tree, now=started + timedelta(seconds=60)).splitlines()
    assert lines[0].startswith("performing") and "Car/1 trip" in lines[0], lines
    assert lines[1] == "├─ wait 5m00s  (step 0)  4m00s left", lines
    assert lines[2].startswith("└─ succeeded   Car/2 drive  (3)"), lines
    as_json = tree_json(tree)
    assert as_json["waits"] == [{"step": 0, "seconds": 300.0}]
    assert as_json["lane_position"] is None

    holder = await stepped.start(one, "hold")
    await until(holder, performing)
    painting = await stepped.start(two, "paint")
    await until(painting, joined)
    pending = await collect_tree(stepped_env.client, painting.id)
    assert pending.lane_position == 1
    assert "#1 in lane garage" in format_tree(pending)
    assert tree_json(pending)["lane_position"] == 1

    assert await stepped.complete(one, "hold") is True
    assert (await painting.result()).status == "succeeded"
    finished = await collect_tree(stepped_env.client, painting.id)
    assert finished.lane_position is None and "in lane" not in format_tree(finished)
    await traveling.cancel()


@pytest.mark.dev_server
async def test_tree_watch_redraws_until_the_action_is_final(stepped_dev_env):
    env = stepped_dev_env
    Car = car_class()
    trip = Car.stepped_action("trip")
    trip.step(lambda car, step: step.wait(timedelta(seconds=3)))
    trip.step(lambda car, step: car.honk())
    car = env.create(Car, id=1)
    handle = await stepped.start(car, "trip")
    await until(handle, lambda s: bool(s.steps and s.steps[0].waits))

    address = env.client.service_client.config.target_host
    environment = {k: v for k, v in os.environ.items() if k != "TEMPORAL_ADDRESS"}
    watch = await asyncio.create_subprocess_exec(
        COMMAND, "tree", handle.id, "--watch", "--interval", "0.5", "--address", address,
        env=environment, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(watch.communicate(), 60)
    assert watch.returncode == 0, out.decode() + err.decode()
    frames = out.decode().strip().split("\n\n")  # piped: frames apart by a blank line
    assert len(frames) >= 3, frames
    assert frames[0].startswith("performing") and " left" in frames[0], frames[0]
    assert frames[-1].startswith("succeeded   Car/1 trip"), frames[-1]
    assert "wait 3s  (step 0)" in frames[-1] and "left" not in frames[-1], frames[-1]

    both = subprocess.run(
        [COMMAND, "tree", handle.id, "--watch", "--json", "--address", address],
        env=environment, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert both.returncode == 2, both.stdout + both.stderr
    assert both.stderr.strip() == (
        "stepped-temporal tree: error: --watch draws the tree as text: drop --json"
    )
