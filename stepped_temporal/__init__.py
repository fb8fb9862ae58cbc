"""stepped_temporal: the Stepped workflow API for SQLAlchemy models, on Temporal.

Declare actions on models (`Actor.stepped_action`), start them
(`start`, `run`, ``<name>_later``, ``<name>_now``), and run a worker
(`create_worker`). The rules are SEMANTICS.md S1-S10, the names API.md;
`docs/architecture.md` shows where each rule lives.
"""

from temporalio.common import RetryPolicy

from .action import Action, Step
from .actors import Actor
from .checksums import checksum
from .client import ActionHandle, SettledActionHandle, action_handle, run, start
from .completing import complete
from .config import configure
from .definitions import Definition
from .errors import (
    ActionNotFound,
    ActorNotFound,
    ArgumentTypeError,
    ArgumentValueError,
    Deadlock,
    DefinitionError,
    InvalidStatus,
    NotConfigured,
    SteppedError,
    UnknownActorType,
    WorkerLost,
)
from .lane_view import LaneHandover, LaneState, lane
from .listings import lane_pending, performing_outbound
from .results import ActionError, ActionResult, ActionState, ActorRef, StepState
from .shapes import ServerLimits
from .status import Status
from .worker import create_worker

__all__ = [
    "Action",
    "ActionError",
    "ActionHandle",
    "ActionNotFound",
    "ActionResult",
    "ActionState",
    "Actor",
    "ActorNotFound",
    "ActorRef",
    "ArgumentTypeError",
    "ArgumentValueError",
    "Deadlock",
    "Definition",
    "DefinitionError",
    "InvalidStatus",
    "LaneHandover",
    "LaneState",
    "NotConfigured",
    "RetryPolicy",
    "ServerLimits",
    "SettledActionHandle",
    "Status",
    "Step",
    "StepState",
    "SteppedError",
    "UnknownActorType",
    "WorkerLost",
    "action_handle",
    "checksum",
    "complete",
    "configure",
    "create_worker",
    "lane",
    "lane_pending",
    "performing_outbound",
    "run",
    "start",
]
