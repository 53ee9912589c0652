"""Retry and Catch in every statemachine/*.asl.json follow the Step Functions rules and the project's conventions.

- every Task retries; every retrier that retries caps its backoff (MaxDelaySeconds) and spreads it (JitterStrategy);
- States.ALL is alone in its ErrorEquals and in the last retrier/catcher;
- every top-level Task/Map/Parallel catches everything and routes it (via Pass states) to an SNS notification, then Fail;
- every error name is one Step Functions, Lambda, botocore or snaplake's errors can actually produce.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ._support import ASL_FILES, Scope, all_states, asl, asl_id, error_names, is_sns_publish, scopes

per_definition = pytest.mark.parametrize("path", ASL_FILES, ids=asl_id)

# Step Functions built-in error names (ASL spec and the error-handling guide, incl. Map and JSONata errors).
STATES_ERRORS = {
    "States.ALL",
    "States.BranchFailed",
    "States.DataLimitExceeded",
    "States.ExceedToleratedFailureThreshold",
    "States.HeartbeatTimeout",
    "States.IntrinsicFailure",
    "States.ItemReaderFailed",
    "States.NoChoiceMatched",
    "States.ParameterPathFailure",
    "States.Permissions",
    "States.QueryEvaluationError",
    "States.ResultPathMatchFailure",
    "States.ResultWriterFailed",
    "States.Runtime",
    "States.TaskFailed",
    "States.Timeout",
}
LAMBDA_SERVICE_ERROR = re.compile(r"Lambda\.[A-Za-z]+")
OTHER_KNOWN_ERRORS = {
    "Sandbox.Timedout",  # the function hit its timeout (Lambda reports this error type)
    "ClientError",  # botocore.exceptions.ClientError escaping a handler
}
WORKFLOW_STATES = ("Task", "Map", "Parallel")


def _snaplake_error_names() -> set[str]:
    """Class names Lambda can report for the project's own errors: every subclass of SnaplakeError.

    The base class itself is left out: Step Functions matches the exact class name raised, and nothing raises the base.
    """
    from snaplake.core.errors import SnaplakeError

    from tests.snaplake_errors import snaplake_error_classes

    return {cls.__name__ for cls in snaplake_error_classes() if cls is not SnaplakeError}


def _handlers(state: dict[str, Any]) -> Iterator[tuple[str, int, dict[str, Any]]]:
    for field in ("Retry", "Catch"):
        for index, handler in enumerate(state.get(field, [])):
            yield field, index, handler


@per_definition
def test_every_task_has_a_retry_list(path: Path) -> None:
    missing = [
        f"{scope.where} > {name}"
        for scope, name, state in all_states(asl(path))
        if state.get("Type") == "Task" and not (isinstance(state.get("Retry"), list) and state["Retry"])
    ]
    assert not missing, "Task states without Retry:\n" + "\n".join(missing)


@per_definition
def test_every_retrier_that_retries_caps_and_jitters_its_backoff(path: Path) -> None:
    bad: list[str] = []
    for scope, name, state in all_states(asl(path)):
        for index, retrier in enumerate(state.get("Retry", [])):
            where = f"{scope.where} > {name}.Retry[{index}]"
            if retrier.get("MaxAttempts", 3) == 0:  # MaxAttempts defaults to 3
                continue
            if not 1 <= retrier.get("MaxDelaySeconds", 0) <= 31622400:
                bad.append(f"{where}: MaxDelaySeconds missing or out of 1..31622400")
            if retrier.get("JitterStrategy") not in ("FULL", "NONE"):
                bad.append(f"{where}: JitterStrategy missing (FULL or NONE)")
            if retrier.get("BackoffRate", 2.0) < 1.0:
                bad.append(f"{where}: BackoffRate below 1.0")
            if not retrier.get("ErrorEquals"):
                bad.append(f"{where}: empty ErrorEquals")
    assert not bad, "\n".join(bad)


@per_definition
def test_states_all_is_alone_and_last(path: Path) -> None:
    bad: list[str] = []
    for scope, name, state in all_states(asl(path)):
        for field, index, handler in _handlers(state):
            errors = handler.get("ErrorEquals", [])
            if "States.ALL" not in errors:
                continue
            where = f"{scope.where} > {name}.{field}[{index}]"
            if errors != ["States.ALL"]:
                bad.append(f"{where}: States.ALL must be the only error in its ErrorEquals, got {errors}")
            if index != len(state[field]) - 1:
                bad.append(f"{where}: States.ALL must be in the last {field} entry")
    assert not bad, "\n".join(bad)


def _is_cleanup(state: dict[str, Any]) -> bool:
    """A failure-path Task that must not hide the failure: it catches everything and moves on."""
    catches = state.get("Catch", [])
    return (
        state.get("Type") == "Task"
        and "sns:publish" not in str(state.get("Resource"))
        and state.get("ResultPath", "absent") is None
        and bool(catches)
        and all(c.get("Next") == state.get("Next") for c in catches)
    )


def _through_passes(scope: Scope, name: Any) -> tuple[Any, list[str]]:
    """Follow Pass states (and clean-up Tasks that always continue) from `name`;
    return the first other state's name and the path walked."""
    walked: list[str] = []
    while name in scope.states and name not in walked:
        state = scope.states[name]
        if state.get("Type") != "Pass" and not _is_cleanup(state):
            break
        walked.append(name)
        name = state.get("Next")
    return name, walked


def _reaches_fail(scope: Scope, name: Any) -> bool:
    end, _ = _through_passes(scope, name)
    return end in scope.states and scope.states[end].get("Type") == "Fail"


def _notification_problems(scope: Scope, name: str, state: dict[str, Any]) -> list[str]:
    catch_all = [c for c in state.get("Catch", []) if "States.ALL" in c.get("ErrorEquals", [])]
    if not catch_all:
        return [f"{name}: no Catch on States.ALL"]
    problems: list[str] = []
    for catcher in catch_all:
        target, walked = _through_passes(scope, catcher.get("Next"))
        route = " -> ".join([name, *walked, str(target)])
        if target not in scope.states or not is_sns_publish(scope.states[target]):
            problems.append(f"{route}: the catch-all does not lead (via Pass states) to an sns:publish Task")
            continue
        notifier = scope.states[target]
        if not _reaches_fail(scope, notifier.get("Next")):
            problems.append(f"{route}: the notification's Next does not lead (via Pass states) to a Fail state")
    return problems


@per_definition
def test_every_top_level_task_and_map_notifies_sns_then_fails(path: Path) -> None:
    (top,) = [scope for scope in scopes(asl(path)) if scope.top_level]
    problems: list[str] = []
    for name, state in top.states.items():
        if state.get("Type") in WORKFLOW_STATES and not is_sns_publish(state):
            problems += _notification_problems(top, name, state)
    assert not problems, "\n".join(problems)


@per_definition
def test_failure_notifier_ends_in_fail_even_when_publishing_fails(path: Path) -> None:
    (top,) = [scope for scope in scopes(asl(path)) if scope.top_level]
    notifiers = {name: state for name, state in top.states.items() if is_sns_publish(state)}
    assert notifiers, "no sns:publish Task at the top level"
    problems: list[str] = []
    for name, state in notifiers.items():
        if not _reaches_fail(top, state.get("Next")):
            problems.append(f"{name}: Next does not lead to a Fail state")
        catch_all = [c for c in state.get("Catch", []) if "States.ALL" in c.get("ErrorEquals", [])]
        if not catch_all or not all(_reaches_fail(top, c.get("Next")) for c in catch_all):
            problems.append(f"{name}: a failed publish must still end in a Fail state (Catch States.ALL -> Fail)")
    assert not problems, "\n".join(problems)


def test_snaplake_errors_are_known() -> None:
    names = _snaplake_error_names()
    assert {"SnapshotNotReady", "ExportSlotsBusy"} <= names, names


@per_definition
def test_every_error_name_is_one_that_can_occur(path: Path) -> None:
    allowed = _snaplake_error_names() | STATES_ERRORS | OTHER_KNOWN_ERRORS
    unknown = [
        f"{where}: {error!r}"
        for where, error in error_names(asl(path))
        if error not in allowed and not (isinstance(error, str) and LAMBDA_SERVICE_ERROR.fullmatch(error))
    ]
    assert not unknown, (
        "ErrorEquals names that nothing raises (not States.*, Lambda.*, Sandbox.Timedout, ClientError or a "
        "snaplake error class):\n" + "\n".join(unknown)
    )
