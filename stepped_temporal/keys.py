"""How actors and actions are named (S1.3), and the order in which one step's
children join their lanes (S4.8) — standard library only, so workflow code can
use it too."""

from __future__ import annotations

from typing import Any

#: lane workflow ids are this prefix and the concurrency key (S4)
LANE_PREFIX = "stepped-lane/"


def actor_label(actor_type: str, actor_id: Any) -> str:
    """``Car/7``: an actor's type name and id (a composite id joined with "/")."""
    id_text = "/".join(map(str, actor_id)) if isinstance(actor_id, list) else str(actor_id)
    return f"{actor_type}/{id_text}"


def tenancy_key(actor_type: str, actor_id: Any, name: str) -> str:
    """``"<TypeName>/<id>/<action name>"`` (S1.3)."""
    return f"{actor_label(actor_type, actor_id)}/{name}"


def join_order(keys: list[str | None]) -> list[list[int]] | None:
    """For one step's children, in call order, with their concurrency keys (None
    where a child's key cannot be known before it runs — a `before` hook may
    change its arguments): per child, the earlier children that must have joined
    their lanes before it joins (S4.8). None when no child waits for another.

    Children on different keys join in any order; one on a known key waits for
    the latest earlier child on that key or of unknown key; one of unknown key
    waits for everything before it (the latest of each key since the last
    unknown, and that unknown), and everything after it waits for it.
    """
    order: list[list[int]] = []
    last_by_key: dict[str, int] = {}
    last_unknown: int | None = None
    for index, key in enumerate(keys):
        if key is None:
            earlier = set(last_by_key.values())
            if last_unknown is not None:
                earlier.add(last_unknown)
            order.append(sorted(earlier))
            last_by_key, last_unknown = {}, index
            continue
        candidates = [i for i in (last_by_key.get(key), last_unknown) if i is not None]
        order.append([max(candidates)] if candidates else [])
        last_by_key[key] = index
    return order if any(order) else None


def lane_id(concurrency_key: str) -> str:
    """The lane workflow id of a concurrency key."""
    return LANE_PREFIX + concurrency_key
