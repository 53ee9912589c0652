"""Every statemachine/*.asl.json is a well-formed graph: valid JSON, transitions to real states, all reachable, all can end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ._support import ASL_FILES, asl, asl_id, is_terminal, scopes, transitions

per_definition = pytest.mark.parametrize("path", ASL_FILES, ids=asl_id)

STATE_TYPES = {"Task", "Pass", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map"}


def test_there_is_at_least_one_definition() -> None:
    assert ASL_FILES, "statemachine/ has no *.asl.json"


@per_definition
def test_definition_parses_as_a_json_object(path: Path) -> None:
    assert isinstance(json.loads(path.read_text()), dict)


@per_definition
def test_every_scope_starts_at_an_existing_state(path: Path) -> None:
    for scope in scopes(asl(path)):
        assert scope.states, f"{scope.where}: no States"
        assert isinstance(scope.start_at, str), f"{scope.where}: StartAt missing"
        assert scope.start_at in scope.states, f"{scope.where}: StartAt {scope.start_at!r} is not a state of this scope"


@per_definition
def test_every_state_has_a_known_type(path: Path) -> None:
    unknown = [
        f"{scope.where} > {name}: {state.get('Type')!r}"
        for scope in scopes(asl(path))
        for name, state in scope.states.items()
        if state.get("Type") not in STATE_TYPES
    ]
    assert not unknown


@per_definition
def test_every_transition_names_a_state_in_the_same_scope(path: Path) -> None:
    dangling = [
        f"{scope.where} > {name}.{field} -> {target!r}"
        for scope in scopes(asl(path))
        for name, state in scope.states.items()
        for field, target in transitions(state)
        if target not in scope.states
    ]
    assert not dangling, "transitions to states that do not exist in their scope:\n" + "\n".join(dangling)


@per_definition
def test_every_state_is_reachable_from_start_at(path: Path) -> None:
    unreachable: list[str] = []
    for scope in scopes(asl(path)):
        seen: set[str] = set()
        todo = [scope.start_at]
        while todo:
            name = todo.pop()
            if name in seen or name not in scope.states:
                continue
            seen.add(name)
            todo.extend(target for _, target in transitions(scope.states[name]))
        unreachable += [f"{scope.where} > {name}" for name in scope.states if name not in seen]
    assert not unreachable, "states no path from StartAt reaches:\n" + "\n".join(unreachable)


@per_definition
def test_every_state_either_ends_or_moves_on(path: Path) -> None:
    """Choice has Choices; Succeed/Fail end; every other state has exactly one of Next and End: true."""
    bad: list[str] = []
    for scope in scopes(asl(path)):
        for name, state in scope.states.items():
            kind = state.get("Type")
            where = f"{scope.where} > {name}"
            if kind == "Choice":
                if not state.get("Choices") or "End" in state or "Next" in state:
                    bad.append(f"{where}: a Choice needs Choices and takes neither Next nor End")
            elif kind in ("Succeed", "Fail"):
                if "Next" in state or "End" in state:
                    bad.append(f"{where}: a {kind} state takes neither Next nor End")
            elif ("Next" in state) == (state.get("End") is True):
                bad.append(f"{where}: needs exactly one of Next and End: true")
    assert not bad, "\n".join(bad)


@per_definition
def test_every_state_can_reach_an_end_without_failing(path: Path) -> None:
    """No closed loop: from each state some path of Next/Default/Choices (not Catch) leads to End, Succeed or Fail.

    Catch edges do not count: a polling loop whose only way out is an error would never end on its own.
    """
    stuck: list[str] = []
    for scope in scopes(asl(path)):
        can_end = {name for name, state in scope.states.items() if is_terminal(state)}
        changed = True
        while changed:
            changed = False
            for name, state in scope.states.items():
                normal = [target for field, target in transitions(state) if not field.startswith("Catch")]
                if name not in can_end and any(target in can_end for target in normal):
                    can_end.add(name)
                    changed = True
        stuck += [f"{scope.where} > {name}" for name in scope.states if name not in can_end]
    assert not stuck, "states from which no path terminates:\n" + "\n".join(stuck)
