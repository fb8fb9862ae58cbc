"""`checksum(value)`: the digest that identifies achieved work (S5.1)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .arguments import to_json_value


def checksum(value: Any) -> str | None:
    """SHA-256 hex digest of the compact JSON of `value`, or None for None.

    The JSON is compact (``separators=(",", ":")``) with non-ASCII kept, so the
    digest equals the Ruby gem's ``Digest::SHA256.hexdigest(value.to_json)``.
    """
    if value is None:
        return None
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_json_default)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _json_default(value: Any) -> Any:
    return to_json_value(value)
