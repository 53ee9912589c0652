"""Nothing the real handlers do is refused by their narrowed policies, and they stay in the folders
_lake_scope.LAKE_SCOPES gives them.

template.yaml is deployed on the emulator twice (no LakePrefix with the default `rds/...` key template, and LakePrefix
`lake` with the `{database}/...` one), and the RDS pipeline, a full and an incremental DynamoDB export and a
redelivered stream batch run there with the real handlers. Every S3 request each function's own clients make is
decided against that function's policy, rendered for the deployment (_emulated_iam): none may be refused, a GET or
HEAD that answers 404 needs s3:ListBucket, and each request into the lake must be in a folder the function's entry in
LAKE_SCOPES lists for that access. The Athena job role is not run here (test_athena_job_scope.py and
test_lake_write_scope.py hold its grants; its S3 writes are Athena's).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

import pytest
from snaplake.rds.layout import SEED_KEY_TEMPLATE
from snaplake_local.sample_data import orders_items
from snaplake_local.sources import (
    ORDERS_TABLE,
    ORDERS_TABLE_ARN,
    create_orders_table,
    default_parameters,
    sample_event,
    seed_sample_sources,
)
from snaplake_local.stack import EmulatedStack
from snaplake_local.streams import STREAM_TABLE, create_stream_table, stream_events

from ._emulated_iam import RequestChecker, S3Request
from ._lake_scope import LAKE_SCOPES, resolve

DEPLOYMENTS = {
    "no LakePrefix, rds/ key template": {},
    "LakePrefix lake, {database}/ key template": {"LakePrefix": "lake", "LakeKeyTemplate": SEED_KEY_TEMPLATE},
}
NOT_RUN_HERE = {"AthenaQueryFunction"}


@dataclass
class Deployment:
    checker: RequestChecker
    parameters: dict[str, str]
    lake_bucket: str
    clients: dict[str, int]  # function -> S3 clients hooked

    def lake_requests(self) -> list[S3Request]:
        return [r for r in self.checker.requests if r.bucket == self.lake_bucket and r.key is not None]


def _cart(number: int) -> dict[str, Any]:
    return {"cart": {"S": f"CART#{number}"}, "owner": {"M": {"id": {"S": f"C{number:04d}"}}}, "total": {"N": f"{number}.50"}}


def _run_pipelines(stack: EmulatedStack) -> None:
    for _ in range(2):  # the second run finds the snapshot's claim and lands nothing
        rds = stack.run("RdsExportStateMachine", sample_event("rds_automated_cluster_snapshot.json"))
        assert rds.status == "SUCCEEDED", rds.cause
    create_orders_table(stack)
    stack.clock.advance(20 * 60)
    full = stack.run("DynamoDbExportStateMachine", {"tableArn": ORDERS_TABLE_ARN})
    assert full.status == "SUCCEEDED", full.cause
    stack.client("dynamodb").put_item(TableName=ORDERS_TABLE, Item=orders_items(start=200, count=1)[0])
    stack.clock.advance(3600)
    incremental = stack.run("DynamoDbExportStateMachine", {"tableArn": ORDERS_TABLE_ARN})
    assert incremental.status == "SUCCEEDED", incremental.cause
    assert incremental.output["export"]["exportType"] == "INCREMENTAL_EXPORT"
    stream_arn = create_stream_table(stack)
    for number in range(1, 4):
        stack.client("dynamodb").put_item(TableName=STREAM_TABLE, Item=_cart(number))
    for _ in range(2):  # delivered again: the function reads back what already landed
        for event in stream_events(stack, stream_arn):
            payload, errored = stack.function("StreamFlattenFunction").invoke(event)
            assert not errored and payload == {"batchItemFailures": []}, payload


@pytest.fixture(scope="module", params=list(DEPLOYMENTS.values()), ids=list(DEPLOYMENTS))
def deployment(request: pytest.FixtureRequest) -> Deployment:
    """The requests recorded while the pipelines ran (the stack is closed again before the tests look at them)."""
    with EmulatedStack(default_parameters(**request.param), function_log_level="CRITICAL") as stack:
        seed_sample_sources(stack)
        checker = RequestChecker()
        clients = {function.logical_id: checker.attach(stack, function.logical_id) for function in stack.lambdas.functions.values()}
        _run_pipelines(stack)
        return Deployment(checker, dict(stack.params), stack.lake_bucket, clients)


def test_no_s3_request_of_the_real_handlers_is_refused_by_their_policy(deployment: Deployment) -> None:
    assert deployment.checker.requests
    refused = sorted(set(deployment.checker.refused))
    assert not refused, f"{len(refused)} requests the functions' policies refuse:\n" + "\n".join(refused[:40])


def test_every_lake_request_is_in_a_folder_of_the_functions_lake_scope(deployment: Deployment) -> None:
    prefix = deployment.parameters["LakePrefix"]
    outside = set()
    for request in deployment.lake_requests():
        scope = LAKE_SCOPES[request.function]
        folders = scope.folders(request.action)
        assert folders is not None, f"_lake_scope does not know the kind of access {request.action} is"
        key = str(request.key).removeprefix(f"{prefix}/" if prefix else "")
        if not any(key.startswith(resolve(folder, deployment.parameters)) for folder in folders):
            outside.add(f"{request.function}: {request.operation} {request.action} on {request.key} (LAKE_SCOPES: {folders})")
    assert not outside, "lake requests outside the folders LAKE_SCOPES gives their function:\n" + "\n".join(sorted(outside))


def test_every_function_that_reaches_the_lake_was_seen_at_work(deployment: Deployment) -> None:
    """The hooks caught each lake function's requests, so the two checks above covered them all."""
    expected = {f for f, scope in LAKE_SCOPES.items() if scope.touches_the_lake and f not in NOT_RUN_HERE}
    seen = {request.function for request in deployment.lake_requests()}
    assert expected <= seen, f"no lake request seen from {sorted(expected - seen)} (hooked S3 clients: {deployment.clients})"
    untouched = {f for f, scope in LAKE_SCOPES.items() if not scope.touches_the_lake}
    assert not seen & untouched, sorted(seen & untouched)


def test_the_checker_reports_a_request_the_policy_refuses() -> None:
    """With the stream function's policy narrowed to its change-log folder, its claim and column-registry requests
    are reported: the check is not vacuous."""
    parameters = default_parameters(DynamoDbTableArns="", FirehoseTransform="false")
    with EmulatedStack(parameters, function_log_level="CRITICAL") as stack:
        narrowed = copy.deepcopy(stack.template)
        statements = narrowed["Resources"]["StreamFlattenFunction"]["Properties"]["Policies"][0]["Statement"]
        for statement in statements:
            if isinstance(statement, dict) and "s3:PutObject" in statement.get("Action", []):
                statement["Resource"] = statement["Resource"][:1]
        checker = RequestChecker()
        assert checker.attach(stack, "StreamFlattenFunction", narrowed) == 1
        stream_arn = create_stream_table(stack)
        stack.client("dynamodb").put_item(TableName=STREAM_TABLE, Item=_cart(1))
        for event in stream_events(stack, stream_arn):
            stack.function("StreamFlattenFunction").invoke(event)
    assert any("PutObject needs s3:PutObject" in line and "/_snaplake/claims/dynamodb_stream_changes/" in line for line in checker.refused)
    assert all("/_snaplake/" in line for line in checker.refused), checker.refused  # the change log itself is still granted


def _aged(record: str) -> str:
    """A retention record as if its partition left Glue long ago (past the query grace)."""
    return json.dumps({**json.loads(record), "expiredAt": "2000-01-01T00:00:00Z"})


@pytest.mark.parametrize("layout", list(DEPLOYMENTS.values()), ids=list(DEPLOYMENTS))
def test_the_retention_deletes_of_the_real_catalog_handler_are_granted_and_stay_in_the_rds_data_folder(layout: dict[str, str]) -> None:
    """SnapshotRetentionCount=1: two shop snapshots land, the older leaves Glue; with its record aged past the query
    grace, the next RegisterCatalog deletes its objects, each DeleteObject decided against the function's policy."""
    with EmulatedStack(default_parameters(SnapshotRetentionCount="1", **layout), function_log_level="CRITICAL") as stack:
        seed_sample_sources(stack)
        checker = RequestChecker()
        assert checker.attach(stack, "RdsCatalogFunction") == 1
        for event in ("rds_manual_instance_snapshot.json", "rds_latest_snapshot_request.json"):
            assert stack.run("RdsExportStateMachine", sample_event(event)).status == "SUCCEEDED"
        glue = stack.client("glue")
        for table in glue.get_tables(DatabaseName="shop")["TableList"]:
            aged = {k: _aged(v) if k.startswith("snaplake_expired.") else v for k, v in table["Parameters"].items()}
            fields = ("Name", "TableType", "PartitionKeys", "StorageDescriptor", "Description")
            glue.update_table(DatabaseName="shop", TableInput={**{k: table[k] for k in fields if k in table}, "Parameters": aged})
        assert stack.run("RdsExportStateMachine", sample_event("rds_latest_snapshot_request.json")).status == "SUCCEEDED"
        parameters = dict(stack.params)
    deletes = [r for r in checker.requests if r.action == "s3:DeleteObject"]
    assert deletes, "the aged snapshot's objects were deleted by the handler"
    assert not checker.refused, sorted(set(checker.refused))[:20]
    prefix = parameters["LakePrefix"]
    rds_data = resolve(LAKE_SCOPES["RdsCatalogFunction"].deletes[0], parameters)
    assert all(str(r.key).removeprefix(f"{prefix}/" if prefix else "").startswith(rds_data) for r in deletes)
