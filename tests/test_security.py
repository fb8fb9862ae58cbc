"""Security: database credentials stay out of Temporal and out of logs and errors.

A worker whose database URL carries a password runs a tree (a failing step
included, so errors are logged and recorded); the password appears in no
history event of any workflow the tree created, and in no log record. The
inputs that could make a worker import a module or call a private method are
covered, case by case, in test_bad_input.py.
"""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa

import stepped_temporal as stepped
from stepped_temporal.testing import SteppedTestEnvironment
from tests.databases import postgres_schema, postgres_unreachable
from tests.support import car_class

PASSWORD = "pw-Zq81-never-shown"


@pytest.fixture
def url_with_password():
    """A PostgreSQL URL with a password (trust auth accepts and ignores it)."""
    reason = postgres_unreachable()
    if reason:
        pytest.skip(reason)
    with postgres_schema() as url:
        yield sa.make_url(url).set(password=PASSWORD).render_as_string(hide_password=False)


async def test_the_database_password_is_in_no_history_and_no_log(url_with_password, caplog):
    caplog.set_level(logging.DEBUG)
    async with SteppedTestEnvironment.start(database_url=url_with_password) as env:
        Car = car_class()
        fleet = Car.stepped_action("fleet")
        fleet.step(lambda car, step, others: step.on(others, "wobble"))
        wobble = Car.stepped_action("wobble")

        @wobble.step
        def _(car, step):
            raise ValueError(f"car {car.id} wobbles")

        cars = [env.create(Car, id=n) for n in (1, 2, 3)]
        result = await stepped.run(cars[0], "fleet", cars[1:])

        assert result.status == "failed"
        ids = [result.id, *result.steps[0].actions]
        for workflow_id in ids:
            history = await env.client.get_workflow_handle(workflow_id).fetch_history()
            raw = b"".join(event.SerializeToString() for event in history.events)
            assert PASSWORD.encode() not in raw, workflow_id
    logged = "\n".join(
        record.getMessage() + str(record.args) + str(record.exc_info) for record in caplog.records
    )
    assert "wobbles" in logged  # the probe sees what the worker logged
    assert PASSWORD not in logged
