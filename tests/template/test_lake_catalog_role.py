"""The lake stack's LakeCatalogRole (issue 16 item 6, ADR 0016): each LakeWriterAccounts account may assume it only
tagged with its own account id, and the session then writes only Glue databases named
<GlueDatabasePrefix>accounts_<that id>_*: no source account can create or overwrite another's tables, or the lake's
own. The trust policy and the role's policy are rendered from template.yaml and decided request by request
(tests/template/_bucket_policy.py)."""

from __future__ import annotations

from typing import Any

import pytest
from snaplake_local.template import TemplateEvaluator, TemplateRuleFailed

from tests.template._bucket_policy import Request, decide, decide_identity
from tests.template._support import resources, template

LAKE_OWNER = "123456789012"
WRITER_A = "111111111111"
WRITER_B = "222222222222"
STRANGER = "333333333333"
REGION = "eu-west-1"
PREFIX = "lake_"
ROLE = f"arn:aws:iam::{LAKE_OWNER}:role/snaplake-LakeCatalogRole-1"
TAG = "snaplake-source-account"
GLUE_WRITES = ["glue:CreateDatabase", "glue:CreateTable", "glue:UpdateTable", "glue:BatchCreatePartition", "glue:BatchDeletePartition"]


def _role() -> dict[str, Any]:
    evaluator = TemplateEvaluator(
        template(),
        {"LakeWriterAccounts": f"{WRITER_A},{WRITER_B}", "GlueDatabasePrefix": PREFIX, "LakeBucketName": "", "SourceIdentifiers": "db"},
        REGION,
        LAKE_OWNER,
        "snaplake",
    )
    evaluator.physical = {"LakeBucket": {"ref": "central-lake", "Arn": "arn:aws:s3:::central-lake"}}
    return dict(evaluator.evaluate(dict(evaluator.resources())["LakeCatalogRole"]["Properties"]))


def _may_assume(account: str, tags: dict[str, str]) -> bool:
    trust = _role()["AssumeRolePolicyDocument"]
    policy = {"Statement": [{**statement, "Resource": ROLE} for statement in trust["Statement"]]}
    context = {f"aws:RequestTag/{key}": value for key, value in tags.items()}
    return all(decide(policy, Request(account, action, ROLE, context)) == "Allow" for action in ("sts:AssumeRole", "sts:TagSession"))


def _session_may(account_tag: str, action: str, resource: str) -> bool:
    statements = [s for policy in _role()["Policies"] for s in policy["PolicyDocument"]["Statement"]]
    request = Request(LAKE_OWNER, action, resource, {f"aws:PrincipalTag/{TAG}": account_tag})
    return decide_identity(statements, request) == "Allow"


def _database(name: str) -> str:
    return f"arn:aws:glue:{REGION}:{LAKE_OWNER}:database/{name}"


def _table(database: str, table: str) -> str:
    return f"arn:aws:glue:{REGION}:{LAKE_OWNER}:table/{database}/{table}"


def test_a_writer_account_assumes_the_role_only_tagged_with_its_own_account() -> None:
    assert _may_assume(WRITER_A, {TAG: WRITER_A})
    assert not _may_assume(WRITER_A, {TAG: WRITER_B}), "a source account must not act for another"
    assert not _may_assume(WRITER_A, {}), "an untagged session would have no databases of its own"
    assert not _may_assume(STRANGER, {TAG: STRANGER})


@pytest.mark.parametrize("action", GLUE_WRITES)
def test_a_session_writes_only_its_own_accounts_databases(action: str) -> None:
    own = f"{PREFIX}accounts_{WRITER_A}_world"
    assert _session_may(WRITER_A, action, _database(own))
    assert _session_may(WRITER_A, action, _table(own, "city"))
    for database in (f"{PREFIX}accounts_{WRITER_B}_world", f"{PREFIX}world", f"{PREFIX}dynamodb", "world", f"{PREFIX}accounts_{WRITER_A}"):
        assert not _session_may(WRITER_A, action, _database(database)), database
        assert not _session_may(WRITER_A, action, _table(database, "city")), database


def test_a_crafted_database_name_does_not_reach_another_accounts_tables() -> None:
    # accounts_<A>_ followed by anything stays A's: an account id has a fixed 12 digits, and the `_` after it ends it.
    for database in (f"{PREFIX}accounts_{WRITER_A}{WRITER_B}_x", f"{PREFIX}accounts_{WRITER_A[:-1]}_x"):
        assert _session_may(WRITER_A, "glue:CreateTable", _table(database, "t")) == database.startswith(f"{PREFIX}accounts_{WRITER_A}_")


def test_the_role_exists_only_in_a_stack_that_owns_the_lake_and_has_writers() -> None:
    role = resources()["LakeCatalogRole"]
    assert role["Condition"] == "HasLakeWriters"
    assert template()["Outputs"]["LakeCatalogRoleArn"]["Condition"] == "HasLakeWriters"


@pytest.mark.parametrize("function_id", ["RdsCatalogFunction", "DynamoDbCatalogFunction", "StreamFlattenFunction"])
def test_a_source_stacks_catalog_functions_assume_only_the_lake_role(function_id: str) -> None:
    statements = resources()[function_id]["Properties"]["Policies"][0]["Statement"]
    assumes = [s for s in statements if isinstance(s, dict) and "Fn::If" in s]
    sts = [s["Fn::If"] for s in assumes if s["Fn::If"][0] == "HasLakeCatalogRole"]
    assert len(sts) == 1 and sts[0][2] == {"Ref": "AWS::NoValue"}
    assert sts[0][1]["Action"] == ["sts:AssumeRole", "sts:TagSession"] and sts[0][1]["Resource"] == {"Ref": "LakeCatalogRoleArn"}
    assert resources()[function_id]["Properties"]["Environment"]["Variables"]["LAKE_CATALOG_ROLE"] == {"Ref": "LakeCatalogRoleArn"}


def test_a_source_stack_with_the_lake_catalog_keeps_no_current_tables() -> None:
    source = {"SourceIdentifiers": "db", "LakeCatalogRoleArn": ROLE}
    with pytest.raises(TemplateRuleFailed, match="DynamoDbCurrentTables=off"):
        TemplateEvaluator(template(), source, REGION, WRITER_A, "snaplake")
    TemplateEvaluator(template(), {**source, "DynamoDbCurrentTables": "off"}, REGION, WRITER_A, "snaplake")
    TemplateEvaluator(template(), {"SourceIdentifiers": "db"}, REGION, WRITER_A, "snaplake")  # the rule is the source's only


@pytest.mark.parametrize("retention", ["SnapshotRetentionCount", "SnapshotRetentionDays", "ChangeLogRetentionDays"])
def test_a_source_stack_keeps_no_retention_since_the_lake_bucket_never_lets_it_delete(retention: str) -> None:
    """Retention purges expired files after the grace, and the lake bucket never lets a writer account delete
    (tests/template/test_lake_isolation.py), so a source stack with retention would fail every RegisterCatalog after it."""
    source = {"SourceIdentifiers": "db", "LakeCatalogRoleArn": ROLE, "DynamoDbCurrentTables": "off"}
    with pytest.raises(TemplateRuleFailed, match="SnapshotRetentionCount, SnapshotRetentionDays and ChangeLogRetentionDays"):
        TemplateEvaluator(template(), {**source, retention: "3"}, REGION, WRITER_A, "snaplake")
    TemplateEvaluator(template(), source, REGION, WRITER_A, "snaplake")
    TemplateEvaluator(template(), {"SourceIdentifiers": "db", retention: "3"}, REGION, WRITER_A, "snaplake")  # the lake's own
