"""Shared readers for the template/definition checks: template.yaml, statemachine/*.asl.json, samconfig.toml.

Everything is read from the working tree each test session (cached per session); nothing is deployed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from snaplake_local.stack import load_template
from snaplake_local.template import TemplateEvaluator

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = PROJECT_ROOT / "template.yaml"
STATEMACHINE_DIR = PROJECT_ROOT / "statemachine"
EVENTS_DIR = PROJECT_ROOT / "events"
SAMCONFIG_PATH = PROJECT_ROOT / "samconfig.toml"
ASL_FILES = sorted(STATEMACHINE_DIR.glob("*.asl.json"))

DUMMY_REGION = "eu-west-1"
DUMMY_ACCOUNT = "123456789012"

# The placeholder syntax DefinitionSubstitutions fills (same expression as snaplake_local.template).
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_:.]+)\}")

TOP_LEVEL = "top level"


# ---------------------------------------------------------------------- template.yaml
@cache
def template() -> dict[str, Any]:
    """template.yaml as plain dicts (cfn-lint's loader: short-form intrinsics become Fn::* dicts)."""
    return load_template(TEMPLATE_PATH)


class _Physical(dict[str, str]):
    """Any resource attribute: `<logical id>.<attribute>`."""

    def __init__(self, logical_id: str) -> None:
        super().__init__(ref=logical_id)
        self.logical_id = logical_id

    def __missing__(self, attribute: str) -> str:
        return f"{self.logical_id}.{attribute}"


def rendered_resources(**parameters: str) -> dict[str, dict[str, Any]]:
    """The resources CloudFormation would create with these parameters, their properties evaluated."""
    evaluator = TemplateEvaluator(template(), {"SourceIdentifiers": "world-aurora", **parameters}, DUMMY_REGION, DUMMY_ACCOUNT, "lake")
    evaluator.physical = {logical_id: _Physical(logical_id) for logical_id in template()["Resources"]}
    return {
        logical_id: {**spec, "Properties": evaluator.evaluate(spec.get("Properties", {}))} for logical_id, spec in evaluator.resources()
    }


@cache
def template_nodes() -> Any:
    """template.yaml as cfn-lint nodes, which keep each key's source line (key.start_mark.line, 0-based)."""
    from cfnlint.decode.cfn_yaml import loads

    return loads(TEMPLATE_PATH.read_text(), str(TEMPLATE_PATH))


@cache
def template_lines() -> tuple[str, ...]:
    return tuple(TEMPLATE_PATH.read_text().splitlines())


def resources() -> dict[str, dict[str, Any]]:
    """Logical id -> resource; a Fn::ForEach block contributes its resource template (loop variable unresolved)."""
    found: dict[str, dict[str, Any]] = {}
    for logical_id, spec in template().get("Resources", {}).items():
        if str(logical_id).startswith("Fn::ForEach::"):
            found.update(spec[2])
        else:
            found[logical_id] = spec
    return found


def resources_of_type(kind: str) -> list[tuple[str, dict[str, Any]]]:
    return [(logical_id, spec) for logical_id, spec in resources().items() if spec.get("Type") == kind]


def function_ids() -> list[str]:
    return [logical_id for logical_id, _ in resources_of_type("AWS::Serverless::Function")]


def function_globals() -> dict[str, Any]:
    return dict(template().get("Globals", {}).get("Function", {}))


def state_machine_for(asl_file: Path) -> tuple[str, dict[str, Any]] | None:
    """The AWS::Serverless::StateMachine whose DefinitionUri is this file, as (logical id, Properties)."""
    for logical_id, spec in resources_of_type("AWS::Serverless::StateMachine"):
        props = spec.get("Properties", {})
        uri = props.get("DefinitionUri")
        if isinstance(uri, str) and (PROJECT_ROOT / uri).resolve() == asl_file.resolve():
            return logical_id, props
    return None


@dataclass(frozen=True)
class PolicyStatement:
    where: str  # e.g. "Resources.ExportRole.Properties.Policies[0].PolicyDocument.Statement[1]"
    resource_id: str  # logical id of the resource it is in
    statement: Any  # the dict (a cfn-lint node when walked from template_nodes())


def policy_statements(root: Any) -> Iterator[PolicyStatement]:
    """Every IAM policy statement in the template: any mapping with an Effect and an Action/NotAction.

    Walks key policies, bucket/queue policies, role policies and SAM `Policies: - Statement:` alike,
    including statements wrapped in Fn::If.
    """

    def walk(node: Any, where: str, resource_id: str) -> Iterator[PolicyStatement]:
        if isinstance(node, dict):
            if node.get("Effect") in ("Allow", "Deny") and ("Action" in node or "NotAction" in node):
                yield PolicyStatement(where, resource_id, node)
                return
            for key, value in node.items():
                yield from walk(value, f"{where}.{key}", resource_id)
        elif isinstance(node, list):
            for index, value in enumerate(node):
                yield from walk(value, f"{where}[{index}]", resource_id)

    for logical_id, spec in root.get("Resources", {}).items():
        yield from walk(spec, f"Resources.{logical_id}", str(logical_id))


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def dummy_value(name: str, value: Any) -> str:
    """A stand-in for one DefinitionSubstitutions value, shaped like what CloudFormation would put there."""
    kinds = {logical_id: spec.get("Type", "") for logical_id, spec in resources().items()}
    arn = f"arn:aws:{{}}:{DUMMY_REGION}:{DUMMY_ACCOUNT}:{{}}"
    logical_id: str | None = None
    if isinstance(value, dict) and len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Ref" and isinstance(arg, str):
            logical_id = arg
        elif key == "Fn::GetAtt":
            logical_id = (arg.split(".", 1) if isinstance(arg, str) else arg)[0]
    if isinstance(value, str):
        return value
    kind = kinds.get(logical_id or "", "")
    if kind in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
        return arn.format("lambda", f"function:{logical_id}")
    if kind == "AWS::SNS::Topic":
        return arn.format("sns", f"{logical_id}")
    if kind == "AWS::SQS::Queue":
        return arn.format("sqs", f"{logical_id}")
    if kind in ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine"):
        return arn.format("states", f"stateMachine:{logical_id}")
    if kind == "AWS::S3::Bucket":
        return f"dummy-{str(logical_id).lower()}"
    if kind in ("AWS::DynamoDB::Table", "AWS::Serverless::SimpleTable"):
        return str(logical_id)
    return f"dummy-{name}"


# ---------------------------------------------------------------------- statemachine/*.asl.json
@cache
def asl(path: Path) -> dict[str, Any]:
    loaded = json.loads(path.read_text())
    assert isinstance(loaded, dict), f"{path.name}: the definition must be a JSON object"
    return loaded


def asl_id(path: Path) -> str:
    return path.name


@dataclass(frozen=True)
class Scope:
    """One StartAt/States block: the top level, or a Map's ItemProcessor, or a Parallel branch."""

    where: str
    start_at: Any
    states: dict[str, dict[str, Any]]

    @property
    def top_level(self) -> bool:
        return self.where == TOP_LEVEL


def scopes(block: dict[str, Any], where: str = TOP_LEVEL) -> list[Scope]:
    states = block.get("States", {})
    found = [Scope(where, block.get("StartAt"), states if isinstance(states, dict) else {})]
    for name, state in found[0].states.items():
        if not isinstance(state, dict):
            continue
        if state.get("Type") == "Map":
            processor = state.get("ItemProcessor", state.get("Iterator"))
            if isinstance(processor, dict):
                found += scopes(processor, f"{where} > {name}.ItemProcessor")
        if state.get("Type") == "Parallel":
            for index, branch in enumerate(state.get("Branches", [])):
                found += scopes(branch, f"{where} > {name}.Branches[{index}]")
    return found


def all_states(definition: dict[str, Any]) -> Iterator[tuple[Scope, str, dict[str, Any]]]:
    for scope in scopes(definition):
        for name, state in scope.states.items():
            yield scope, name, state


def transitions(state: dict[str, Any]) -> list[tuple[str, Any]]:
    """(field, target) for every transition a state can take: Next, Default, Choices[i].Next, Catch[i].Next."""
    found: list[tuple[str, Any]] = []
    if "Next" in state:
        found.append(("Next", state["Next"]))
    if "Default" in state:
        found.append(("Default", state["Default"]))
    for index, choice in enumerate(state.get("Choices", [])):
        if isinstance(choice, dict) and "Next" in choice:
            found.append((f"Choices[{index}].Next", choice["Next"]))
    for index, catcher in enumerate(state.get("Catch", [])):
        if isinstance(catcher, dict) and "Next" in catcher:
            found.append((f"Catch[{index}].Next", catcher["Next"]))
    return found


def is_terminal(state: dict[str, Any]) -> bool:
    return state.get("Type") in ("Succeed", "Fail") or state.get("End") is True


def is_sns_publish(state: dict[str, Any]) -> bool:
    resource = state.get("Resource")
    return (
        state.get("Type") == "Task"
        and isinstance(resource, str)
        and (resource.endswith(":states:::sns:publish") or resource.endswith(":states:::aws-sdk:sns:publish"))
    )


def error_names(definition: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, error name) for every ErrorEquals entry of every retrier and catcher."""
    for scope, name, state in all_states(definition):
        for field in ("Retry", "Catch"):
            for index, handler in enumerate(state.get(field, [])):
                for error in handler.get("ErrorEquals", []):
                    yield f"{scope.where} > {name}.{field}[{index}]", error


def rendered(path: Path) -> str:
    """The ASL file with its placeholders filled with dummy values, as DefinitionSubstitutions would."""
    from snaplake_local.template import render_definition

    owner = state_machine_for(path)
    substitutions = owner[1].get("DefinitionSubstitutions", {}) if owner else {}
    text = path.read_text()
    dummies = {name: dummy_value(name, value) for name, value in substitutions.items()}
    for name in PLACEHOLDER.findall(text):
        dummies.setdefault(name, f"dummy-{name}")
    return render_definition(text, dummies)
