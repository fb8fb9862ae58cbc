"""`Dependencies`: what an action's steps wait on, counted per id (S3.7, S3.14,
S4.2, S4.8, S4.9, S9.2).

Dependencies conclude by message (`conclude` signals), not by awaiting a
child's result: an action that was superseded hands its dependents to its
successor, and the lane — which sees every join and release in order — tells
them when that successor ends (S4.2, S4.3). A dependency is counted per id, so
several dependencies moved to one successor each still need their conclusion.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from .bounds import step_at
    from .lane_messages import Forward
    from .messages import ActionData, StepData

__all__ = ["Dependencies"]


class _Dependency:
    __slots__ = ("concluded", "counted", "lane", "number", "started", "step", "target")

    def __init__(self, step: int, number: int, target: str | None) -> None:
        self.step = step
        #: its place among the step's calls
        self.number = number
        self.concluded = False
        #: its child's start was answered (a child waits to start while the window is full)
        self.started = False
        #: the action it waits on: the child, then any successor (None: a timer)
        self.target = target
        #: the lane that moved it to a successor, and answers for it now
        self.lane: str | None = None
        #: counted in `Dependencies.open`
        self.counted = False


class Dependencies:
    """The children and timers an action's steps wait on, by dependency id."""

    def __init__(self, data: ActionData) -> None:
        self._data = data
        self._records: dict[str, _Dependency] = {}
        #: children that reported joining their lanes (`ActionInput.report_joined`)
        self._joined: set[str] = set()
        #: started children and timers not concluded yet: each still adds events to
        #: the history as it ends or is given up (`history_limits`)
        self.open = 0
        #: ... of which timers (the rest: children started and not concluded)
        self.timers = 0

    def add(self, dependency_id: str, step: int, number: int = 0, *, child: bool = True) -> None:
        """Step `step` waits on `dependency_id`, its call number `number` (S3.7): the
        child of that id, or a timer."""
        target = dependency_id if child else None
        record = self._records[dependency_id] = _Dependency(step, number, target)
        if not child:  # a timer starts at once
            record.counted = True
            self.open += 1
            self.timers += 1

    def _step(self, index: int) -> StepData:
        """Step `index` (one of this run's: the last steps of `ActionData.steps`)."""
        step = step_at(self._data, index)
        assert step is not None, index
        return step

    def conclude(self, dependency_id: str, successful: bool) -> None:
        """A dependency concluded: once per id, however often it is reported (S3.7, S4.2)."""
        dependency = self._records.get(dependency_id)
        if dependency is None or dependency.concluded:
            return
        dependency.concluded = True
        if dependency.counted:
            self.open -= 1
            if dependency.target is None:
                self.timers -= 1
        step = self._step(dependency.step)
        step.pending_actions_count -= 1
        if not successful:
            step.unsuccessful_actions_count += 1

    def concluded(self, dependency_id: str) -> bool:
        """Whether the dependency concluded already."""
        return self._records[dependency_id].concluded

    def forward(self, dependency_id: str, successor: str, lane: str | None = None) -> None:
        """A dependency now waits on `successor`, held by `lane`: list it in the waiting
        step too (S4.2). (A lane sends a parent its forwards in order, `lane_outbox`:
        the last wins.)"""
        dependency = self._records.get(dependency_id)
        if dependency is None:
            return
        if dependency.target is not None and not dependency.concluded:
            dependency.target = successor
            dependency.lane = lane
        actions = self._step(dependency.step).actions
        if successor not in actions:
            actions.append(successor)

    def waits_on(self, *, started: bool = False) -> set[str]:
        """The actions the current step still waits on (S4.9's wait-for edges); with
        `started`, only those whose workflows exist (a child the window holds back
        waits on nobody yet)."""
        return {
            record.target
            for record in self._records.values()
            if record.target is not None
            and not record.concluded
            and (record.started or not started)
        }

    def forwarded(self) -> dict[str, list[Forward]]:
        """The dependencies still waiting on a successor a lane moved them to, by lane
        (what `lane_checks` asks each lane about), in the order they were added."""
        by_lane: dict[str, list[Forward]] = {}
        for dependency_id, record in self._records.items():
            if record.lane is not None and record.target is not None and not record.concluded:
                by_lane.setdefault(record.lane, []).append(Forward(dependency_id, record.target))
        return by_lane

    def list_started(self, child_id: str) -> None:
        """List a started child in its step's `actions`, in call order (S9.2)."""
        dependency = self._records[child_id]
        dependency.started = True
        if not dependency.concluded and not dependency.counted:
            dependency.counted = True
            self.open += 1
        actions = self._step(dependency.step).actions

        def later(other_id: str) -> bool:
            other = self._records.get(other_id)
            return other is not None and other.number > dependency.number

        if not actions or not later(actions[-1]):  # starts come in call order, mostly
            actions.append(child_id)
            return
        position = next(i for i, other_id in enumerate(actions) if later(other_id))
        actions.insert(position, child_id)

    def joined(self, child_id: str) -> None:
        """A child that later siblings join after has joined its lane (S4.8)."""
        self._joined.add(child_id)

    def in_lane(self, child_id: str) -> bool:
        """The child has joined its lane: it said so, or it concluded (S4.8)."""
        dependency = self._records[child_id]
        return child_id in self._joined or dependency.concluded
