"""Errors users can catch.

SteppedError
├── ActorNotFound            the actor an action names no longer exists (S1.6)
├── UnknownActorType         a type name no registered actor class carries (S1.2)
├── ActionNotFound           the name is neither declared nor a public method (S2.3)
├── Deadlock                 a descendant joined its ancestor's lane (S4.4)
├── DefinitionError          a definition cannot be interpreted (missing step, bad key)
├── ArgumentTypeError        also a TypeError: an argument that cannot travel (S1.5)
├── ArgumentValueError       also a ValueError: arguments too large to travel, a negative wait
├── InvalidStatus            also a ValueError: a status name that is not valid (S2.5, S6.1)
├── NotConfigured            stepped_temporal.configure() was not called
└── WorkerLost               a unit's worker died too many times in a row running it (S8.2)
"""

from __future__ import annotations


class SteppedError(Exception):
    """The root of every error stepped_temporal raises on purpose."""


class ActorNotFound(SteppedError):
    """The actor an action belongs to cannot be loaded (it was deleted)."""


class UnknownActorType(SteppedError):
    """A type name that no registered `Actor` subclass carries."""


class ActionNotFound(SteppedError):
    """An action name that is neither declared nor a public method of the actor."""


class Deadlock(SteppedError):
    """A descendant action joined the lane its ancestor is performing in."""


class DefinitionError(SteppedError):
    """A definition that cannot be interpreted as asked (e.g. a step that no longer exists)."""


class ArgumentTypeError(SteppedError, TypeError):
    """An argument of a type that cannot travel with an action."""


class ArgumentValueError(SteppedError, ValueError):
    """A value Stepped cannot accept: arguments too large to travel, a negative wait."""


class InvalidStatus(SteppedError, ValueError):
    """A status name outside the valid ones for that call."""


class NotConfigured(SteppedError):
    """stepped_temporal is used before `configure()` set a client and a database."""


class WorkerLost(SteppedError):
    """A unit of user code (a before hook, a step, a job, an after-callback) whose worker
    died `configure(worker_loss_limit=...)` times in a row while running it — a poison
    pill (out of memory, a crash in native code): the action fails instead of killing
    every worker that picks it up (S8.2)."""
