"""S3.4 against the claim of an uncontended key (store/claims.py) on PostgreSQL.

Under READ COMMITTED each statement sees what was committed when it began. An
identical action whose holder ends just as it prepares saw no achievement, then
claimed the key the moment the holder's last transaction (grant + release)
committed — and did the work a second time. Found by the three-worker crash test
(a second `fuel 7` performed in the undisturbed run). prepare now checks the
achievement again once a fresh claim is its own; this test holds the holder's
last transaction open while prepare runs, so the interleaving is forced.

SQLite serialises writers (transactions begin IMMEDIATE), so there prepare's
whole transaction comes after the holder's: nothing to race.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session
from temporalio.testing import ActivityEnvironment

import stepped_temporal as stepped
from stepped_temporal import config, registry
from stepped_temporal.checksums import checksum
from stepped_temporal.messages import ActionContext, PrepareInput
from stepped_temporal.preparing import prepare
from stepped_temporal.store import Achievement, LaneClaim, create_tables
from stepped_temporal.wire import encode
from tests.support import car_class


async def test_a_claim_taken_as_the_holder_ends_finds_its_achievement(database_url):
    if database_url is None:
        pytest.skip("SQLite serialises writers: prepare cannot interleave with the holder")
    saved, registered = config.settings(), dict(registry._registry)
    engine = config.create_engine(database_url)
    try:
        config.configure(engine=engine, task_queue="claim-races")
        create_tables(engine)
        Car = car_class()
        fuel = Car.stepped_action("fuel")
        fuel.checksum(lambda car, liters: liters)
        fuel.step(lambda car, step, liters: car.honk())
        Car.metadata.create_all(engine)
        key, done = "Car/1/fuel", checksum(7)
        with Session(engine) as session, session.begin():
            session.add(Car(id=1))
            session.add(
                LaneClaim(
                    concurrency_key=key,
                    holder="Car/1/fuel/holder",
                    claimed_at=datetime.now(UTC),
                )
            )

        # the holder's last transaction: grant and release, committed only later
        holder = engine.connect()
        ending = holder.begin()
        holder.execute(sa.insert(Achievement).values(checksum_key=key, checksum=done))
        holder.execute(sa.delete(LaneClaim).where(LaneClaim.concurrency_key == key))

        def commit_later() -> None:
            time.sleep(1.0)  # prepare is waiting on the claim row by then
            ending.commit()
            holder.close()

        committer = threading.Thread(target=commit_later)
        committer.start()
        environment = ActivityEnvironment()
        environment.info = dataclasses.replace(environment.info, workflow_run_id=uuid.uuid4().hex)
        context = ActionContext(
            action_id=f"Car/1/fuel/{uuid.uuid4().hex[:16]}",
            actor_type="Car",
            actor_id=1,
            name="fuel",
            arguments=[7],
            root=False,
        )
        started = time.monotonic()
        prepared = await environment.run(
            prepare, encode(PrepareInput(context, "claim-races", perform_first_step=True))
        )
        waited = time.monotonic() - started
        await asyncio.to_thread(committer.join)

        assert waited > 0.5, "prepare did not wait for the holder: the race was not forced"
        assert prepared["outcome"] == "achieved", prepared
        with Session(engine) as session:
            assert session.get(LaneClaim, key) is None  # nothing held
            assert session.get(Car, 1).honks == 0  # the work was not done again
    finally:
        engine.dispose()
        config.reset()
        config.configure(**stepped.testing._settings_kwargs(saved))
        registry._registry.clear()  # Car was registered here: forget it
        registry._registry.update(registered)
