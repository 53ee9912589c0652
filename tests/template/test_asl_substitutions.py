"""Each ASL file's ${Name} placeholders and its state machine's DefinitionSubstitutions match in both directions."""

from __future__ import annotations

from pathlib import Path

import pytest

from ._support import ASL_FILES, PLACEHOLDER, PROJECT_ROOT, asl_id, resources_of_type, state_machine_for

per_definition = pytest.mark.parametrize("path", ASL_FILES, ids=asl_id)


def test_every_definition_uri_is_a_file_in_the_project() -> None:
    missing = []
    for logical_id, spec in resources_of_type("AWS::Serverless::StateMachine"):
        uri = spec.get("Properties", {}).get("DefinitionUri")
        if isinstance(uri, str) and not (PROJECT_ROOT / uri).is_file():
            missing.append(f"{logical_id}: {uri}")
    assert not missing, "DefinitionUri that does not exist: " + ", ".join(missing)


@per_definition
def test_definition_is_deployed_by_a_state_machine(path: Path) -> None:
    assert state_machine_for(path) is not None, f"no AWS::Serverless::StateMachine has DefinitionUri statemachine/{path.name}"


@per_definition
def test_every_placeholder_is_substituted(path: Path) -> None:
    owner = state_machine_for(path)
    assert owner is not None
    logical_id, props = owner
    provided = set(props.get("DefinitionSubstitutions", {}))
    used = set(PLACEHOLDER.findall(path.read_text()))
    assert not used - provided, f"{path.name} uses placeholders {logical_id}.DefinitionSubstitutions lacks: {sorted(used - provided)}"


@per_definition
def test_every_substitution_is_used(path: Path) -> None:
    owner = state_machine_for(path)
    assert owner is not None
    logical_id, props = owner
    provided = set(props.get("DefinitionSubstitutions", {}))
    used = set(PLACEHOLDER.findall(path.read_text()))
    assert not provided - used, f"{logical_id}.DefinitionSubstitutions provides names {path.name} never uses: {sorted(provided - used)}"
