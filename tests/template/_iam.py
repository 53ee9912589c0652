"""What a function's or state machine's policy in template.yaml allows, evaluated symbolically (nothing is deployed).

Resource expressions are rendered to ARN patterns whose unknown parts stay named: `!GetAtt ExportBucket.Arn`
becomes `arn:aws:s3:::{ExportBucket}`, `${LakePrefix}` becomes `{LakePrefix}`, `!Ref AWS::Region` becomes
`{AWS::Region}`. `Fn::If` yields both branches, so a requirement holds only if every variant of the resource it
names is granted. `Fn::Select` of `Fn::Split` is followed when the string split is a literal (a parameter
replaced by its value with `with_parameters`). Policies come from SAM `Policies` (inline statements, and policy
templates expanded from the SAM translator's own policy_templates.json) or an explicit `Role`. Deny statements
without a Condition take away what they name (`Policy.decide`, `Policy.missing`); Conditions are not evaluated, so
a conditional Deny is ignored and a conditional Allow counts as granted.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import samtranslator

POLICY_TEMPLATES = Path(samtranslator.__file__).parent / "policy_templates_data" / "policy_templates.json"
UNKNOWN = "{?}"  # a part of an expression this renderer cannot follow: only Resource "*" covers it
_SUB = re.compile(r"\$\{([^!}][^}]*)\}")
_PSEUDO = {"AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com"}
NO_VALUE = "AWS::NoValue"


@cache
def policy_templates() -> dict[str, Any]:
    return dict(json.loads(POLICY_TEMPLATES.read_text())["Templates"])


def with_parameters(template: dict[str, Any], values: dict[str, str]) -> dict[str, Any]:
    """The template as deployed with these parameter values: every `${Name}` in a Fn::Sub string and every
    `{"Ref": Name}` becomes the value (which also becomes the parameter's Default)."""
    text = json.dumps(template)
    for name, value in values.items():
        text = text.replace("${" + name + "}", json.dumps(value)[1:-1])
    changed = _replace_refs(json.loads(text), values)
    parameters = changed.setdefault("Parameters", {})
    for name, value in values.items():
        parameters[name] = {**parameters.get(name, {}), "Default": value}
    return dict(changed)


def with_condition(template: dict[str, Any], name: str, value: bool) -> dict[str, Any]:
    """The template as deployed when condition `name` is `value`: resource expressions then render that branch
    only, so a grant and the requirement it must cover are compared under the same parameters."""
    return {**template, "Conditions": {**template.get("Conditions", {}), name: value}}


def resources_in(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for logical_id, spec in template.get("Resources", {}).items():
        if str(logical_id).startswith("Fn::ForEach::"):
            found.update(spec[2])
        else:
            found[logical_id] = spec
    return found


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


class Renderer:
    """Renders CloudFormation values of one template to sets of symbolic strings (one per Fn::If variant)."""

    def __init__(self, template: dict[str, Any]):
        self.resources = resources_in(template)
        # Conditions fixed by with_condition: their Fn::If renders the chosen branch only.
        self.fixed = {name: value for name, value in template.get("Conditions", {}).items() if isinstance(value, bool)}

    def kind(self, logical_id: str) -> str:
        return str(self.resources.get(logical_id, {}).get("Type", ""))

    def ref(self, name: str) -> frozenset[str]:
        if name == NO_VALUE:
            return frozenset()
        if name in _PSEUDO:
            return frozenset({_PSEUDO[name]})
        kind = self.kind(name)
        region, account = "{AWS::Region}", "{AWS::AccountId}"
        if kind == "AWS::SNS::Topic":
            return frozenset({f"arn:aws:sns:{region}:{account}:{{{name}.TopicName}}"})
        if kind in ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine"):
            return frozenset({f"arn:aws:states:{region}:{account}:stateMachine:{{{name}.Name}}"})
        if kind == "AWS::SQS::Queue":
            return frozenset({f"https://sqs.{region}.amazonaws.com/{account}/{{{name}.QueueName}}"})
        return frozenset({f"{{{name}}}"})

    def get_att(self, name: str, attribute: str) -> frozenset[str]:
        kind = self.kind(name)
        region, account = "{AWS::Region}", "{AWS::AccountId}"
        arns = {
            "AWS::S3::Bucket": f"arn:aws:s3:::{{{name}}}",
            "AWS::Serverless::Function": f"arn:aws:lambda:{region}:{account}:function:{{{name}}}",
            "AWS::Lambda::Function": f"arn:aws:lambda:{region}:{account}:function:{{{name}}}",
            "AWS::DynamoDB::Table": f"arn:aws:dynamodb:{region}:{account}:table/{{{name}}}",
            "AWS::Serverless::SimpleTable": f"arn:aws:dynamodb:{region}:{account}:table/{{{name}}}",
            "AWS::KMS::Key": f"arn:aws:kms:{region}:{account}:key/{{{name}}}",
            "AWS::SQS::Queue": f"arn:aws:sqs:{region}:{account}:{{{name}.QueueName}}",
            "AWS::IAM::Role": f"arn:aws:iam::{account}:role/{{{name}}}",
            "AWS::Logs::LogGroup": f"arn:aws:logs:{region}:{account}:log-group:{{{name}}}:*",
        }
        if attribute == "Arn" and kind in arns:
            return frozenset({arns[kind]})
        if (attribute, kind) in (("TopicArn", "AWS::SNS::Topic"), ("Arn", "AWS::StepFunctions::StateMachine")):
            return self.ref(name)
        return frozenset({f"{{{name}.{attribute}}}"})

    def render(self, value: Any, variables: dict[str, frozenset[str]] | None = None) -> frozenset[str]:
        if isinstance(value, str):
            return frozenset({value})
        if isinstance(value, bool | int | float):
            return frozenset({str(value).lower() if isinstance(value, bool) else str(value)})
        if isinstance(value, list):
            return frozenset().union(*(self.render(item, variables) for item in value)) if value else frozenset()
        if not isinstance(value, dict) or len(value) != 1:
            return frozenset({UNKNOWN})
        ((function, argument),) = value.items()
        if function == "Ref" and isinstance(argument, str):
            return variables[argument] if variables and argument in variables else self.ref(argument)
        if function == "Fn::GetAtt":
            parts = argument.split(".", 1) if isinstance(argument, str) else list(argument)
            return self.get_att(str(parts[0]), str(parts[1])) if len(parts) == 2 else frozenset({UNKNOWN})
        if function == "Fn::If" and isinstance(argument, list) and len(argument) == 3:
            if argument[0] in self.fixed:
                return self.render(argument[1] if self.fixed[argument[0]] else argument[2], variables)
            return self.render(argument[1], variables) | self.render(argument[2], variables)
        if function == "Fn::Sub":
            text, extra = (argument, {}) if isinstance(argument, str) else (argument[0], argument[1])
            scope = {**(variables or {}), **{name: self.render(v, variables) for name, v in extra.items()}}
            return self._sub(str(text), scope)
        if function == "Fn::Select" and isinstance(argument, list) and len(argument) == 2:
            return self._select(argument[0], argument[1])
        if function == "Fn::Join" and isinstance(argument, list) and len(argument) == 2:
            pieces = [self.render(item, variables) for item in as_list(argument[1])]
            return frozenset(str(argument[0]).join(combo) for combo in itertools.product(*pieces))
        return frozenset({UNKNOWN})

    def _select(self, index: Any, items: Any) -> frozenset[str]:
        """`Fn::Select` of a literal list, or of `Fn::Split` of a literal string; anything else is unknown."""
        if isinstance(items, dict) and set(items) == {"Fn::Split"}:
            split = items["Fn::Split"]
            if isinstance(split, list) and len(split) == 2 and isinstance(split[0], str) and isinstance(split[1], str):
                items = split[1].split(split[0])
        if isinstance(items, list) and str(index).isdigit() and int(index) < len(items):
            return self.render(items[int(index)])
        return frozenset({UNKNOWN})

    def _sub(self, text: str, variables: dict[str, frozenset[str]]) -> frozenset[str]:
        pieces = _SUB.split(text)  # literal, name, literal, name, ..., literal
        choices: list[frozenset[str]] = []
        for name in pieces[1::2]:
            if name in variables:
                choices.append(variables[name])
            elif "." in name and not name.startswith("AWS::"):
                choices.append(self.get_att(*name.split(".", 1)))
            else:
                choices.append(self.ref(name))
        literals = [piece.replace("${!", "${") for piece in pieces[0::2]]
        out: set[str] = set()
        for combo in itertools.product(*choices):
            out.add("".join(literal + value for literal, value in zip(literals, [*combo, ""], strict=True)))
        return frozenset(out)

    def arns(self, value: Any) -> frozenset[str]:
        """A value as policies name what it refers to: `!Ref <KMS key>` (a key id) becomes the key's ARN; "" drops out."""
        out: set[str] = set()
        for rendered in self.render(value):
            match = re.fullmatch(r"\{([A-Za-z0-9]+)\}", rendered)
            if match and self.kind(match.group(1)) == "AWS::KMS::Key":
                out |= self.get_att(match.group(1), "Arn")
            elif rendered:
                out.add(rendered)
        return frozenset(out)


@dataclass(frozen=True)
class Grant:
    where: str
    actions: tuple[str, ...]
    resources: frozenset[str]

    def allows(self, action: str, resource: str | None) -> bool:
        if not any(_wildcard(pattern, action, ignore_case=True) for pattern in self.actions):
            return False
        return resource is None or any(_wildcard(pattern, resource) for pattern in self.resources)


@cache
def _pattern(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, re.IGNORECASE if ignore_case else 0)


def _wildcard(pattern: str, value: str, ignore_case: bool = False) -> bool:
    return _pattern(pattern, ignore_case).fullmatch(value) is not None


@dataclass(frozen=True)
class Requirement:
    action: str
    resources: frozenset[str] | None  # variants, each of which must be granted; None: any resource will do
    why: str  # e.g. "snaplake.rds.copy_batch:copy_item s3.copy_object rds-export -> lake"

    def describe(self) -> str:
        on = " or ".join(sorted(self.resources)) if self.resources else "any resource"
        return f"{self.action} on {on}  (for {self.why})"


@dataclass
class Policy:
    grants: list[Grant]
    unresolved: list[str]  # policies this module cannot read (managed policy names/ARNs, unknown SAM templates)
    denials: list[Grant] = field(default_factory=list)  # Deny statements without a Condition

    def decide(self, action: str, resource: str) -> str:
        """ "Deny" (a Deny statement names it), "Allow", or "ImplicitDeny" (no Allow statement grants it)."""
        if any(d.allows(action, resource) for d in self.denials):
            return "Deny"
        return "Allow" if any(g.allows(action, resource) for g in self.grants) else "ImplicitDeny"

    def missing(self, requirement: Requirement) -> list[str | None]:
        """The resource variants of a requirement no Allow statement covers, or a Deny statement takes away."""
        variants: list[str | None] = [*sorted(requirement.resources)] if requirement.resources is not None else [None]
        return [
            r
            for r in variants
            if not any(g.allows(requirement.action, r) for g in self.grants)
            or (r is not None and any(d.allows(requirement.action, r) for d in self.denials))
        ]


def _branches(value: Any) -> Iterator[Any]:
    """Every non-NoValue alternative of a value that may be wrapped in Fn::If."""
    if isinstance(value, dict) and set(value) == {"Fn::If"} and isinstance(value["Fn::If"], list) and len(value["Fn::If"]) == 3:
        yield from _branches(value["Fn::If"][1])
        yield from _branches(value["Fn::If"][2])
    elif value != {"Ref": NO_VALUE} and value is not None:
        yield value


def _replace_refs(value: Any, parameters: dict[str, Any]) -> Any:
    if isinstance(value, dict):
        if set(value) == {"Ref"} and value["Ref"] in parameters:
            return parameters[value["Ref"]]
        return {k: _replace_refs(v, parameters) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_refs(v, parameters) for v in value]
    return value


def policy_of(template: dict[str, Any], logical_id: str) -> Policy:
    """The Allow statements of a SAM function's or state machine's execution role."""
    renderer = Renderer(template)
    props = resources_in(template)[logical_id].get("Properties", {})
    policy = Policy([], [])
    statements: list[tuple[str, Any]] = []
    for index, item in enumerate(as_list(props.get("Policies", []))):
        for branch in _branches(item):
            where = f"{logical_id}.Policies[{index}]"
            if isinstance(branch, str):
                policy.unresolved.append(f"{where}: managed policy {branch}")
            elif isinstance(branch, dict) and "Statement" in branch:
                statements += [(where, s) for s in as_list(branch["Statement"])]
            elif isinstance(branch, dict) and len(branch) == 1 and next(iter(branch)) in policy_templates():
                ((name, parameters),) = branch.items()
                definition = _replace_refs(policy_templates()[name]["Definition"], dict(parameters or {}))
                statements += [(f"{where} {name}", s) for s in as_list(definition["Statement"])]
            else:
                policy.unresolved.append(f"{where}: {json.dumps(branch)[:80]}")
    role = props.get("Role")
    if role is not None:
        target = role.get("Fn::GetAtt") if isinstance(role, dict) else None
        role_id = (target.split(".")[0] if isinstance(target, str) else target[0]) if target else None
        role_props = resources_in(template).get(str(role_id), {}).get("Properties")
        if role_props is None:
            policy.unresolved.append(f"{logical_id}.Role: {json.dumps(role)[:80]}")
        else:
            for index, inline in enumerate(as_list(role_props.get("Policies", []))):
                for branch in _branches(inline):
                    document = branch.get("PolicyDocument", {})
                    statements += [(f"{role_id}.Policies[{index}]", s) for s in as_list(document.get("Statement", []))]
            policy.unresolved += [f"{role_id}: managed policy {arn}" for arn in as_list(role_props.get("ManagedPolicyArns", []))]
    for where, statement in statements:
        for branch in _branches(statement):
            if not isinstance(branch, dict) or branch.get("Effect") not in ("Allow", "Deny") or "Action" not in branch:
                continue
            actions = tuple(str(a) for a in as_list(branch["Action"]))
            resources = frozenset().union(*(renderer.render(r) for r in as_list(branch.get("Resource", []))))
            if branch["Effect"] == "Allow":
                policy.grants.append(Grant(where, actions, resources))
            elif "Condition" not in branch:
                policy.denials.append(Grant(where, actions, resources))
    return policy
