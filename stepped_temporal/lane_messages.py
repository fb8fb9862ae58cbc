"""The lane workflow's messages: joins, releases, withdrawals, verdicts, conclusions,
its state (S4.1-S4.7, S9.5).

Like `messages`, frozen JSON-safe dataclasses importing nothing but the
standard library, `messages` and `wait_for`, so workflow code can use them
freely; fields are only ever added with defaults.
"""

from dataclasses import dataclass, field

from .messages import Dependency, ErrorData
from .shapes import LaneShape
from .wait_for import Probe

#: the lane behaviour new lane inputs ask for (`LaneState.revision`): 1 — the state
#: records its shape. A worker refuses a lane of a newer revision (versioning.py).
LANE_REVISION = 1


@dataclass(frozen=True)
class LaneHolder:
    """The action holding a key by claim when the key became contended."""

    action_id: str
    checksum_key: str | None = None
    checksum: str | None = None


@dataclass(frozen=True)
class LaneJoin:
    """A candidate joining a lane (S4)."""

    action_id: str
    checksum_key: str | None = None
    checksum: str | None = None
    ancestry: list[str] = field(default_factory=list)
    #: the candidate's own parent dependency (moved to a successor when superseded)
    dependent: Dependency | None = None
    #: the key's claim holder, performing without the lane until now: adopt it first
    holder: LaneHolder | None = None
    #: the candidate's lane policy (S4.10) and, for "queue", its bound
    policy: str = "supersede"
    max_pending: int | None = None


@dataclass(frozen=True)
class LaneRelease:
    """The performing action reached a final status."""

    action_id: str
    status: str
    #: whether its dependents conclude successfully
    successful: bool
    error: ErrorData | None = None
    completed_at: str | None = None


@dataclass(frozen=True)
class LaneWithdraw:
    """A pending action asks to leave the queue (S4.6)."""

    action_id: str


@dataclass(frozen=True)
class Verdict:
    """The lane's word to an action.

    kinds: "perform"; "superseded" (by = successor); "shared" (by = the action it
    shares); "deadlocked" (message); "withdrawn"; "resolved" (the shared action
    ended: status, error, successful, completed_at); "refused" (error: the lane
    policy turned the candidate away, S4.10); "lost" (message: the lane run does
    not hold the action, which asked — its lane was terminated, failed or reset).
    """

    kind: str
    by: str | None = None
    status: str | None = None
    successful: bool = False
    error: ErrorData | None = None
    completed_at: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class Conclusion:
    """A dependency of a parent step concluded (S3.7)."""

    dependency_id: str
    action_id: str
    successful: bool


@dataclass(frozen=True)
class Forward:
    """A dependency now waits on another action (S4.2)."""

    dependency_id: str
    successor: str
    #: successors it waited on in between, merged into this one message (oldest first)
    via: list[str] = field(default_factory=list)
    #: the workflow id of the lane that holds the dependency now (None: a lane of a
    #: release before lane checks), which the waiting parent checks on (`lane_checks`)
    lane: str | None = None


@dataclass(frozen=True)
class LanePing:
    """An action asks its lane whether it still holds what the action waits for: the
    action itself (pending, or shared with another), or — `forwards` — the action's
    dependencies it moved to successors. The lane answers only what it does not
    hold: "lost" to the action, an unsuccessful conclusion per dependency."""

    action_id: str
    forwards: list[Forward] = field(default_factory=list)


@dataclass
class LaneEntry:
    """An action the lane holds, with everyone it answers to."""

    action_id: str
    checksum_key: str | None = None
    checksum: str | None = None
    ancestry: list[str] = field(default_factory=list)
    dependent: Dependency | None = None
    #: dependencies inherited from actions it superseded
    inherited: list[Dependency] = field(default_factory=list)
    #: actions shared with it, told its result when it ends
    followers: list[str] = field(default_factory=list)
    #: a "cancel_in_progress" join has asked it to cancel (S4.10): ask once
    cancelling: bool = False
    #: when it joined (`wait_for.stamp`), and when each follower did (S4.9)
    joined_at: str | None = None
    follower_joined: dict[str, str] = field(default_factory=dict)


@dataclass
class Outgoing:
    """A message the lane still has to send: one of the four payloads, or `cancel`
    (the action's own `cancel` signal, which takes no argument)."""

    workflow_id: str
    verdict: Verdict | None = None
    forward: Forward | None = None
    conclusion: Conclusion | None = None
    #: a perform verdict: if the action is gone, the lane must not wait for it
    grant: bool = False
    #: cancel the performing action (S4.10 "cancel_in_progress")
    cancel: bool = False
    #: a deadlock probe (S4.9), to an action or a lane
    probe: Probe | None = None

    @property
    def signal(self) -> str:
        """The signal name on the receiving workflow."""
        if self.cancel:
            return "cancel"
        if self.probe:
            return "probe"
        return "verdict" if self.verdict else "forward" if self.forward else "conclude"

    @property
    def payload(self) -> Verdict | Forward | Conclusion | Probe:
        """The signal's argument."""
        found = self.verdict or self.forward or self.conclusion or self.probe
        assert found is not None
        return found

    @classmethod
    def of(
        cls,
        workflow_id: str,
        payload: Verdict | Forward | Conclusion | Probe,
        *,
        grant: bool = False,
    ) -> "Outgoing":
        """The message carrying `payload` to `workflow_id`."""
        if isinstance(payload, Verdict):
            return cls(workflow_id, verdict=payload, grant=grant)
        if isinstance(payload, Forward):
            return cls(workflow_id, forward=payload, grant=grant)
        if isinstance(payload, Probe):
            return cls(workflow_id, probe=payload)
        return cls(workflow_id, conclusion=payload, grant=grant)


@dataclass(frozen=True)
class Handover:
    """An action the lane resolved by handing it to another (S4.2, S4.3)."""

    action_id: str
    #: the successor (superseded) or the action it shares (shared)
    to: str
    #: "superseded" or "shared"
    how: str


@dataclass
class LaneState:
    """A lane's whole state; carried across continue-as-new."""

    key: str
    performing: LaneEntry | None = None
    pending: list[LaneEntry] = field(default_factory=list)
    #: ids of actions that left recently, so a repeated join is ignored
    recent: list[str] = field(default_factory=list)
    idle_seconds: float = 10.0
    #: how many actions this lane has granted over its lifetime
    granted: int = 0
    runs: int = 1
    #: messages not sent yet: carried across continue-as-new, so it never waits on them
    outbox: list[Outgoing] = field(default_factory=list)
    #: on a time-skipping test server: its idle timer is never cancelled (timers.py)
    test_server: bool = False
    #: the latest superseded and shared actions and whom each was handed to (S9.5)
    handovers: list[Handover] = field(default_factory=list)
    #: the numbers that shape this run's commands, set when the run was created
    shape: LaneShape = field(default_factory=LaneShape)
    #: the lane behaviour the run was created for (`LANE_REVISION`; 0: before it)
    revision: int = 0


@dataclass
class LaneView:
    """What the lane's `view` query answers (S9.5, S11.2): the counts exact, the ids
    bounded — the first pending ones and the latest, those between left out."""

    performing: str | None = None
    pending_count: int = 0
    pending_first: list[str] = field(default_factory=list)
    pending_latest: list[str] = field(default_factory=list)
    handovers: list[Handover] = field(default_factory=list)
