"""The bad-input catalogue: every mistake a user (or a forged payload) can make.

Each case asserts two things: a clear error whose message names the culprit
(the argument path, the action name, the class, the status, the size ...), and
that nothing was started or lost: a call refused before start starts nothing, a
step that asks for something refused starts none of its children and fails, and
its parent ends failed instead of waiting.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from temporalio.client import WorkflowFailureError

import stepped_temporal as stepped
from stepped_temporal.config import settings
from stepped_temporal.failures import FAILURE_TYPES, action_data
from stepped_temporal.messages import PAYLOAD_VERSION, ActionData, ActionInput
from stepped_temporal.testing import handle_stepped_action_exceptions
from tests.support import activity_attempts, car_class, until

#: 3 MiB: past the 2 MB a Temporal server accepts in one payload (BlobSizeLimitError).
OVERSIZED = "x" * (3 * 1024 * 1024)


async def _forged(env, **fields: Any) -> ActionData:
    """Start `SteppedAction` directly with a hand-made input; its final data."""
    task_queue = settings().task_queue
    action_id = f"forged/{uuid.uuid4().hex[:12]}"
    values: dict[str, Any] = {
        "action_id": action_id,
        "actor_type": "Car",
        "actor_id": 1,
        "name": "drive",
        "arguments": [5],
        "task_queue": task_queue,
        **fields,
    }
    handle = await env.client.start_workflow(
        "SteppedAction",
        ActionInput(**values),
        id=action_id,
        task_queue=task_queue,
        result_type=ActionData,
    )
    try:
        return await asyncio.wait_for(handle.result(), 30)
    except WorkflowFailureError as error:  # S9.4: an unsuccessful action fails its workflow
        data = action_data(error.cause)
        assert data is not None, error.cause
        assert error.cause.type == FAILURE_TYPES[data.status]  # type: ignore[union-attr]
        return data


def _refused_early(data: ActionData, error_type: str) -> str:
    """A forged action failed before joining a lane or running a step; its message."""
    assert data.status == "failed", data
    assert data.error is not None and data.error.type == error_type, data.error
    assert data.completed_at is not None
    assert data.started_at is None and data.steps == []
    assert data.concurrency_key is None  # it never joined (or claimed) a lane
    return data.error.message


async def _result(handle: stepped.ActionHandle) -> stepped.ActionResult:
    """The final result; a hanging action fails the test instead of stalling it."""
    return await asyncio.wait_for(handle.result(), 30)


async def _failed_parent(env, car, name: str, error_type: str) -> str:
    """Run `name` (whose step asks for something refused): it fails, its step started
    no child, and nothing was left performing. Returns the error message."""
    result = await _result(await stepped.start(car, name))
    assert result.status == "failed", result
    assert result.error is not None and result.error.type == error_type, result.error
    (step,) = result.steps
    assert step.status == "failed"
    assert step.actions == () and step.waits == ()
    assert [s.id for s in await env.actions()] == [result.id]
    return result.error.message


def _steps_done(state) -> bool:
    """Performing, its last step succeeded: only the completion from outside is left."""
    done = bool(state.steps) and state.steps[-1].status == "succeeded"
    return state.status == "performing" and done


@pytest.fixture
def safe(stepped_env):
    """Safe 1: a plain (unmapped) actor whose methods record in `calls` that they ran.

    Declared inside the environment, so its registration is forgotten after the test.
    """

    class Safe(stepped.Actor):
        __stepped_name__ = "BadInputSafe"
        vault: ClassVar[dict[int, Any]] = {}
        calls: ClassVar[list[str]] = []

        def __init__(self, id: int) -> None:
            self.id = id
            Safe.calls.append("__init__")

        @classmethod
        def stepped_find(cls, id: int) -> Any:
            return cls.vault.get(id)

        def _secret(self) -> None:
            Safe.calls.append("_secret")

    Safe.vault[1] = Safe(1)
    Safe.calls.clear()
    return Safe.vault[1]


# -- 1. unknown actor type in a forged workflow input ------------------------


async def test_01_forged_input_with_an_unknown_actor_type_fails_and_imports_nothing(
    stepped_env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """S1.2: a type name no registered class carries fails the action, naming the type;
    names that look like module paths are never imported."""
    Car = car_class()
    stepped_env.create(Car, id=1)
    module = "stepped_bad_input_bait"
    (tmp_path / f"{module}.py").write_text(
        "import stepped_temporal as stepped\n\n\nclass Car(stepped.Actor):\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))

    for type_name in ("Lorry", f"{module}.Car", f"{module}:Car", "os.path"):
        data = await _forged(stepped_env, actor_type=type_name)

        message = _refused_early(data, "UnknownActorType")
        assert repr(type_name) in message, message

    assert module not in sys.modules
    assert stepped_env.reload(Car(id=1)).mileage == 0


# -- 2. an actor class that is not a registered stepped Actor ----------------


async def test_02_a_class_that_is_not_an_actor_is_refused_before_start(stepped_env):
    """S1.1, S1.5: start() on an instance of a class that does not subclass Actor raises
    ArgumentTypeError naming the class; nothing starts."""

    class Bike:
        def __init__(self, id: int) -> None:
            self.id = id

        def drive(self, miles: int) -> None:
            raise AssertionError("never called")

    with pytest.raises(stepped.ArgumentTypeError) as info:
        await stepped.start(Bike(1), "drive", 5)  # type: ignore[arg-type]

    message = str(info.value)
    assert "Bike" in message and "stepped_temporal.Actor" in message, message
    assert stepped_env.started == []


async def test_02_a_class_that_is_not_the_registered_one_is_refused_before_start(stepped_env):
    """S1.1, S1.2: an instance of a class the registry no longer holds (replaced by a
    rebuilt class of the same name) raises UnknownActorType naming class and type."""
    Old = car_class()
    car = stepped_env.create(Old, id=1)
    New = car_class()  # same module and qualname: replaces Old in the registry

    with pytest.raises(stepped.UnknownActorType) as info:
        await stepped.start(car, "drive", 5)

    message = str(info.value)
    assert Old.__qualname__ in message and "'Car'" in message, message
    assert stepped_env.started == []
    assert stepped_env.reload(New(id=1)).mileage == 0


async def test_02_a_step_asking_for_an_action_on_a_non_actor_fails_its_parent(stepped_env):
    """S3.11, S3.14: step.on() with something that is not an actor fails the step (the
    error names the class), starts no child, and the parent ends failed."""

    class Bike:
        def __init__(self, id: int) -> None:
            self.id = id

    Car = car_class()
    Car.stepped_action("lead").step(lambda car, step: step.on(Bike(2), "drive", 1))
    Car.stepped_action("lead_all").step(lambda car, step: step.on([car, Bike(2)], "drive", 1))
    car = stepped_env.create(Car, id=1)

    for name in ("lead", "lead_all"):
        result = await _result(await stepped.start(car, name))

        assert result.status == "failed", name
        assert result.error is not None and "Bike" in result.error.message, result.error
        assert "Actor" in result.error.message, result.error
        assert result.steps[0].status == "failed" and result.steps[0].actions == ()
    await stepped_env.assert_action_not_started(car, "drive")
    assert stepped_env.reload(car).mileage == 0


# -- 3. unknown action name --------------------------------------------------


async def test_03_an_unknown_action_name_is_refused_before_start(stepped_env):
    """S2.3: a name neither declared nor a public method raises ActionNotFound naming the
    name and the actor type; nothing starts."""
    Car = car_class()
    car = stepped_env.create(Car, id=1)

    with pytest.raises(stepped.ActionNotFound) as info:
        await stepped.start(car, "fly", 100)

    message = str(info.value)
    assert "'fly'" in message and "Car" in message, message
    assert stepped_env.started == []
    await stepped_env.assert_action_not_started(car, "fly")


async def test_03_a_forged_input_with_an_unknown_action_name_fails(stepped_env):
    """S2.3: a workflow input naming an action that does not exist fails, naming it."""
    Car = car_class()
    stepped_env.create(Car, id=1)

    data = await _forged(stepped_env, name="fly")

    message = _refused_early(data, "ActionNotFound")
    assert "'fly'" in message and "Car" in message, message


async def test_03_a_child_with_an_unknown_action_name_fails_its_parent(stepped_env):
    """S2.3, S3.14: step.do() of an unknown name fails the step; no child (not even the
    valid one asked for first) starts; the parent ends failed."""
    Car = car_class()

    @Car.stepped_action("errand").step
    def _(car, step):
        step.do("honk")
        step.do("fly")

    car = stepped_env.create(Car, id=1)

    message = await _failed_parent(stepped_env, car, "errand", "ActionNotFound")

    assert "'fly'" in message and "Car" in message, message
    await stepped_env.assert_action_not_started(car, "honk")
    assert stepped_env.reload(car).honks == 0


# -- 4. private method names -------------------------------------------------


async def test_04_private_method_names_are_refused_and_never_called(stepped_env, safe):
    """S2.3: "_secret" and "__init__" are not actions: start() raises ActionNotFound
    naming them, nothing starts, and the methods are never called."""
    for name in ("_secret", "__init__", "__class__", "stepped_find"):
        with pytest.raises(stepped.ActionNotFound) as info:
            await stepped.start(safe, name)
        assert repr(name) in str(info.value), info.value

    with pytest.raises(stepped.DefinitionError, match="'_secret'"):
        type(safe).stepped_action("_secret")

    assert stepped_env.started == []
    assert safe.calls == []


async def test_04_forged_inputs_naming_private_methods_fail_and_never_call_them(stepped_env, safe):
    """S2.3, S1.2: a forged workflow input cannot reach a private method either."""
    for name in ("_secret", "__init__"):
        data = await _forged(stepped_env, actor_type="BadInputSafe", name=name, arguments=[])

        message = _refused_early(data, "ActionNotFound")
        assert repr(name) in message, message

    assert safe.calls == []


async def test_04_a_child_naming_a_private_method_fails_its_parent(stepped_env, safe):
    """S2.3, S3.14: step.do("_secret") fails the step, calls nothing, parent fails."""
    crack = type(safe).stepped_action("crack")
    crack.step(lambda safe, step: step.do("_secret"))

    message = await _failed_parent(stepped_env, safe, "crack", "ActionNotFound")

    assert "'_secret'" in message, message
    assert safe.calls == []


# -- 5. arguments that cannot travel -----------------------------------------


async def test_05_non_serialisable_arguments_are_refused_before_start_naming_the_path(
    stepped_env,
):
    """S1.5: top-level and nested values that cannot travel raise ArgumentTypeError naming
    the argument's path and type; nothing starts."""
    Car = car_class()
    car = stepped_env.create(Car, id=1)
    cases = [
        ((object(),), "argument 1", "object"),
        ((1, {"a": [object()]}), "argument 2['a'][0]", "object"),
        (([1, {"deep": [[{"b": {1, 2}}]]}],), "argument 1[1]['deep'][0][0]['b']", "set"),
    ]

    for arguments, path, type_name in cases:
        with pytest.raises(stepped.ArgumentTypeError) as info:
            await stepped.start(car, "drive", *arguments)
        message = str(info.value)
        assert path in message and type_name in message, message
        assert "Car/1/drive" in message, message

    assert stepped_env.started == []
    await stepped_env.assert_action_not_started(car, "drive")


async def test_05_a_child_with_a_non_serialisable_argument_fails_its_parent(stepped_env):
    """S1.5, S3.6: step.do() with a nested object() fails the step naming the path; no
    child starts; the parent ends failed."""
    Car = car_class()
    Car.stepped_action("relay").step(lambda car, step: step.do("drive", {"a": [object()]}))
    car = stepped_env.create(Car, id=1)

    message = await _failed_parent(stepped_env, car, "relay", "ArgumentTypeError")

    assert "argument 1['a'][0]" in message and "object" in message, message
    await stepped_env.assert_action_not_started(car, "drive")


# -- 6. oversized arguments --------------------------------------------------


def _assert_names_the_size(message: str) -> None:
    """The message says how big the arguments are (bytes, or MB/MiB to one decimal)."""
    assert "argument" in message.lower(), message
    numbers = [int(n) for n in re.findall(r"\d+", re.sub(r"(?<=\d)[,_ ](?=\d)", "", message))]
    in_bytes = any(len(OVERSIZED) <= n <= len(OVERSIZED) + 100 for n in numbers)
    in_megabytes = any(size in message for size in ("3.0 MiB", "3.1 MB", "3.0 MB"))
    assert in_bytes or in_megabytes, message


async def test_06_oversized_arguments_are_refused_before_start_naming_the_size(stepped_env):
    """Temporal refuses payloads over 2 MB: start() refuses 3 MB of arguments itself,
    before anything is sent, naming their size; nothing starts."""
    Car = car_class()
    car = stepped_env.create(Car, id=1)

    with pytest.raises(stepped.SteppedError) as info:
        await stepped.start(car, "change_location", OVERSIZED)

    _assert_names_the_size(str(info.value))
    assert "Car/1/change_location" in str(info.value)
    assert stepped_env.started == []
    await stepped_env.assert_action_not_started(car, "change_location")
    assert stepped_env.reload(car).location is None


async def test_06_a_child_with_oversized_arguments_fails_its_parent(stepped_env):
    """A step asking for a child with 3 MB of arguments fails naming the size; no child
    starts (the step's own outcome would exceed Temporal's limit); the parent fails."""
    Car = car_class()
    Car.stepped_action("relay").step(lambda car, step: step.do("change_location", OVERSIZED))
    car = stepped_env.create(Car, id=1)

    result = await _result(await stepped.start(car, "relay"))

    assert result.status == "failed"
    assert result.error is not None
    _assert_names_the_size(result.error.message)
    assert result.steps[0].status == "failed" and result.steps[0].actions == ()
    await stepped_env.assert_action_not_started(car, "change_location")
    assert stepped_env.reload(car).location is None


# -- 7. an invalid status for complete() -------------------------------------


async def test_07_complete_with_an_invalid_status_raises_and_changes_nothing(stepped_env):
    """S6.1: complete() with a status outside succeeded/failed/cancelled/timed_out raises
    InvalidStatus naming it and the valid ones; the outbound action keeps performing."""
    Car = car_class()
    Car.stepped_action("paint", outbound=True).step(lambda car, step: car.honk())
    car = stepped_env.create(Car, id=1)
    handle = await stepped.start(car, "paint")
    await until(handle, _steps_done)  # completing while a step runs is another matter

    for status in ("done", "pending", stepped.Status.SUPERSEDED, None, "SUCCEEDED"):
        with pytest.raises(stepped.InvalidStatus) as info:
            await stepped.complete(car, "paint", status)  # type: ignore[arg-type]
        message = str(info.value)
        assert repr(status) in message and "paint" in message, message
        assert "succeeded, failed, cancelled, timed_out" in message, message
    with pytest.raises(stepped.InvalidStatus, match="'bogus'"):
        await car.complete_stepped_action("paint", "bogus")

    state = await handle.describe()
    assert state.status == "performing" and state.completed_at is None
    assert await stepped.complete(car, "paint", "succeeded") is True
    assert (await _result(handle)).status == "succeeded"


# -- 8. an invalid status in a definition ------------------------------------


async def test_08_after_with_an_invalid_status_raises_and_registers_nothing(stepped_env):
    """S2.5: after("bogus") raises InvalidStatus naming it and the valid ones; no callback
    is registered, not even for the valid statuses listed with it."""
    Car = car_class()
    tour = Car.stepped_action("tour")

    for statuses in (("bogus",), ("succeeded", "bogus"), ("superseded",)):
        with pytest.raises(stepped.InvalidStatus) as info:
            tour.after(*statuses)
        message = str(info.value)
        assert repr(statuses[-1]) in message and "tour" in message, message
        assert "succeeded, failed, cancelled, timed_out" in message, message

    def honk_after(car, action):
        car.honk()

    with pytest.raises(stepped.InvalidStatus, match="honk_after"):
        tour.after(honk_after)  # type: ignore[arg-type]  # forgot the parentheses
    assert tour.after_callbacks == []


async def test_08_after_stepped_action_with_an_invalid_status_declares_nothing(stepped_env):
    """S2.4, S2.5: Car.after_stepped_action("fly", "bogus") raises and leaves the class as
    it was: "fly" is still undeclared, so starting it is still refused up front."""
    Car = car_class()
    car = stepped_env.create(Car, id=1)

    with pytest.raises(stepped.InvalidStatus, match="'bogus'"):
        Car.after_stepped_action("fly", "bogus")

    assert Car.stepped_definition("fly") is None
    assert not hasattr(Car, "fly_later")
    with pytest.raises(stepped.ActionNotFound):
        await stepped.start(car, "fly")
    assert stepped_env.started == []


# -- 9. a step body returning a coroutine ------------------------------------


async def test_09_an_async_step_body_fails_the_action_naming_the_function(stepped_env):
    """S3.6: a step defined with `async def` fails its action with a DefinitionError naming
    the function; what its body would have asked for never starts."""
    Car = car_class()

    async def warm_up_engine(car, step):
        step.do("honk")

    Car.stepped_action("warm_up").step(warm_up_engine)
    car = stepped_env.create(Car, id=1)

    result = await _result(await stepped.start(car, "warm_up"))

    assert result.status == "failed"
    assert result.error is not None and result.error.type == "DefinitionError"
    assert "warm_up_engine" in result.error.message, result.error
    assert "async" in result.error.message or "awaitable" in result.error.message
    assert [s.status for s in result.steps] == ["failed"] and result.steps[0].actions == ()
    await stepped_env.assert_action_not_started(car, "honk")


async def test_09_an_async_before_hook_fails_the_action_naming_the_function(stepped_env):
    """S3.2: an `async def` before hook fails the action at once, naming the function;
    no step runs."""
    Car = car_class()
    ran = []

    async def check_tyres(car, action):
        action.cancel()

    tune = Car.stepped_action("tune")
    tune.before(check_tyres)
    tune.step(lambda car, step: ran.append(step.index))
    car = stepped_env.create(Car, id=1)

    result = await _result(await stepped.start(car, "tune"))

    assert result.status == "failed"
    assert result.error is not None and "check_tyres" in result.error.message, result.error
    assert ran == [] and result.steps == ()


# -- 10. step.do outside a step ----------------------------------------------


async def test_10_step_do_after_the_body_returned_raises_and_starts_nothing(stepped_env):
    """S3.6: a Step kept past its body refuses do/on/wait, naming the step and action."""
    Car = car_class()
    kept: list[stepped.Step] = []
    Car.stepped_action("errand").step(lambda car, step: kept.append(step))
    car = stepped_env.create(Car, id=1)

    result = await _result(await stepped.start(car, "errand"))
    assert result.status == "succeeded"
    (step,) = kept

    for call in (lambda: step.do("honk"), lambda: step.on(car, "honk"), lambda: step.wait(5)):
        with pytest.raises(stepped.SteppedError) as info:
            call()
        message = str(info.value)
        assert "step 0" in message and result.id in message and "returned" in message, message

    assert step.children == [] and step.waits == []
    await stepped_env.assert_action_not_started(car, "honk")


async def test_10_step_do_on_an_earlier_step_fails_the_action(stepped_env):
    """S3.6: step 1 calling step 0's `do` fails the action, naming step 0; nothing starts."""
    Car = car_class()
    kept: list[stepped.Step] = []
    errand = Car.stepped_action("errand")
    errand.step(lambda car, step: kept.append(step))
    errand.step(lambda car, step: kept[0].do("honk"))
    car = stepped_env.create(Car, id=1)

    result = await _result(await stepped.start(car, "errand"))

    assert result.status == "failed"
    assert result.error is not None and "step.do" in result.error.message, result.error
    assert "step 0" in result.error.message
    assert [s.status for s in result.steps] == ["succeeded", "failed"]
    assert all(s.actions == () for s in result.steps)
    await stepped_env.assert_action_not_started(car, "honk")


async def test_10_step_do_from_an_after_callback_is_refused(stepped_env, caplog):
    """S3.9: a callback using a kept Step is refused: counted as a failed callback (the
    error, naming step.do, is logged), the status stays, and no child starts."""
    Car = car_class()
    kept: list[stepped.Step] = []
    errand = Car.stepped_action("errand")
    errand.step(lambda car, step: kept.append(step))
    errand.succeeded(lambda car, action: kept[0].do("honk"))
    car = stepped_env.create(Car, id=1)

    with caplog.at_level(logging.WARNING, logger="stepped_temporal"):
        result = await _result(await stepped.start(car, "errand"))

    assert result.status == "succeeded"
    assert result.after_callbacks_failed_count == 1
    assert "step.do called after step 0" in caplog.text
    await stepped_env.assert_action_not_started(car, "honk")


# -- 11. step.wait with a negative duration ----------------------------------


async def test_11_a_negative_wait_fails_the_step_naming_the_duration(stepped_env):
    """S3.12, S3.6: step.wait(-1) fails the step with an error naming the duration; the
    dependencies the body asked for before it never start."""
    Car = car_class()

    @Car.stepped_action("pause").step
    def _(car, step, seconds):
        step.do("honk")
        step.wait(timedelta(seconds=seconds) if seconds % 2 else seconds)

    car = stepped_env.create(Car, id=1)

    for seconds, shown in ((-2, "-2"), (-3, repr(timedelta(seconds=-3)))):
        result = await _result(await stepped.start(car, "pause", seconds))

        assert result.status == "failed"
        assert result.error is not None and "negative" in result.error.message, result.error
        assert shown in result.error.message, result.error
        assert result.steps[0].actions == () and result.steps[0].waits == ()
    await stepped_env.assert_action_not_started(car, "honk")


async def test_11_a_negative_wait_fails_at_once_even_when_exceptions_are_narrowed(stepped_env):
    """S3.12, S8.2: a misuse of Stepped's own API is not a passing failure: it fails the
    action at once, not after retries, whatever handle_exceptions lists."""
    Car = car_class()
    Car.stepped_action("pause").step(lambda car, step: step.wait(-1))
    car = stepped_env.create(Car, id=1)

    with handle_stepped_action_exceptions(only=[KeyError]):
        handle = await stepped.start(car, "pause")
        result = await _result(handle)

    assert result.status == "failed"
    assert result.error is not None and "negative" in result.error.message, result.error
    assert set(await activity_attempts(handle)) == {1}  # the step ran once: no retry


# -- 12. key functions returning what cannot be a key ------------------------


async def test_12_a_checksum_function_returning_an_object_fails_at_once_naming_it(stepped_env):
    """S3.3, S5.1: a checksum function returning an object() fails the action at once
    (no retries: it cannot get better), naming the checksum and the type; no step runs,
    no lane is joined."""
    Car = car_class()
    fuel = Car.stepped_action("fuel")
    fuel.checksum(lambda car, litres: object())
    fuel.step(lambda car, step, litres: car.drive(litres))
    car = stepped_env.create(Car, id=1)

    handle = await stepped.start(car, "fuel", 40)
    result = await _result(handle)

    assert result.status == "failed"
    assert result.error is not None
    message = result.error.message
    assert "checksum" in message and "object" in message, message
    assert result.steps == () and result.concurrency_key is None
    assert set(await activity_attempts(handle)) == {1}  # prepare ran once: no retry
    assert stepped_env.reload(car).mileage == 0


# -- 13. the definition changed between start and step -----------------------


@pytest.mark.time_skipping
async def test_13_a_step_that_no_longer_exists_fails_the_action_clearly(stepped_env):
    """A definition redefined with fewer steps while an action waits in step 0: step 1
    fails the action with a DefinitionError naming the step and the definition."""
    Car = car_class()
    ran = []
    tour = Car.stepped_action("tour")
    tour.step(lambda car, step: step.wait(timedelta(hours=1)))
    tour.step(lambda car, step: ran.append("old step 1"))
    car = stepped_env.create(Car, id=1)

    handle = await stepped.start(car, "tour")
    await until(handle, lambda s: bool(s.steps and s.steps[0].waits))
    Car.stepped_action("tour").step(lambda car, step: ran.append("new step 0"))
    result = await _result(handle)

    assert result.status == "failed"
    assert result.error is not None and result.error.type == "DefinitionError"
    message = result.error.message
    assert "step 1 no longer exists" in message and "Car.tour" in message, message
    assert [s.status for s in result.steps] == ["succeeded", "failed"]
    assert ran == []


# -- 14. a database that cannot be reached -----------------------------------

APP = """\
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import stepped_temporal as stepped


class Base(DeclarativeBase):
    pass


class Car(stepped.Actor, Base):
    __tablename__ = "cars"
    id: Mapped[int] = mapped_column(primary_key=True)
"""


async def test_14_worker_with_an_unreachable_database_exits_with_one_line(
    stepped_env, tmp_path: Path
):
    """`stepped-temporal worker --database-url <unreachable>` (Temporal reachable): exit
    status non-zero, one stderr line naming the database, the password never shown."""
    command = shutil.which("stepped-temporal") or str(
        Path(sys.executable).parent / "stepped-temporal"
    )
    (tmp_path / "bad_input_app.py").write_text(APP)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "STEPPED_"))}
    env["PYTHONPATH"] = str(Path(stepped.__file__).resolve().parents[1])  # this checkout
    address = stepped_env.client.service_client.config.target_host
    url = "postgresql+psycopg://nobody:secret@127.0.0.1:1/x"

    process = await asyncio.create_subprocess_exec(
        command, "worker", "--app", "bad_input_app", "--database-url", url,
        "--address", address, "--task-queue", "bad-input-cli",
        cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    stdout, stderr = out.decode(), err.decode()

    assert process.returncode not in (0, None), stdout + stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("stepped-temporal worker: error:"), stderr
    assert "database" in lines[0] and "127.0.0.1:1" in lines[0], stderr
    assert "postgresql" in lines[0] and "nobody" in lines[0], stderr
    assert "secret" not in stdout + stderr
    assert "worker:" not in stdout  # it never got as far as running


# -- 15. a payload of another version ----------------------------------------


async def test_15_a_workflow_input_of_another_payload_version_is_refused(stepped_env):
    """A forged input from a newer (or older) payload version fails at once, naming both
    versions; nothing runs (no activity, no lane)."""
    Car = car_class()
    car = stepped_env.create(Car, id=1)

    for version in (99, 0):
        data = await _forged(stepped_env, version=version)

        message = _refused_early(data, "PayloadVersionError")
        assert repr(version) in message and str(PAYLOAD_VERSION) in message, message

    assert stepped_env.reload(car).mileage == 0
