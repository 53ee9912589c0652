"""Decide a request against a rendered S3 bucket policy or KMS key policy, the way AWS evaluates a resource policy.

Only what snaplake's policies use is implemented (and anything else raises, so a new construct cannot slip past
the isolation tests): Effect, Principal ("*" or {"AWS": account ids / ARNs / "*"}), Action, Resource and NotResource
with `*`/`?` wildcards and policy variables (`${aws:PrincipalAccount}`), Condition operators Bool, StringEquals,
StringNotEquals, StringLike, StringNotLike (values may hold policy variables; a key missing from the request fails
the positive operators and satisfies the negative ones). An explicit Deny wins; otherwise an Allow grants.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_VARIABLE = re.compile(r"\$\{([A-Za-z0-9:/_-]+)\}")


@dataclass(frozen=True)
class Request:
    account: str  # the calling principal's account
    action: str  # "s3:GetObject"
    resource: str  # "arn:aws:s3:::bucket/key", or "*" for a key policy
    context: dict[str, str] = field(default_factory=dict)  # condition keys: "s3:prefix", "kms:ViaService", ...

    def value(self, key: str) -> str | None:
        if key == "aws:PrincipalAccount":
            return self.account
        return self.context.get(key)


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _fill(pattern: str, request: Request) -> str | None:
    """The pattern with its policy variables replaced; None when a variable has no value (the statement then fails)."""
    missing = False

    def one(match: re.Match[str]) -> str:
        nonlocal missing
        value = request.value(match.group(1))
        if value is None:
            missing = True
            return ""
        return value

    filled = _VARIABLE.sub(one, pattern)
    return None if missing else filled


def _wild(pattern: str, value: str) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.DOTALL) is not None


def _principal_matches(principal: Any, request: Request) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, dict) or set(principal) - {"AWS"}:
        raise NotImplementedError(f"principal {principal!r}")
    for entry in _list(principal["AWS"]):
        if entry == "*" or entry == request.account or entry == f"arn:aws:iam::{request.account}:root":
            return True
    return False


def _condition_holds(condition: dict[str, Any], request: Request) -> bool:
    for operator, tests in condition.items():
        for key, expected in tests.items():
            actual = request.value(key)
            patterns = [_fill(str(v).lower() if operator == "Bool" else str(v), request) for v in _list(expected)]
            if operator == "Bool":
                ok = actual is not None and actual.lower() in patterns
            elif operator == "StringEquals":
                ok = actual is not None and actual in patterns
            elif operator == "StringNotEquals":
                ok = actual is None or actual not in patterns
            elif operator == "StringLike":
                ok = actual is not None and any(p is not None and _wild(p, actual) for p in patterns)
            elif operator == "StringNotLike":
                ok = actual is None or not any(p is not None and _wild(p, actual) for p in patterns)
            else:
                raise NotImplementedError(f"condition operator {operator}")
            if not ok:
                return False
    return True


def _resource_matches(statement: dict[str, Any], request: Request) -> bool:
    if "NotResource" in statement:
        return not any((p := _fill(str(r), request)) is not None and _wild(p, request.resource) for r in _list(statement["NotResource"]))
    return any((p := _fill(str(r), request)) is not None and _wild(p, request.resource) for r in _list(statement["Resource"]))


def _applies(statement: dict[str, Any], request: Request) -> bool:
    unknown = set(statement) - {"Sid", "Effect", "Principal", "Action", "Resource", "NotResource", "Condition"}
    if unknown:
        raise NotImplementedError(f"statement elements {sorted(unknown)}")
    return (
        _principal_matches(statement["Principal"], request)
        and any(_wild(str(a).lower(), request.action.lower()) for a in _list(statement["Action"]))
        and _resource_matches(statement, request)
        and _condition_holds(statement.get("Condition", {}), request)
    )


def decide(policy: dict[str, Any], request: Request) -> str:
    """ "Deny" (an explicit deny applies), "Allow", or "ImplicitDeny" (no statement grants it)."""
    statements = _list(policy["Statement"])
    if any(s["Effect"] == "Deny" and _applies(s, request) for s in statements):
        return "Deny"
    if any(s["Effect"] == "Allow" and _applies(s, request) for s in statements):
        return "Allow"
    return "ImplicitDeny"


def decide_identity(statements: list[dict[str, Any]], request: Request) -> str:
    """The same decision for an identity policy (a role's own statements, which name no Principal: they apply to
    whoever holds the role)."""
    return decide({"Statement": [{**statement, "Principal": "*"} for statement in statements]}, request)
