"""IAM for the emulator's S3 requests: each request a function's own clients make is decided against that function's
policy in template.yaml, rendered for the emulated deployment (its parameters and physical names).

moto enforces no IAM, and the emulator runs every handler in this process (snaplake_local.emulator.lambdas), each
loaded as its own module with its own boto3 clients. `RequestChecker.attach` finds a function's S3 clients (module
globals, and the snaplake objects they hold: a Bucket, a LakeChangeLog) and hooks their requests: the IAM actions
and resources of each S3 operation (the S3 API reference's "Permissions" sections) are decided like an identity
policy (_bucket_policy.decide_identity: explicit Deny wins, then Allow). A GET or HEAD that answers 404 also needs
s3:ListBucket on the bucket (without it S3 answers 403), which is checked when the answer comes back. KMS is not
checked here (test_template_permissions.py checks the key grants).
"""

from __future__ import annotations

import threading
import types
from dataclasses import dataclass, field
from typing import Any

from botocore.client import BaseClient
from snaplake_local.stack import STACK, EmulatedStack
from snaplake_local.template import TemplateEvaluator

from ._bucket_policy import Request, decide_identity

# S3 operation -> the IAM actions it needs: on the request's object ("object"), each object of a DeleteObjects
# ("each"), the copy source ("source"), or the bucket ("bucket").
ACTIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "GetObject": (("s3:GetObject", "object"),),
    "HeadObject": (("s3:GetObject", "object"),),
    "GetObjectTagging": (("s3:GetObjectTagging", "object"),),
    "PutObject": (("s3:PutObject", "object"),),
    "CopyObject": (("s3:PutObject", "object"), ("s3:GetObject", "source")),
    "CreateMultipartUpload": (("s3:PutObject", "object"),),
    "UploadPart": (("s3:PutObject", "object"),),
    "UploadPartCopy": (("s3:PutObject", "object"), ("s3:GetObject", "source")),
    "CompleteMultipartUpload": (("s3:PutObject", "object"),),
    "AbortMultipartUpload": (("s3:AbortMultipartUpload", "object"),),
    "DeleteObject": (("s3:DeleteObject", "object"),),
    "DeleteObjects": (("s3:DeleteObject", "each"),),
    "ListObjectsV2": (("s3:ListBucket", "bucket"),),
    "ListObjects": (("s3:ListBucket", "bucket"),),
    "HeadBucket": (("s3:ListBucket", "bucket"),),
}
WITH_ACL = frozenset({"PutObject", "CopyObject", "CreateMultipartUpload"})  # an ACL header also needs s3:PutObjectAcl


class PolicyEvaluator(TemplateEvaluator):
    """The emulator's template evaluator, plus Fn::Select and Fn::Split, which only the policies use (the emulator
    itself never evaluates a function's policies)."""

    def evaluate(self, node: Any) -> Any:
        if isinstance(node, dict) and len(node) == 1:
            ((key, argument),) = node.items()
            if key == "Fn::Split":
                delimiter, source = argument
                return str(self.evaluate(source)).split(delimiter)
            if key == "Fn::Select":
                index, items = argument
                return self.evaluate(items)[int(self.evaluate(index))]
        return super().evaluate(node)


def policy_statements(stack: EmulatedStack, logical_id: str, template: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The function's inline policy statements as deployed on this stack (Fn::If decided, intrinsics resolved)."""
    evaluator = PolicyEvaluator(template or stack.template, stack.parameters, stack.region, stack.account, STACK)
    evaluator.physical = stack.physical
    props = evaluator.template["Resources"][logical_id]["Properties"]
    statements: list[dict[str, Any]] = []
    for policy in evaluator.evaluate(props.get("Policies", [])):
        if not isinstance(policy, dict) or set(policy) != {"Statement"}:
            raise NotImplementedError(f"{logical_id}: only inline policy statements are checked, not {policy!r}")
        statements += policy["Statement"]
    return statements


@dataclass(frozen=True)
class S3Request:
    function: str
    operation: str
    action: str
    bucket: str
    key: str | None  # None for a bucket-level action


@dataclass
class RequestChecker:
    """Decides and records every S3 request of the functions it is attached to."""

    requests: list[S3Request] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def attach(self, stack: EmulatedStack, logical_id: str, template: dict[str, Any] | None = None) -> int:
        """Hook the S3 clients of one deployed function; returns how many it has."""
        statements = policy_statements(stack, logical_id, template)
        clients = s3_clients(stack.function(logical_id).module())
        for client in clients:
            client.meta.events.register("before-parameter-build.s3", self._before(logical_id, statements))
            client.meta.events.register("after-call.s3", self._after(logical_id, statements))
        return len(clients)

    def _decide(self, function: str, statements: list[dict[str, Any]], operation: str, action: str, bucket: str, key: str | None) -> None:
        resource = f"arn:aws:s3:::{bucket}" + (f"/{key}" if key is not None else "")
        decision = decide_identity(statements, Request("", action, resource))
        with self._lock:
            self.requests.append(S3Request(function, operation, action, bucket, key))
            if decision != "Allow":
                self.refused.append(f"{function}: {operation} needs {action} on {resource}: {decision}")

    def _before(self, function: str, statements: list[dict[str, Any]]) -> Any:
        def check(params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
            operation = model.name
            context["snaplake_request"] = (params.get("Bucket"), params.get("Key"))
            needs = ACTIONS.get(operation)
            if needs is None:
                with self._lock:
                    self.refused.append(f"{function}: S3 {operation}: add its IAM actions to _emulated_iam.ACTIONS")
                return
            bucket, key = str(params["Bucket"]), params.get("Key")
            for action, target in needs:
                if target == "object":
                    self._decide(function, statements, operation, action, bucket, str(key))
                elif target == "bucket":
                    self._decide(function, statements, operation, action, bucket, None)
                elif target == "each":
                    for item in params["Delete"]["Objects"]:
                        self._decide(function, statements, operation, action, bucket, str(item["Key"]))
                else:
                    source = params["CopySource"]
                    if isinstance(source, str):
                        source_bucket, _slash, source_key = source.lstrip("/").partition("/")
                    else:
                        source_bucket, source_key = source["Bucket"], source["Key"]
                    self._decide(function, statements, operation, action, source_bucket, source_key)
            if operation in WITH_ACL and params.get("ACL"):
                self._decide(function, statements, operation, "s3:PutObjectAcl", bucket, str(key))

        return check

    def _after(self, function: str, statements: list[dict[str, Any]]) -> Any:
        def check(http_response: Any, model: Any, context: dict[str, Any], **_: Any) -> None:
            if model.name in ("GetObject", "HeadObject") and http_response.status_code == 404:
                bucket, _ = context.get("snaplake_request", (None, None))
                self._decide(function, statements, f"{model.name} (404)", "s3:ListBucket", str(bucket), None)

        return check


def s3_clients(module: types.ModuleType) -> list[Any]:
    """The S3 clients a handler module holds: its globals, and the snaplake objects they hold (three levels deep)."""
    found: list[Any] = []
    seen: set[int] = set()

    def walk(value: Any, depth: int) -> None:
        if id(value) in seen:
            return
        seen.add(id(value))
        if isinstance(value, BaseClient):
            if value.meta.service_model.service_name == "s3":
                found.append(value)
            return
        owner = type(value).__module__
        if depth and owner.startswith("snaplake") and hasattr(value, "__dict__") and not isinstance(value, type | types.ModuleType):
            for inner in vars(value).values():
                walk(inner, depth - 1)

    for value in vars(module).values():
        if not isinstance(value, type | types.ModuleType | types.FunctionType):
            walk(value, 3)
    return found
