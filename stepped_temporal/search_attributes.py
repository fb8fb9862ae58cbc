"""Stepped's custom search attributes, so the Web UI finds actions (S9.3).

``SteppedActor="Car/7" AND SteppedStatus="failed"`` lists what a user looks
for. They must be registered on the namespace (the dev command and the
docker-compose file do it; `temporal operator search-attribute create`).
"""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

ACTOR = SearchAttributeKey.for_keyword("SteppedActor")
ACTION = SearchAttributeKey.for_keyword("SteppedAction")
STATUS = SearchAttributeKey.for_keyword("SteppedStatus")
CONCURRENCY_KEY = SearchAttributeKey.for_keyword("SteppedConcurrencyKey")

#: every key, in registration order
ALL = (ACTOR, ACTION, STATUS, CONCURRENCY_KEY)

#: name -> type, as `temporal operator search-attribute create --name N --type T` takes them
SEARCH_ATTRIBUTES: dict[str, str] = {key.name: "Keyword" for key in ALL}
