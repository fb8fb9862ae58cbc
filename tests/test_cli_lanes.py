"""S9.5: `stepped-temporal lanes` lists the contended lanes and `lanes KEY` shows one
(text and `--json`), run as a user runs them, against the dev server (listing is a
visibility query); lane workflows carry `SteppedLane` so the Web UI lists them.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import stepped_temporal as stepped
from tests.support import car_class, garage, joined, listed, performing, run_cli, until


async def _lanes(env, *arguments: str) -> str:
    """Run `stepped-temporal lanes …` against the test environment; its stdout."""
    url = env.engine.url.render_as_string(hide_password=False)
    address = env.client.service_client.config.target_host
    return await run_cli(address, url, "lanes", *arguments)


async def _listed_lanes(env) -> list[dict[str, Any]]:
    """`lanes --json` once the visibility store lists a lane (it lags a start)."""
    deadline = time.monotonic() + 20
    while True:
        listed: list[dict[str, Any]] = json.loads(await _lanes(env, "--json"))
        if listed or time.monotonic() > deadline:
            return listed
        await asyncio.sleep(0.3)


async def test_lanes_lists_contended_lanes_and_shows_one(stepped_dev_env):
    env = stepped_dev_env
    Car = car_class()
    garage(Car)
    car = env.create(Car, id=1)

    holder = await stepped.start(car, "hold")
    await until(holder, performing)
    # one action wants the key: a claim, no lane workflow
    assert (await _lanes(env)).startswith("no contended lanes")
    alone: dict[str, Any] = json.loads(await _lanes(env, "garage", "--json"))
    assert alone["performing"] == holder.id and alone["pending"] == []

    first = await stepped.start(car, "visit", "Oslo")
    await until(first, joined)
    second = await stepped.start(car, "visit", "Paris")  # supersedes the first
    await until(second, joined)
    assert (await first.result()).status == "superseded"

    found = await _listed_lanes(env)
    assert [lane["key"] for lane in found] == ["garage"]
    (lane,) = found
    assert lane["performing"] == holder.id and lane["performing_since"] is not None
    assert lane["pending"] == [second.id]
    assert lane["recent"] == [{"action_id": first.id, "how": "superseded", "to": second.id}]
    assert json.loads(await _lanes(env, "garage", "--json")) == lane

    table = (await _lanes(env)).splitlines()
    assert table[0].split() == ["KEY", "PERFORMING", "FOR", "PENDING"]
    assert table[1].split()[:2] == ["garage", holder.id] and table[1].split()[-1] == "1"
    detail = await _lanes(env, "garage")
    assert detail.splitlines()[0] == "lane garage"
    assert f"performing  {holder.id} (for " in detail
    assert f"1. {second.id}" in detail
    assert f"{first.id} superseded → {second.id}" in detail

    # the Web UI finds the lane by its key
    assert await listed(env.client, 'SteppedLane="garage"', 1) == ["stepped-lane/garage"]

    assert await stepped.complete(car, "hold") is True
    assert (await second.result()).status == "succeeded"
    nobody: dict[str, Any] = json.loads(await _lanes(env, "nowhere", "--json"))
    assert nobody == {
        "key": "nowhere",
        "performing": None,
        "performing_since": None,
        "pending": [],
        "pending_count": 0,
        "pending_left_out": 0,
        "recent": [],
    }


async def test_lane_detail_on_either_server(stepped_env):
    """`lanes KEY`'s view (lane_listing.lane_detail, format_lane) on both servers: the
    holder with how long it performs, the pending one, the superseded handover."""
    from datetime import timedelta

    from stepped_temporal.lane_listing import format_lane, lane_detail

    Car = car_class()
    garage(Car)
    car = stepped_env.create(Car, id=1)
    holder = await stepped.start(car, "hold")
    await until(holder, performing)
    first = await stepped.start(car, "visit", "Oslo")
    await until(first, joined)
    second = await stepped.start(car, "visit", "Paris")
    await until(second, joined)
    assert (await first.result()).status == "superseded"

    lane = await lane_detail(stepped_env.client, "garage")
    assert (lane.performing, lane.pending) == (holder.id, (second.id,))
    assert lane.recent == ((first.id, "superseded", second.id),)
    assert lane.performing_since is not None
    text = format_lane(lane, now=lane.performing_since + timedelta(seconds=75))
    assert text.splitlines() == [
        "lane garage",
        f"  performing  {holder.id} (for 1m15s)",
        f"  pending     1. {second.id}",
        f"  recent      {first.id} superseded → {second.id}",
    ]
    assert await stepped.complete(car, "hold") is True
    assert (await second.result()).status == "succeeded"
