"""template.yaml read the way CloudFormation (with the SAM transform) reads it, for EmulatedStack.

load_template parses the file; TemplateEvaluator gives one deployment's parameter values (defaults
merged, checked against its Rules), conditions, and the intrinsic functions the template uses (Ref, Fn::GetAtt, Fn::Sub, Fn::If,
Fn::Equals, Fn::Not, Fn::And, Fn::Or, Fn::Join, Condition); render_definition fills an ASL file's
DefinitionSubstitutions. Anything else raises UnsupportedTemplate.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[2]
_SUB = re.compile(r"\$\{([A-Za-z0-9_:.]+)\}")


class UnsupportedTemplate(Exception):
    """template.yaml uses something the local runner cannot resolve."""


class TemplateRuleFailed(Exception):
    """A parameter rule of the template (its `Rules`) refuses these parameters, as CloudFormation refuses the deploy."""


def load_template(path: Path = PROJECT_ROOT / "template.yaml") -> dict[str, Any]:
    from cfnlint.decode.cfn_yaml import loads

    return _plain(loads(path.read_text(), str(path)))


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, str):
        return str(node)
    return node


def render_definition(definition: str, substitutions: dict[str, Any]) -> str:
    """Fill an ASL file's ${Name} placeholders the way DefinitionSubstitutions does."""
    missing = sorted(set(_SUB.findall(definition)) - set(substitutions))
    if missing:
        raise UnsupportedTemplate(f"DefinitionSubstitutions lacks {', '.join(missing)}")
    return _SUB.sub(lambda m: str(substitutions[m.group(1)]), definition)


class TemplateEvaluator:
    """A template's values for one deployment: `params` (the given parameters over the defaults),
    `conditions` (evaluated when first asked), and intrinsic functions. Ref and Fn::GetAtt of a resource
    read `physical` (logical id -> {"ref": ..., attribute: ...}), which the deployment fills in."""

    def __init__(self, template: dict[str, Any], parameters: dict[str, str], region: str, account: str, stack_name: str):
        self.template = template
        self.parameters = parameters
        self.region = region
        self.account = account
        self.stack_name = stack_name
        self.params = self._parameters()
        self.conditions: dict[str, bool] = {}
        self.physical: dict[str, dict[str, str]] = {}
        self._check_rules()

    def _check_rules(self) -> None:
        for name, rule in self.template.get("Rules", {}).items():
            if "RuleCondition" in rule and not self.evaluate(rule["RuleCondition"]):
                continue
            for assertion in rule["Assertions"]:
                if not self.evaluate(assertion["Assert"]):
                    raise TemplateRuleFailed(f"rule {name}: {assertion.get('AssertDescription', 'an assertion failed')}")

    def resources(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """(logical id, spec) of every resource whose Condition holds."""
        for logical_id, spec in self.template["Resources"].items():
            if "Condition" in spec and not self.condition(spec["Condition"]):
                continue
            yield logical_id, spec

    def _parameters(self) -> dict[str, str]:
        declared = self.template.get("Parameters", {})
        values = {name: str(spec["Default"]) for name, spec in declared.items() if "Default" in spec}
        unknown = set(self.parameters) - set(declared)
        if unknown:
            raise UnsupportedTemplate(f"unknown template parameters: {', '.join(sorted(unknown))}")
        values.update({k: str(v) for k, v in self.parameters.items()})
        missing = [name for name in declared if name not in values]
        if missing:
            raise UnsupportedTemplate(f"template parameters without a value: {', '.join(missing)}")
        return values

    def condition(self, name: str) -> bool:
        if name not in self.conditions:
            self.conditions[name] = bool(self.evaluate(self.template["Conditions"][name]))
        return self.conditions[name]

    def evaluate(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (self.evaluate(x) for x in node) if v is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref":
                return self._ref(arg)
            if key == "Fn::GetAtt":
                resource, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
                return self._get_att(resource, attribute)
            if key == "Fn::Sub":
                text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], {k: self.evaluate(v) for k, v in arg[1].items()})
                filled = _SUB.sub(lambda m: str(variables[m.group(1)] if m.group(1) in variables else self._sub_name(m.group(1))), text)
                return filled.replace("${!", "${")  # ${!Literal} is Fn::Sub's escape for a literal ${Literal}
            if key == "Fn::If":
                name, yes, no = arg
                return self.evaluate(yes if self.condition(name) else no)
            if key == "Fn::Equals":
                left, right = (self.evaluate(x) for x in arg)
                return str(left) == str(right)
            if key == "Fn::Not":
                return not self.evaluate(arg[0])
            if key == "Fn::And":
                return all(self.evaluate(x) for x in arg)
            if key == "Fn::Or":
                return any(self.evaluate(x) for x in arg)
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::Join":
                separator, items = arg
                items = self.evaluate(items)
                return separator.join(str(i) for i in (items if isinstance(items, list) else [items]))
            if key == "Fn::Split":
                separator, text = arg
                return str(self.evaluate(text)).split(separator)
            if key == "Fn::Select":
                index, items = arg
                return self.evaluate(items)[int(self.evaluate(index))]
            if key.startswith("Fn::"):
                raise UnsupportedTemplate(f"the local runner does not resolve {key}")
        return {k: v for k, v in ((k, self.evaluate(v)) for k, v in node.items()) if v is not _NO_VALUE}

    def _sub_name(self, name: str) -> str:
        if "." in name:
            resource, attribute = name.split(".", 1)
            return self._get_att(resource, attribute)
        return str(self._ref(name))

    def _ref(self, name: str) -> Any:
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account,
            "AWS::Partition": "aws",
            "AWS::StackName": self.stack_name,
            "AWS::NoValue": _NO_VALUE,
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.params:
            if self.template["Parameters"][name]["Type"] == "CommaDelimitedList":
                return [item.strip() for item in self.params[name].split(",") if item.strip()]
            return self.params[name]
        return self.physical[name]["ref"]

    def _get_att(self, resource: str, attribute: str) -> str:
        return self.physical[resource][attribute]


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


_NO_VALUE = _NoValue()
