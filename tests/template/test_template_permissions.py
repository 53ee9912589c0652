"""Least privilege, checked both ways: every AWS call the code makes is granted, and the table of calls is the code's.

snaplake.permissions.AWS_CALLS lists the boto3 calls of each function of the handlers and the snaplake package.
The `ast` scan (_aws_calls) keeps it honest: a client call the table lacks, or an entry the code no longer has,
fails here. Each Lambda is then followed from its handler (CodeUri + Handler) through the code it can run, and
its policy in template.yaml must allow what those calls need (_permissions: S3 on the right bucket and prefix,
KMS for SSE-KMS, iam:PassRole for RDS exports, ...). A lake call must be granted in each folder of the lake the
function reads, writes or deletes (_lake_scope.LAKE_SCOPES), with and without LakePrefix and with both the default
and a placeholder-first LakeKeyTemplate. Each state machine's policy must allow its tasks.
"""

from __future__ import annotations

import copy
import json
import textwrap
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from snaplake.permissions import ADAPTERS, AWS_CALLS
from snaplake.rds.layout import DEFAULT_KEY_TEMPLATE, SEED_KEY_TEMPLATE

from ._aws_calls import Codebase, UnitId
from ._iam import policy_of, resources_in, with_condition, with_parameters
from ._lake_scope import EVERYTHING, LAKE_SCOPES, LakeScope
from ._permissions import (
    Gap,
    Handler,
    definition_path,
    function_requirements,
    gaps,
    handlers,
    state_machine_ids,
    state_machine_requirements,
    table_problems,
    unlisted_calls,
)
from ._support import PROJECT_ROOT, template

LIBRARY_DIR = PROJECT_ROOT / "layers" / "common" / "snaplake"


@cache
def codebase() -> Codebase:
    """The snaplake package and every handler module under functions/, parsed once per session."""
    scanned = Codebase(LIBRARY_DIR, PROJECT_ROOT, adapters=ADAPTERS)
    scanned.load_library()
    for path in sorted((PROJECT_ROOT / "functions").glob("*/*.py")):
        scanned.load_handler(path)
    return scanned


@cache
def deployed(has_lake_prefix: bool = True, key_template: str = DEFAULT_KEY_TEMPLATE) -> dict[str, Any]:
    """template.yaml with LakePrefix set or empty, and LakeKeyTemplate given (it decides the RDS data folder)."""
    return with_parameters(with_condition(template(), "HasLakePrefix", has_lake_prefix), {"LakeKeyTemplate": key_template})


def _handler(function_id: str) -> Handler:
    (found,) = [h for h in handlers(template(), PROJECT_ROOT) if h.function_id == function_id]
    return found


def _function_gaps(tpl: dict[str, Any], handler: Handler, lake_scopes: dict[str, LakeScope] | None = None) -> list[Gap]:
    return gaps(tpl, handler.function_id, function_requirements(tpl, codebase(), AWS_CALLS, handler, lake_scopes))


@cache
def _state_machine_gaps(logical_id: str) -> tuple[Gap, ...]:
    path = definition_path(template(), logical_id, PROJECT_ROOT)
    assert path is not None and path.is_file(), f"{logical_id}: DefinitionUri is not a file in the project"
    requirements = state_machine_requirements(template(), logical_id, json.loads(path.read_text()))
    return tuple(gaps(template(), logical_id, requirements))


# ---------------------------------------------------------------------- the table is the code's
def test_the_scan_finds_client_calls_in_the_library_and_the_handlers() -> None:
    units = codebase().units()
    assert any(unit.calls for unit_id, unit in units.items() if unit_id.module.startswith("snaplake."))
    assert any(unit.calls for unit_id, unit in units.items() if unit_id.module.startswith("functions/"))


def test_permission_table_names_only_modules_that_exist() -> None:
    unknown = sorted(set(AWS_CALLS) - set(codebase().modules))
    assert not unknown, f"AWS_CALLS names modules the scan does not know: {unknown}"


@pytest.mark.parametrize("module_key", sorted(codebase().modules))
def test_permission_table_lists_exactly_the_client_calls_in_the_code(module_key: str) -> None:
    problems = table_problems(codebase(), AWS_CALLS, module_key)
    assert not problems, f"snaplake.permissions.AWS_CALLS and {module_key} disagree:\n" + "\n".join(problems)


def test_every_call_into_a_snaplake_class_resolves_to_its_method() -> None:
    """A receiver whose type the scan cannot tell is matched by method name (see Codebase._guess_unresolved), which
    stays sound but may charge a Lambda with calls it never makes; annotate the variable with its class instead."""
    guessed = [f"{unit_id} -> {sorted(map(str, unit.guessed))}" for unit_id, unit in sorted(codebase().units().items()) if unit.guessed]
    assert not guessed, "calls followed by name only (annotate the variable with its snaplake class):\n" + "\n".join(guessed)


def test_every_call_into_the_s3_adapter_has_a_receiver_of_known_type() -> None:
    """An adapter method called on a receiver the scan cannot type would touch S3 data no table entry names."""
    guesses = codebase().adapter_guesses()
    assert not guesses, "adapter calls on receivers of unknown type (annotate them as snaplake.core.s3.Bucket):\n" + "\n".join(guesses)


# ---------------------------------------------------------------------- Lambda policies
FUNCTION_IDS = [h.function_id for h in handlers(template(), PROJECT_ROOT)]


def test_template_has_handlers_to_check() -> None:
    assert FUNCTION_IDS


@pytest.mark.parametrize("key_template", [DEFAULT_KEY_TEMPLATE, SEED_KEY_TEMPLATE], ids=["rds/ key template", "{database}/ key template"])
@pytest.mark.parametrize("has_lake_prefix", [True, False], ids=["with LakePrefix", "without LakePrefix"])
@pytest.mark.parametrize("function_id", FUNCTION_IDS)
def test_function_policy_allows_every_aws_call_its_handler_can_make(function_id: str, has_lake_prefix: bool, key_template: str) -> None:
    handler = _handler(function_id)
    assert handler.path.is_file(), f"{function_id}: no handler file {handler.path.relative_to(PROJECT_ROOT)}"
    module_key = codebase().load_handler(handler.path)
    assert UnitId(module_key, handler.name) in codebase().units(), f"{function_id}: {module_key} defines no {handler.name}"
    unlisted = unlisted_calls(codebase(), AWS_CALLS, handler)
    assert not unlisted, f"{function_id} reaches client calls snaplake.permissions.AWS_CALLS does not list:\n" + "\n".join(unlisted)
    found = _function_gaps(deployed(has_lake_prefix, key_template), handler)
    assert not found, f"{function_id}'s policy in template.yaml lacks:\n" + "\n".join(map(str, found))


# ---------------------------------------------------------------------- state machine policies
def test_template_has_state_machines_to_check() -> None:
    assert state_machine_ids(template())


@pytest.mark.parametrize("logical_id", state_machine_ids(template()))
def test_state_machine_policy_allows_every_task(logical_id: str) -> None:
    found = _state_machine_gaps(logical_id)
    assert not found, f"{logical_id}'s policy in template.yaml lacks:\n" + "\n".join(map(str, found))


@pytest.mark.parametrize("logical_id", state_machine_ids(template()))
def test_state_machine_check_sees_its_lambda_tasks(logical_id: str) -> None:
    path = definition_path(template(), logical_id, PROJECT_ROOT)
    assert path is not None
    requirements = state_machine_requirements(template(), logical_id, json.loads(path.read_text()))
    assert any(r.action == "lambda:InvokeFunction" and r.resources for r in requirements)
    assert not [r for r in requirements if r.action.startswith("(unrecognized")], [r.describe() for r in requirements]


# ---------------------------------------------------------------------- the checker can fail
def _without_action(tpl: dict[str, Any], logical_id: str, action: str) -> dict[str, Any]:
    """A copy of the template whose `logical_id` no longer lists `action` in any inline policy statement."""
    changed = copy.deepcopy(tpl)

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            if node.get("Effect") == "Allow" and "Action" in node:
                kept = [a for a in (node["Action"] if isinstance(node["Action"], list) else [node["Action"]]) if a != action]
                return {**node, "Action": kept or ["none:Nothing"]}
            return {k: strip(v) for k, v in node.items()}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    props = resources_in(changed)[logical_id]["Properties"]
    props["Policies"] = strip(props["Policies"])
    return changed


def test_checker_reports_an_action_taken_out_of_a_function_policy() -> None:
    """Every function with an inline-granted S3 requirement loses one action in turn; each loss is reported."""
    checked = 0
    tpl = deployed()
    for handler in handlers(tpl, PROJECT_ROOT):
        missing = {g.action for g in _function_gaps(tpl, handler)}
        requirements = function_requirements(tpl, codebase(), AWS_CALLS, handler)
        actions = sorted({r.action for r in requirements if r.action.startswith(("s3:", "kms:")) and r.action not in missing})
        for action in actions[:1]:
            reported = _function_gaps(_without_action(tpl, handler.function_id, action), handler)
            assert action in {gap.action for gap in reported}, f"removing {action} from {handler.function_id} went unnoticed"
            checked += 1
    assert checked >= 3


def test_checker_reports_a_lake_folder_the_policy_does_not_grant() -> None:
    """The lake is checked folder by folder: a function whose code wrote another pipeline's folder too, or whose
    policy lost one of its folders, is reported, though the action is granted elsewhere in the lake."""
    tpl = deployed()
    handler = _handler("StreamFlattenFunction")
    assert not _function_gaps(tpl, handler)
    stream = LAKE_SCOPES["StreamFlattenFunction"]
    wider = {**LAKE_SCOPES, "StreamFlattenFunction": LakeScope(stream.reads, (*stream.writes, "dynamodb/"), stream.deletes)}
    reported = {(gap.action, gap.resource) for gap in _function_gaps(tpl, handler, wider)}
    assert ("s3:PutObject", "arn:aws:s3:::{LakeBucket}/{LakePrefix}/dynamodb/snaplake-object") in reported
    assert {action for action, _ in reported} == {"s3:PutObject"}

    narrowed = copy.deepcopy(tpl)
    for statement in resources_in(narrowed)["StreamFlattenFunction"]["Properties"]["Policies"][0]["Statement"]:
        if isinstance(statement, dict) and "s3:PutObject" in statement.get("Action", []):
            statement["Resource"] = statement["Resource"][:1]  # the change log only: no claim, no column registry
    reported = {(gap.action, gap.resource) for gap in _function_gaps(narrowed, handler)}
    claims = "arn:aws:s3:::{LakeBucket}/{LakePrefix}/_snaplake/claims/dynamodb_stream_changes/snaplake-object"
    assert ("s3:PutObject", claims) in reported and ("s3:GetObject", claims) in reported


def test_checker_reports_a_function_without_a_lake_scope() -> None:
    reported = _function_gaps(deployed(), _handler("StreamFlattenFunction"), {})
    assert reported and all("no entry in _lake_scope.LAKE_SCOPES" in gap.resource for gap in reported if gap.action.startswith("s3:Get"))


def test_checker_reports_a_state_machine_that_may_not_invoke_its_lambdas() -> None:
    logical_id = state_machine_ids(template())[0]
    changed = copy.deepcopy(template())
    props = resources_in(changed)[logical_id]["Properties"]
    props["Policies"] = [p for p in props["Policies"] if not (isinstance(p, dict) and "LambdaInvokePolicy" in p)]
    path = definition_path(changed, logical_id, PROJECT_ROOT)
    assert path is not None
    reported = gaps(changed, logical_id, state_machine_requirements(changed, logical_id, json.loads(path.read_text())))
    assert "lambda:InvokeFunction" in {gap.action for gap in reported}


def test_checker_reports_a_client_call_missing_from_the_table_and_an_entry_without_a_call() -> None:
    path = LIBRARY_DIR / "rds" / "finalize.py"
    source = path.read_text().replace(
        "    check_share(manifest, batches=batch_count)\n",
        "    check_share(manifest, batches=batch_count)\n    s3.delete_objects(Bucket=lake.bucket, Delete={'Objects': []})\n",
    )
    assert "delete_objects" in source
    altered = Codebase(LIBRARY_DIR, PROJECT_ROOT, sources={path: source}, adapters=ADAPTERS)
    altered.load_library_module("rds.finalize")
    table = copy.deepcopy(AWS_CALLS)
    table["snaplake.rds.finalize"]["finalize_copy"] += ("s3.copy lake -> lake",)
    problems = "\n".join(table_problems(altered, table, "snaplake.rds.finalize"))
    assert "finalize_copy calls .delete_objects()" in problems
    assert "lists copy, which" in problems


def test_checker_charges_s3_adapter_calls_to_their_caller_and_reports_an_untyped_receiver() -> None:
    """A write through the adapter is a put_object of the function that calls it: take the entry away and the check
    says so; call the adapter on a receiver whose type the scan cannot tell and that is reported too."""
    path = LIBRARY_DIR / "rds" / "finalize.py"
    altered = Codebase(LIBRARY_DIR, PROJECT_ROOT, adapters=ADAPTERS)
    altered.load_library_module("rds.finalize")
    table = copy.deepcopy(AWS_CALLS)
    table["snaplake.rds.finalize"]["finalize_copy"] = tuple(
        e for e in table["snaplake.rds.finalize"]["finalize_copy"] if not e.startswith("s3.put_object")
    )
    assert "finalize_copy calls .put_object()" in "\n".join(table_problems(altered, table, "snaplake.rds.finalize"))

    untyped = path.read_text().replace(
        "    check_share(manifest, batches=batch_count)\n",
        "    check_share(manifest, batches=batch_count)\n    request['x'].write_bytes('k', b'')\n",
    )
    guessing = Codebase(LIBRARY_DIR, PROJECT_ROOT, sources={path: untyped}, adapters=ADAPTERS)
    guessing.load_library_module("rds.finalize")
    assert any("finalize_copy" in g and ".write_bytes()" in g for g in guessing.adapter_guesses())


def test_sam_policy_templates_are_read_from_the_sam_translator() -> None:
    tpl: dict[str, Any] = {
        "Resources": {
            "Fn": {
                "Type": "AWS::Serverless::Function",
                "Properties": {"Policies": [{"LambdaInvokePolicy": {"FunctionName": {"Ref": "Other"}}}]},
            },
            "Other": {"Type": "AWS::Serverless::Function", "Properties": {}},
        }
    }
    (grant,) = policy_of(tpl, "Fn").grants
    assert grant.actions == ("lambda:InvokeFunction",)
    assert grant.allows("lambda:InvokeFunction", "arn:aws:lambda:{AWS::Region}:{AWS::AccountId}:function:{Other}")
    assert not grant.allows("lambda:InvokeFunction", "arn:aws:lambda:{AWS::Region}:{AWS::AccountId}:function:{Third}")


MINI_TEMPLATE = """
Resources:
  ExportBucket:
    Type: AWS::S3::Bucket
    Properties:
      BucketEncryption:
        ServerSideEncryptionConfiguration:
          - ServerSideEncryptionByDefault: { SSEAlgorithm: aws:kms, KMSMasterKeyID: !GetAtt Key.Arn }
  LakeBucket:
    Type: AWS::S3::Bucket
    Properties:
      BucketEncryption:
        ServerSideEncryptionConfiguration:
          - ServerSideEncryptionByDefault: { SSEAlgorithm: aws:kms, KMSMasterKeyID: !GetAtt Key.Arn }
  Key:
    Type: AWS::KMS::Key
  CopyFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/copy/
      Handler: app.handler
      Policies:
        - Statement:
            - Effect: Allow
              Action: s3:GetObject
              Resource: !Sub "${ExportBucket.Arn}/${ExportPrefix}/*"
            - Effect: Allow
              Action: s3:PutObject
              Resource: !Sub "${ExportBucket.Arn}/*"
            - Effect: Allow
              Action: kms:Decrypt
              Resource: !GetAtt Key.Arn
"""


def _library_module(tmp_path: Path, source: str) -> Path:
    """A one-module snaplake library (`snaplake.store`) under tmp_path/lib; returns the library folder."""
    library = tmp_path / "lib"
    library.mkdir()
    (library / "store.py").write_text(textwrap.dedent(source))
    return library


def test_checker_follows_a_handler_into_the_library_and_checks_buckets_and_keys(tmp_path: Path) -> None:
    """A handler calls a library method through a typed variable; the copy it makes needs PutObject on the lake
    (granted only on the export bucket) and kms:GenerateDataKey (not granted); the unreached function's call is not charged."""
    from snaplake_local.stack import load_template

    library = _library_module(
        tmp_path,
        """
            class Store:
                def __init__(self, s3):
                    self.s3 = s3

                def move_in(self, key):
                    self.s3.copy_object(CopySource={"Bucket": "b", "Key": key}, Bucket="lake", Key=key)


            def open_store(s3) -> Store:
                return Store(s3)


            def unused(s3):
                s3.delete_object(Bucket="lake", Key="k")
            """,
    )
    (tmp_path / "functions" / "copy").mkdir(parents=True)
    (tmp_path / "functions" / "copy" / "app.py").write_text(
        textwrap.dedent(
            """
            from snaplake.store import open_store

            S3 = object()


            def handler(event, context):
                store = open_store(S3)
                store.move_in(event)
            """
        )
    )
    (tmp_path / "template.yaml").write_text(MINI_TEMPLATE)
    table: dict[str, dict[str, tuple[str, ...]]] = {
        "snaplake.store": {"Store.move_in": ("s3.copy_object rds-export -> lake",), "unused": ("s3.delete_object lake",)},
    }
    mini = Codebase(library, tmp_path)
    mini.load_library()
    mini.load_handler(tmp_path / "functions" / "copy" / "app.py")
    assert table_problems(mini, table) == []
    tpl = load_template(tmp_path / "template.yaml")
    (handler,) = handlers(tpl, tmp_path)
    scopes = {"CopyFunction": LakeScope(writes=(EVERYTHING,))}
    reported = {(gap.action, gap.resource) for gap in gaps(tpl, "CopyFunction", function_requirements(tpl, mini, table, handler, scopes))}
    key = "arn:aws:kms:{AWS::Region}:{AWS::AccountId}:key/{Key}"
    assert ("kms:GenerateDataKey", key) in reported
    assert ("s3:PutObject", "arn:aws:s3:::{LakeBucket}/{LakePrefix}/snaplake-object") in reported
    assert ("s3:PutObject", "arn:aws:s3:::{LakeBucketName}/{LakePrefix}/snaplake-object") in reported
    assert not [r for r in reported if r[0] in ("s3:GetObject", "kms:Decrypt", "s3:DeleteObject")], reported


def test_scan_follows_an_untyped_receiver_to_every_snaplake_method_of_that_name(tmp_path: Path) -> None:
    library = _library_module(
        tmp_path,
        """
            class Store:
                def __init__(self, s3):
                    self.s3 = s3

                def drop(self, key):
                    self.s3.delete_object(Bucket="lake", Key=key)


            def drop_all(store, keys):
                for key in keys:
                    store.drop(key)
                {}.copy()
            """,
    )
    mini = Codebase(library, tmp_path)
    mini.load_library()
    unit = mini.units()[UnitId("snaplake.store", "drop_all")]
    assert unit.guessed == {UnitId("snaplake.store", "Store.drop")}
    assert [call.method for u in mini.reachable([unit.id]) for call in u.calls] == ["delete_object"]


def test_scan_follows_a_call_through_a_protocol_to_the_classes_that_implement_it(tmp_path: Path) -> None:
    """The stream handler passes its LakeChangeLog as a ChangeLogStore (a Protocol): the scan charges the calls of the
    implementing class's method, not of the protocol's empty one; a method of that name taking other arguments is no
    implementation."""
    library = _library_module(
        tmp_path,
        """
            from typing import Protocol


            class Store(Protocol):
                def put(self, key: str) -> None: ...


            class S3Store:
                def __init__(self, s3):
                    self.s3 = s3

                def put(self, key):
                    self.s3.put_object(Bucket="lake", Key=key)


            class Other:
                def put(self, key, body, extra):
                    self.s3.delete_object(Bucket="lake", Key=key)


            def save(store: Store, key: str) -> None:
                store.put(key)
            """,
    )
    mini = Codebase(library, tmp_path)
    mini.load_library()
    assert [call.method for unit in mini.reachable([UnitId("snaplake.store", "save")]) for call in unit.calls] == ["put_object"]
    stream = function_requirements(deployed(), codebase(), AWS_CALLS, _handler("StreamFlattenFunction"))
    assert any(r.why.startswith("snaplake.streams.landed:LakeChangeLog.write") for r in stream)
