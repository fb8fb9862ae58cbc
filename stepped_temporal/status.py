"""The eight statuses of an action (S3.1)."""

from __future__ import annotations

from enum import StrEnum

from .errors import InvalidStatus


class Status(StrEnum):
    """Status of an action; compares equal to its lowercase name."""

    PENDING = "pending"
    PERFORMING = "performing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SUPERSEDED = "superseded"
    TIMED_OUT = "timed_out"
    DEADLOCKED = "deadlocked"

    @property
    def final(self) -> bool:
        """Whether the status can never change again."""
        return self not in (Status.PENDING, Status.PERFORMING)


#: Lane policies a definition (or `configure`) can name (S4.10); the first is the default.
LANE_POLICIES: tuple[str, ...] = ("supersede", "queue", "cancel_in_progress", "skip_if_busy")


#: Statuses an after-callback can be registered for, and an outbound action completed with.
COMPLETION_STATUSES: tuple[str, ...] = ("succeeded", "failed", "cancelled", "timed_out")


def completion_status(value: object, *, what: str) -> str:
    """Return `value` as one of `COMPLETION_STATUSES`, or raise `InvalidStatus` naming it."""
    name = value.value if isinstance(value, Status) else value
    if name not in COMPLETION_STATUSES:
        raise InvalidStatus(
            f"{what}: {value!r} is not a valid status; "
            f"valid ones are {', '.join(COMPLETION_STATUSES)}"
        )
    assert isinstance(name, str)
    return name
