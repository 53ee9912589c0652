"""The least-privilege check: the AWS calls the code makes (snaplake.permissions.AWS_CALLS, kept honest by the
`ast` scan in _aws_calls) against the IAM policies template.yaml gives the Lambdas and state machines (_iam).

A table entry becomes IAM requirements here: the action (`<iam prefix>:<Operation>` unless NEEDS says otherwise)
and, for S3, the object or bucket ARN of its location plus the KMS key the location's bucket encrypts with. An object
of the lake ("lake") is required in each folder _lake_scope.LAKE_SCOPES lists for the function and that kind of
access (a read, a write or a delete), so the check holds every grant to the folders the function really uses.
Other services are checked by action only (their resources come from events and environment), except where NEEDS
names a resource: iam:PassRole on the role in the function's environment, KMS keys of export locations.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._aws_calls import MODULE_CODE, SCANNED_SERVICES, TRANSFER_METHODS, Codebase, Unit, UnitId, operation_names
from ._iam import Renderer, Requirement, policy_of, resources_in
from ._lake_scope import LAKE_SCOPES, LakeScope, parameter_values, resolve

IAM_PREFIX = {"stepfunctions": "states", "dynamodbstreams": "dynamodb"}

LAKE_BUCKET = {"Fn::If": ["CreateLakeBucket", {"Ref": "LakeBucket"}, {"Ref": "LakeBucketName"}]}


@dataclass(frozen=True)
class Location:
    """Where a table entry's S3 data is, in template terms; `encrypted_by` is the bucket resource whose default
    encryption names the location's KMS key (objects are written with that key)."""

    bucket: Any
    prefix: Any  # a CloudFormation string expression
    encrypted_by: str


LOCATIONS = {
    "lake": Location(LAKE_BUCKET, {"Fn::If": ["HasLakePrefix", {"Fn::Sub": "${LakePrefix}/"}, ""]}, "LakeBucket"),
    "rds-export": Location({"Ref": "ExportBucket"}, {"Fn::Sub": "${ExportPrefix}/"}, "ExportBucket"),
    "dynamodb-export": Location({"Ref": "ExportBucket"}, {"Fn::Sub": "${DynamoDbExportPrefix}/"}, "ExportBucket"),
    # The Athena jobs' tables, and their working files (plans, schema probes, query results).
    "athena-jobs": Location(
        LAKE_BUCKET,
        {"Fn::If": ["HasLakePrefix", {"Fn::Sub": "${LakePrefix}/${AthenaJobsPrefix}/"}, {"Fn::Sub": "${AthenaJobsPrefix}/"}]},
        "LakeBucket",
    ),
    "athena-work": Location(
        LAKE_BUCKET, {"Fn::If": ["HasLakePrefix", {"Fn::Sub": "${LakePrefix}/_snaplake/athena/"}, "_snaplake/athena/"]}, "LakeBucket"
    ),
}

# What a call needs beyond (or instead of) `<prefix>:<Operation>`. Scopes: "objects"/"bucket"/"key" of the call's
# location, "source-objects"/"source-key" of a copy's source, "env:NAME" the function's environment value, "any".
# Sources: the S3 API reference's "Permissions" sections and "Using SSE-KMS" (multipart uploads need kms:Decrypt),
# RDS "Exporting DB snapshot data to Amazon S3" (iam:PassRole, kms:CreateGrant, kms:DescribeKey), DynamoDB
# "Requesting a table export" (the caller's S3 permissions write the export).
_READ = (("s3:GetObject", "objects"), ("kms:Decrypt", "key"))
_WRITE = (("s3:PutObject", "objects"), ("kms:GenerateDataKey", "key"))
_MULTIPART = (*_WRITE, ("kms:Decrypt", "key"), ("s3:AbortMultipartUpload", "objects"))
_COPY_SOURCE = (("s3:GetObject", "source-objects"), ("kms:Decrypt", "source-key"))
NEEDS: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {
    ("s3", "get_object"): _READ,
    ("s3", "download_file"): _READ,
    ("s3", "download_fileobj"): _READ,
    # Without s3:ListBucket a missing key answers 403 instead of 404, and "not there yet" looks like an error.
    ("s3", "head_object"): (("s3:GetObject", "objects"), ("s3:ListBucket", "bucket")),
    ("s3", "list_objects_v2"): (("s3:ListBucket", "bucket"),),
    ("s3", "list_objects"): (("s3:ListBucket", "bucket"),),
    ("s3", "list_object_versions"): (("s3:ListBucketVersions", "bucket"),),
    ("s3", "put_object"): _WRITE,
    ("s3", "delete_object"): (("s3:DeleteObject", "objects"),),
    ("s3", "delete_objects"): (("s3:DeleteObject", "objects"),),
    ("s3", "copy_object"): (*_COPY_SOURCE, *_WRITE),
    ("s3", "create_multipart_upload"): (*_WRITE, ("kms:Decrypt", "key")),
    ("s3", "upload_part"): (("s3:PutObject", "objects"),),
    ("s3", "upload_part_copy"): (*_COPY_SOURCE, ("s3:PutObject", "objects")),
    ("s3", "complete_multipart_upload"): (("s3:PutObject", "objects"),),
    ("s3", "abort_multipart_upload"): (("s3:AbortMultipartUpload", "objects"),),
    ("s3", "upload_file"): _MULTIPART,
    ("s3", "upload_fileobj"): _MULTIPART,
    ("s3", "copy"): (*_COPY_SOURCE, *_MULTIPART),
    ("rds", "start_export_task"): (
        ("rds:StartExportTask", "any"),
        ("iam:PassRole", "env:EXPORT_ROLE_ARN"),
        ("kms:CreateGrant", "key"),
        ("kms:DescribeKey", "key"),
    ),
    # Athena reads the data and writes the results with the caller's permissions ("Access to Amazon S3" in the Athena
    # guide), and looks the tables up in Glue: listed like a copy, "<what it reads> -> <where it writes>".
    ("athena", "start_query_execution"): (
        ("athena:StartQueryExecution", "any"),
        ("s3:GetBucketLocation", "bucket"),
        ("s3:ListBucket", "bucket"),
        *_COPY_SOURCE,
        *_MULTIPART,
        ("glue:GetDatabase", "any"),
        ("glue:GetTable", "any"),
        ("glue:GetPartitions", "any"),
    ),
    # The PII key: decrypted only with the key the function is configured with (PII_KMS_KEY_ARN).
    ("kms", "decrypt"): (("kms:Decrypt", "env:PII_KMS_KEY_ARN"),),
    # Landing events go to the one bus the function is configured with (LANDING_EVENT_BUS holds its ARN).
    ("events", "put_events"): (("events:PutEvents", "env:LANDING_EVENT_BUS"),),
    ("dynamodb", "export_table_to_point_in_time"): (
        ("dynamodb:ExportTableToPointInTime", "any"),
        ("s3:PutObject", "objects"),
        ("s3:PutObjectAcl", "objects"),
        ("s3:AbortMultipartUpload", "objects"),
        ("kms:GenerateDataKey", "key"),
    ),
}
COPIES = frozenset({("s3", "copy_object"), ("s3", "upload_part_copy"), ("s3", "copy"), ("athena", "start_query_execution")})
_ENTRY = re.compile(r"(?P<service>[a-z0-9]+)\.(?P<method>[a-z0-9_]+)(?: (?P<source>[a-z-]+) ->)?(?: (?P<location>[a-z-]+))?")


@dataclass(frozen=True)
class TableCall:
    service: str
    method: str
    location: str | None
    source: str | None
    text: str


def parse_entry(text: str) -> TableCall | None:
    match = _ENTRY.fullmatch(text)
    if match is None:
        return None
    return TableCall(match["service"], match["method"], match["location"], match["source"], text)


# ---------------------------------------------------------------------- (a) the table matches the code
def table_problems(codebase: Codebase, table: dict[str, dict[str, tuple[str, ...]]], module: str | None = None) -> list[str]:
    """Calls in the code the table lacks, table entries the code no longer has, and entries that make no sense
    (of one module, or of all)."""
    problems: list[str] = []
    units = {unit_id: unit for unit_id, unit in codebase.units().items() if module in (None, unit_id.module)}
    for module_key, entries in sorted(table.items()):
        if module not in (None, module_key):
            continue
        if module_key not in codebase.modules:
            problems.append(f"AWS_CALLS[{module_key!r}]: no such module")
            continue
        for unit_name, calls in sorted(entries.items()):
            if UnitId(module_key, unit_name) not in units:
                problems.append(f"AWS_CALLS[{module_key!r}][{unit_name!r}]: {module_key} has no function {unit_name}")
            adapter = codebase.is_adapter(module_key, unit_name)
            for text in calls:
                problems += [f"AWS_CALLS[{module_key!r}][{unit_name!r}] {text!r}: {p}" for p in _entry_problems(text, adapter)]
    for unit_id, unit in sorted(units.items()):
        listed = {call.method for call in _table_calls(table, unit_id)}
        found = {call.method: call.line for call in unit.calls}
        path = codebase.modules[unit_id.module].path.relative_to(codebase.project_root)
        for method, line in sorted(found.items()):
            if method not in listed:
                problems.append(
                    f"{path}:{line} {unit_id.name} calls .{method}(): list it in AWS_CALLS[{unit_id.module!r}][{unit_id.name!r}]"
                )
        for method in sorted(listed - set(found)):
            problems.append(f"AWS_CALLS[{unit_id.module!r}][{unit_id.name!r}] lists {method}, which {path} {unit_id.name} no longer calls")
    return problems


def _entry_problems(text: str, adapter: bool = False) -> Iterator[str]:
    """What is wrong with one table entry; an adapter's own entries name no location (their callers' entries do)."""
    call = parse_entry(text)
    if call is None:
        yield "write '<service>.<method>', then for S3 data '<location>' or '<source> -> <location>'"
        return
    if call.service not in SCANNED_SERVICES:
        yield f"service {call.service} is not in _aws_calls.SCANNED_SERVICES, so its calls are not looked for"
        return
    if call.method not in operation_names(call.service) and not (call.service == "s3" and call.method in TRANSFER_METHODS):
        yield f"{call.service} has no operation {call.method}"
    for location in (call.location, call.source):
        if location is not None and location not in LOCATIONS:
            yield f"unknown location {location!r} (known: {', '.join(LOCATIONS)})"
    if adapter:
        if call.location is not None or call.source is not None:
            yield "an adapter's own entries name no location: list it with its data where the adapter is called"
        return
    scopes = {scope for _, scope in NEEDS.get((call.service, call.method), ())}
    if call.location is None and (call.service == "s3" or scopes & {"objects", "bucket", "key"}):
        yield "this call touches S3 data: name its location"
    if ((call.service, call.method) in COPIES) != (call.source is not None):
        yield "a copy names '<source> -> <location>', and only a copy does"


def _table_calls(table: dict[str, dict[str, tuple[str, ...]]], unit_id: UnitId) -> list[TableCall]:
    parsed = (parse_entry(text) for text in table.get(unit_id.module, {}).get(unit_id.name, ()))
    return [call for call in parsed if call is not None]


# ---------------------------------------------------------------------- (b) the Lambdas' policies allow the calls
@dataclass(frozen=True)
class Handler:
    function_id: str
    path: Path
    name: str


def handlers(template: dict[str, Any], project_root: Path) -> list[Handler]:
    found = []
    for logical_id, spec in sorted(resources_in(template).items()):
        if spec.get("Type") != "AWS::Serverless::Function":
            continue
        props = spec.get("Properties", {})
        code_uri, handler = props.get("CodeUri"), props.get("Handler")
        if isinstance(code_uri, str) and isinstance(handler, str) and "." in handler:
            module, name = handler.rsplit(".", 1)
            found.append(Handler(logical_id, project_root / code_uri / (module.replace(".", "/") + ".py"), name))
    return found


def _environment(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    env = dict(template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {}))
    env.update(resources_in(template)[logical_id].get("Properties", {}).get("Environment", {}).get("Variables", {}))
    return env


class Requirements:
    """Turns table entries into IAM requirements for one function of one template."""

    def __init__(self, template: dict[str, Any], function_id: str | None = None, lake_scopes: dict[str, LakeScope] | None = None):
        self.template = template
        self.renderer = Renderer(template)
        self.function_id = function_id
        self.env = _environment(template, function_id) if function_id else {}
        self.lake_scopes = LAKE_SCOPES if lake_scopes is None else lake_scopes

    def _s3(self, location: str, bucket_level: bool, folder: str = "") -> frozenset[str]:
        where = LOCATIONS[location]
        arn = "arn:${AWS::Partition}:s3:::${Bucket}" + ("" if bucket_level else "/${Prefix}" + folder + "snaplake-object")
        return self.renderer.render({"Fn::Sub": [arn, {"Bucket": where.bucket, "Prefix": where.prefix}]})

    def _lake_objects(self, action: str) -> frozenset[str]:
        """An object in each lake folder the function's scope lists for this action (see _lake_scope)."""
        scope = self.lake_scopes.get(str(self.function_id))
        if scope is None:
            return frozenset({f"{{{self.function_id} has no entry in _lake_scope.LAKE_SCOPES}}"})
        folders = scope.folders(action)
        if folders is None:
            return frozenset({f"{{{action} on the lake: _lake_scope.LakeScope does not say which folders it is granted in}}"})
        if not folders:
            return frozenset({f"{{_lake_scope.LAKE_SCOPES[{self.function_id!r}] lists no lake folder for {action}}}"})
        parameters = parameter_values(self.template)
        return frozenset().union(*(self._s3("lake", False, resolve(folder, parameters)) for folder in folders))

    def _key(self, location: str) -> frozenset[str]:
        """The location's KMS key ARN variants; none when its bucket does not encrypt with KMS."""
        spec = resources_in(self.template).get(LOCATIONS[location].encrypted_by, {})
        rules = spec.get("Properties", {}).get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration", [])
        defaults = [rule.get("ServerSideEncryptionByDefault", {}) for rule in rules]
        keys = [d["KMSMasterKeyID"] for d in defaults if d.get("SSEAlgorithm") == "aws:kms" and d.get("KMSMasterKeyID")]
        return self.renderer.arns(keys[0]) if keys else frozenset()

    def _scope(self, scope: str, call: TableCall, action: str) -> frozenset[str] | None:
        """The resource variants of a scope: None for any resource, none at all when the requirement does not apply."""
        if scope == "any":
            return None
        if scope.startswith("env:"):
            name = scope[4:]
            value = self.env.get(name)
            return self.renderer.arns(value) if value is not None else frozenset({f"{{environment variable {name} is not set}}"})
        location = call.source if scope.startswith("source-") else call.location
        if location is None:
            return frozenset({"{the table names no location for this call}"})
        if scope.endswith("key"):
            return self._key(location)
        if location == "lake" and scope.endswith("objects"):
            return self._lake_objects(action)
        return self._s3(location, bucket_level=scope == "bucket")

    def of(self, call: TableCall, why: str) -> list[Requirement]:
        needs = NEEDS.get((call.service, call.method))
        if needs is None:
            operation = operation_names(call.service).get(call.method, call.method)
            action = f"{IAM_PREFIX.get(call.service, call.service)}:{operation}"
            scope = ("bucket" if "bucket" in call.method else "objects") if call.service == "s3" else "any"
            needs = ((action, scope),)
        found = []
        for action, scope in needs:
            resources = self._scope(scope, call, action)
            if resources is None or resources:
                found.append(Requirement(action, resources, why))
        return found


def reachable_units(codebase: Codebase, handler: Handler) -> list[Unit]:
    """The code a handler can run: its function, its module's top-level code, and what they refer to."""
    module_key = codebase.load_handler(handler.path)
    return codebase.reachable([UnitId(module_key, handler.name), UnitId(module_key, MODULE_CODE)])


def unlisted_calls(codebase: Codebase, table: dict[str, dict[str, tuple[str, ...]]], handler: Handler) -> list[str]:
    """Client calls the handler can reach that the table does not list (so no policy check could cover them)."""
    found = []
    for unit in reachable_units(codebase, handler):
        listed = {call.method for call in _table_calls(table, unit.id)}
        found += [f"{unit.id} line {call.line}: .{call.method}()" for call in unit.calls if call.method not in listed]
    return found


def function_requirements(
    template: dict[str, Any],
    codebase: Codebase,
    table: dict[str, dict[str, tuple[str, ...]]],
    handler: Handler,
    lake_scopes: dict[str, LakeScope] | None = None,
) -> list[Requirement]:
    requirements = Requirements(template, handler.function_id, lake_scopes)
    found: list[Requirement] = []
    for unit in reachable_units(codebase, handler):
        for call in _table_calls(table, unit.id):
            found += requirements.of(call, f"{unit.id} {call.text}")
    return found


@dataclass(frozen=True)
class Gap:
    """An action on a resource the policy of `logical_id` does not grant, with the code or state that needs it."""

    logical_id: str
    action: str
    resource: str
    needed_by: tuple[str, ...]

    def __str__(self) -> str:
        more = f" (+{len(self.needed_by) - 2} more)" if len(self.needed_by) > 2 else ""
        return f"{self.logical_id}: {self.action} on {self.resource}  <- {'; '.join(self.needed_by[:2])}{more}"


def gaps(template: dict[str, Any], logical_id: str, requirements: list[Requirement]) -> list[Gap]:
    policy = policy_of(template, logical_id)
    missing: dict[tuple[str, str], set[str]] = {}
    for requirement in requirements:
        for resource in policy.missing(requirement):
            missing.setdefault((requirement.action, resource or "*"), set()).add(requirement.why)
    found = [Gap(logical_id, action, resource, tuple(sorted(whys))) for (action, resource), whys in sorted(missing.items())]
    if found and policy.unresolved:
        found.append(Gap(logical_id, "(policies this check cannot read)", "; ".join(policy.unresolved), ()))
    return found


# ---------------------------------------------------------------------- state machines
_INTEGRATION = re.compile(
    r"arn:aws[a-z-]*:states:::(?P<service>[a-z0-9-]+):(?P<action>[A-Za-z0-9:_-]+?)(?P<mode>\.sync(?::2)?|\.waitForTaskToken)?"
)
_SYNC_EXTRA = {
    "states:StartExecution": (
        "states:DescribeExecution",
        "states:StopExecution",
        "events:PutTargets",
        "events:PutRule",
        "events:DescribeRule",
    ),
    "athena:StartQueryExecution": ("athena:GetQueryExecution", "athena:StopQueryExecution"),
    "glue:StartJobRun": ("glue:GetJobRun", "glue:GetJobRuns", "glue:BatchStopJobRun"),
}
_INTEGRATION_ACTIONS = {"lambda:invoke": "lambda:InvokeFunction"}


def _capitalized(service: str, action: str) -> str:
    return f"{IAM_PREFIX.get(service, service)}:{action[:1].upper()}{action[1:]}"


def state_machine_requirements(template: dict[str, Any], logical_id: str, definition: dict[str, Any]) -> list[Requirement]:
    """What the state machine's role needs for its tasks: Lambda functions invoked, service integrations, SNS
    publishes to encrypted topics (kms:GenerateDataKey and kms:Decrypt on the topic's key), distributed maps."""
    from ._support import all_states

    renderer = Renderer(template)
    props = resources_in(template)[logical_id].get("Properties", {})
    substitutions = {name: renderer.render(value) for name, value in props.get("DefinitionSubstitutions", {}).items()}
    topics = {
        arn: topic for topic, spec in resources_in(template).items() if spec.get("Type") == "AWS::SNS::Topic" for arn in renderer.ref(topic)
    }

    def filled(text: str) -> frozenset[str]:
        out = {text}
        for name in set(re.findall(r"\$\{([A-Za-z0-9_:.]+)\}", text)):
            out = {t.replace(f"${{{name}}}", v) for t in out for v in substitutions.get(name, frozenset({"{?}"}))}
        return frozenset(out)

    found: list[Requirement] = []
    for scope, name, state in all_states(definition):
        why = f"{logical_id} {scope.where} > {name}"
        arguments = state.get("Parameters") or state.get("Arguments") or {}
        if state.get("Type") == "Map":
            reader = (state.get("ItemReader") or {}).get("Resource")
            writer = (state.get("ResultWriter") or {}).get("Resource")
            if isinstance(reader, str):
                action = "s3:ListBucket" if reader.endswith("listObjectsV2") else "s3:GetObject"
                found.append(Requirement(action, None, f"{why}.ItemReader"))
            if isinstance(writer, str):
                found.append(Requirement("s3:PutObject", None, f"{why}.ResultWriter"))
            processor = state.get("ItemProcessor") or {}
            if (processor.get("ProcessorConfig") or {}).get("Mode") == "DISTRIBUTED":
                found += [Requirement(a, None, why) for a in ("states:StartExecution", "states:DescribeExecution", "states:StopExecution")]
        resource = state.get("Resource")
        if state.get("Type") != "Task" or not isinstance(resource, str):
            continue
        for variant in sorted(filled(resource)):
            if variant.startswith("arn:aws:lambda:") or re.fullmatch(r"arn:aws[a-z-]*:lambda:.*", variant):
                found.append(Requirement("lambda:InvokeFunction", frozenset({variant}), why))
                continue
            match = _INTEGRATION.fullmatch(variant)
            if match is None:
                found.append(Requirement(f"(unrecognized task resource {variant})", None, why))
                continue
            service, action, mode = match["service"], match["action"], match["mode"]
            if service == "aws-sdk":
                sdk_service, _, sdk_action = action.partition(":")
                found.append(Requirement(_capitalized(sdk_service, sdk_action), None, why))
                continue
            iam_action = _INTEGRATION_ACTIONS.get(f"{service}:{action}", _capitalized(service, action))
            target: frozenset[str] | None = None
            if iam_action == "lambda:InvokeFunction" and isinstance(arguments.get("FunctionName"), str):
                target = frozenset(
                    f if f.startswith("arn:") else f"arn:aws:lambda:{{AWS::Region}}:{{AWS::AccountId}}:function:{f}"
                    for f in filled(arguments["FunctionName"])
                )
            if iam_action == "sns:Publish" and isinstance(arguments.get("TopicArn"), str):
                target = filled(arguments["TopicArn"])
                for arn in target:
                    key = resources_in(template).get(topics.get(arn, ""), {}).get("Properties", {}).get("KmsMasterKeyId")
                    if key is not None:
                        keys = renderer.arns(key)
                        found += [Requirement(a, keys, f"{why} (encrypted topic)") for a in ("kms:GenerateDataKey", "kms:Decrypt")]
            found.append(Requirement(iam_action, target, why))
            if mode and mode.startswith(".sync"):
                found += [Requirement(extra, None, why) for extra in _SYNC_EXTRA.get(iam_action, ())]
    return found


def state_machine_ids(template: dict[str, Any]) -> list[str]:
    return sorted(logical_id for logical_id, spec in resources_in(template).items() if spec.get("Type") == "AWS::Serverless::StateMachine")


def definition_path(template: dict[str, Any], logical_id: str, project_root: Path) -> Path | None:
    uri = resources_in(template)[logical_id].get("Properties", {}).get("DefinitionUri")
    return project_root / uri if isinstance(uri, str) else None
