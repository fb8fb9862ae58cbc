"""S5.1: `stepped.checksum` matches the gem's digests; S3.3: an action's checksum
is the digest of its checksum function's value — on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import stepped_temporal as stepped
from tests.support import car_class


def test_checksum_matches_the_gems_digests():
    """S5.1: the two digests the gem's tests pin."""
    assert (
        stepped.checksum(25) == "b7a56873cd771f2c446d369b649430b65a756ba278ff97ec81bb6f55b2e73569"
    )
    assert (
        stepped.checksum(["a", "b"])
        == "0473ef2dc0d324ab659d3580c1134e9d812035905c4781fdd6d529b0c6860e13"
    )


def test_checksum_of_none_is_none_and_json_is_compact_with_non_ascii_kept():
    """S5.1: None → None; compact separators; non-ASCII characters kept, not escaped."""
    assert stepped.checksum(None) is None
    value = {"city": "Zürich", "stops": [1, 2.5, True, None]}
    compact = '{"city":"Zürich","stops":[1,2.5,true,null]}'
    assert stepped.checksum(value) == hashlib.sha256(compact.encode()).hexdigest()
    assert stepped.checksum(value) != hashlib.sha256(json.dumps(value).encode()).hexdigest()
    assert stepped.checksum("") != stepped.checksum(None)


def test_checksum_of_rich_values_is_stable():
    """S5.1: rich values digest through their tagged JSON, the same every time."""
    when = dt.datetime(2026, 1, 2, 3, 4, 5)
    assert stepped.checksum([when]) == stepped.checksum([dt.datetime(2026, 1, 2, 3, 4, 5)])
    assert stepped.checksum([when]) != stepped.checksum([when.isoformat()])


async def test_action_checksum_is_the_digest_of_the_checksum_function(stepped_db_env):
    """S3.3: checksum = checksum(fn(actor, *arguments)); None without a function."""
    Car = car_class()
    visit = Car.stepped_action("visit")
    visit.checksum(lambda car, location: [car.id, location])
    visit.step(lambda car, step, location: car.change_location(location))
    car = stepped_db_env.create(Car, id=3)

    result = await stepped.run(car, "visit", "Oslo")
    plain = await stepped.run(car, "drive", 5)

    assert result.checksum == stepped.checksum([3, "Oslo"])
    assert result.checksum_key == "Car/3/visit"
    assert plain.checksum is None
