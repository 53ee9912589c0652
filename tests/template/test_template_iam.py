"""IAM in template.yaml: no service-wide wildcards, nothing public, and every Resource "*" explains itself."""

from __future__ import annotations

import re
from typing import Any

from ._support import PolicyStatement, as_list, policy_statements, resources, template, template_lines, template_nodes

SERVICE_WILDCARD = re.compile(r"[A-Za-z0-9-]+:\*")
ACCOUNT_ROOT = {
    "arn:${AWS::Partition}:iam::${AWS::AccountId}:root",
    "arn:aws:iam::${AWS::AccountId}:root",
}


def _is_account_root(principal: Any) -> bool:
    if not isinstance(principal, dict) or set(principal) != {"AWS"}:
        return False
    value = principal["AWS"]
    if isinstance(value, dict) and set(value) == {"Fn::Sub"}:
        value = value["Fn::Sub"]
    return (isinstance(value, str) and value in ACCOUNT_ROOT) or value == {"Ref": "AWS::AccountId"}


def _is_default_key_policy_statement(found: PolicyStatement) -> bool:
    """The AWS default key policy statement: the key's own account root gets kms:* so IAM policies can grant the key.

    It grants nothing by itself (it delegates to IAM in this account), and without it the key becomes unmanageable,
    so it is the one Allow with a service-wide wildcard this check accepts.
    """
    spec = resources().get(found.resource_id, {})
    return (
        spec.get("Type") == "AWS::KMS::Key"
        and ".Properties.KeyPolicy." in found.where
        and _is_account_root(found.statement.get("Principal"))
        and as_list(found.statement.get("Action")) == ["kms:*"]
        and "Condition" not in found.statement
    )


def _allows() -> list[PolicyStatement]:
    return [found for found in policy_statements(template()) if found.statement.get("Effect") == "Allow"]


def test_template_has_policy_statements() -> None:
    assert _allows()


def test_no_allow_grants_every_action_of_a_service() -> None:
    bad: list[str] = []
    for found in _allows():
        if "NotAction" in found.statement:
            bad.append(f"{found.where}: Allow with NotAction")
        actions = [a for a in as_list(found.statement.get("Action")) if isinstance(a, str)]
        wild = [a for a in actions if a == "*" or SERVICE_WILDCARD.fullmatch(a)]
        if wild and not _is_default_key_policy_statement(found):
            bad.append(f"{found.where}: Allow {wild}")
    assert not bad, "Allow statements with Action '*' or '<service>:*':\n" + "\n".join(bad)


def test_no_allow_names_everyone_as_principal() -> None:
    public = [found.where for found in _allows() if found.statement.get("Principal") in ("*", {"AWS": "*"})]
    assert not public, "Allow statements for Principal '*':\n" + "\n".join(public)


def test_deny_statements_with_service_wildcards_only_deny_insecure_transport() -> None:
    for found in policy_statements(template()):
        actions = [a for a in as_list(found.statement.get("Action")) if isinstance(a, str)]
        if found.statement.get("Effect") == "Deny" and any(a == "*" or SERVICE_WILDCARD.fullmatch(a) for a in actions):
            condition = found.statement.get("Condition", {})
            assert condition.get("Bool", {}).get("aws:SecureTransport") in ("false", False), found.where


def _resource_key_line(statement: Any) -> int:
    for key in statement:
        if key == "Resource":
            return int(key.start_mark.line)
    raise AssertionError("statement has no Resource key")


def test_every_allow_on_resource_star_is_explained_by_a_comment_above_it() -> None:
    lines = template_lines()
    unexplained: list[str] = []
    checked = 0
    for found in policy_statements(template_nodes()):
        statement = found.statement
        if statement.get("Effect") != "Allow" or "*" not in as_list(statement.get("Resource")):
            continue
        checked += 1
        line = _resource_key_line(statement)
        above = line - 1
        while above >= 0 and not lines[above].strip():
            above -= 1
        comment = lines[above].strip() if above >= 0 else ""
        if not comment.startswith("#") or len(comment.lstrip("#").split()) < 3:
            unexplained.append(f"template.yaml:{line + 1}: {found.where}")
    assert checked, "found no Allow on Resource '*' at all: the walk over template.yaml is broken"
    assert not unexplained, 'Allow statements on Resource "*" without an explaining comment line right above:\n' + "\n".join(unexplained)
