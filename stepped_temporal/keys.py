"""How actors and actions are named (S1.3) — standard library only, so workflow
code can use it too."""

from __future__ import annotations

from typing import Any


def actor_label(actor_type: str, actor_id: Any) -> str:
    """``Car/7``: an actor's type name and id (a composite id joined with "/")."""
    id_text = "/".join(map(str, actor_id)) if isinstance(actor_id, list) else str(actor_id)
    return f"{actor_type}/{id_text}"


def tenancy_key(actor_type: str, actor_id: Any, name: str) -> str:
    """``"<TypeName>/<id>/<action name>"`` (S1.3)."""
    return f"{actor_label(actor_type, actor_id)}/{name}"
