"""Stepped's custom search attributes, so the Web UI finds actions and lanes (S9.3, S9.5).

``SteppedActor="Car/7" AND SteppedStatus="failed"`` lists what a user looks
for; ``SteppedLane="garage"`` finds the lane workflow of a contended key
(``SteppedLane IS NOT NULL`` lists them all). They must be registered on the
namespace (the dev command and the docker-compose file do it;
`temporal operator search-attribute create`).
"""

from __future__ import annotations

import json
from typing import Any

from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

from .keys import actor_label

ACTOR = SearchAttributeKey.for_keyword("SteppedActor")
ACTION = SearchAttributeKey.for_keyword("SteppedAction")
STATUS = SearchAttributeKey.for_keyword("SteppedStatus")
CONCURRENCY_KEY = SearchAttributeKey.for_keyword("SteppedConcurrencyKey")
#: on lane workflows: the concurrency key whose lane it is
LANE = SearchAttributeKey.for_keyword("SteppedLane")

#: every key, in registration order
ALL = (ACTOR, ACTION, STATUS, CONCURRENCY_KEY, LANE)

#: name -> type, as `temporal operator search-attribute create --name N --type T` takes them
SEARCH_ATTRIBUTES: dict[str, str] = {key.name: "Keyword" for key in ALL}


def initial_search_attributes(actor_type: str, actor_id: Any, name: str) -> TypedSearchAttributes:
    """The attributes an action starts with: actor, action name, status pending."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(ACTOR, actor_label(actor_type, actor_id)),
            SearchAttributePair(ACTION, name),
            SearchAttributePair(STATUS, "pending"),
        ]
    )


def lane_search_attributes(key: str) -> TypedSearchAttributes:
    """The attribute a lane workflow starts with (and keeps across continue-as-new)."""
    return TypedSearchAttributes([SearchAttributePair(LANE, key)])


def summary(actor_type: str, actor_id: Any, name: str, arguments: list[Any]) -> str:
    """The one-line summary the Web UI shows: ``Car/7 visit("London")``."""
    shown = ", ".join(_shown(a) for a in arguments)
    line = f"{actor_label(actor_type, actor_id)} {name}({shown})"
    return line if len(line) <= 200 else line[:197] + "..."


def _shown(value: Any) -> str:
    """An encoded argument for people: actors as ``Car/8``, tagged values by value."""
    if isinstance(value, dict) and "__stepped__" in value:
        if value["__stepped__"] == "actor":
            return actor_label(value["type"], value["id"])
        return _shown(value.get("value"))
    if isinstance(value, list):
        return "[" + ", ".join(_shown(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {_shown(v)}" for k, v in value.items()) + "}"
    return json.dumps(value, ensure_ascii=False, default=str)
