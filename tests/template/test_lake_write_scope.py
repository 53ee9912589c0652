"""Each function reaches only its own folders of the lake (hostile review: a buggy or compromised stream function could
overwrite RDS data, DynamoDB exports, other pipelines' claims and column registries, and `_SUCCESS` markers).

For every function of template.yaml, whose entry in _lake_scope.LAKE_SCOPES says which folders it reads, writes and
deletes (a function added without an entry fails here), its policy is evaluated (_iam.policy_of: its Allow and Deny
statements) with LakePrefix `lake` and empty, and with the default LakeKeyTemplate (`rds/...`) and one that begins
with a placeholder (`{database}/...`, the RDS data folder is then the whole LakePrefix). A sample key in each of its
folders is allowed for that access; a sample key in every other folder (the other pipelines' data and `_SUCCESS`
markers, their claims and column registries under `_snaplake/`, the DynamoDB staging folder, the Athena jobs' tables
and plans, the source accounts' folders) is refused.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest
from snaplake.rds.layout import DEFAULT_KEY_TEMPLATE, SEED_KEY_TEMPLATE

from ._iam import Policy, policy_of, with_condition, with_parameters
from ._lake_scope import (
    ATHENA_JOBS,
    ATHENA_WORK,
    CURRENT_WORK,
    DYNAMODB_CLAIMS,
    DYNAMODB_COLUMNS,
    DYNAMODB_CURRENT,
    DYNAMODB_DATA,
    DYNAMODB_STAGING,
    EVERYTHING,
    LAKE_SCOPES,
    RDS_CLAIMS,
    RDS_DATA,
    RDS_SNAPSHOT_CLAIMS,
    SOURCE_ACCOUNTS,
    STREAM_CLAIMS,
    STREAM_COLUMNS,
    STREAM_DATA,
    LakeScope,
    resolve,
    within,
)
from ._support import function_ids, template

LAKE = "arn:aws:s3:::{LakeBucket}"
KEY_TEMPLATES = {"rds/ key template": DEFAULT_KEY_TEMPLATE, "{database}/ key template": SEED_KEY_TEMPLATE}
PREFIXES = {"LakePrefix lake": "lake", "no LakePrefix": ""}

# What each access is allowed as, and what must be refused outside the function's folders.
ALLOWED = {"reads": "s3:GetObject", "writes": "s3:PutObject", "deletes": "s3:DeleteObject"}
REFUSED = {
    "reads": ("s3:GetObject",),
    "writes": ("s3:PutObject", "s3:PutObjectAcl", "s3:AbortMultipartUpload"),
    "deletes": ("s3:DeleteObject", "s3:DeleteObjectVersion"),
}

# Keys as the pipelines write them, relative to their folder (RDS data: see _rds_data_keys).
SAMPLES: dict[str, tuple[str, ...]] = {
    RDS_CLAIMS: ("tables/world/city.json", "partitions/rds/world/city/snapshot_time=20240502T024019Z.json"),
    RDS_SNAPSHOT_CLAIMS: ("world-aurora/20240502T024019Z.json",),
    DYNAMODB_DATA[0]: ("shop_orders/export_time=20240502T030000Z/part-00000.parquet", "shop_orders/export_time=20240502T030000Z/_SUCCESS"),
    DYNAMODB_DATA[1]: (
        "shop_orders/dt=2024-05-02/hour=07/01714618800000-0a1b2c3d-00000.parquet",
        "shop_orders/dt=2024-05-02/hour=07/_SUCCESS",
    ),
    DYNAMODB_CLAIMS[0]: ("shop_orders.json",),
    DYNAMODB_CLAIMS[1]: ("shop_orders.json",),
    DYNAMODB_COLUMNS: ("dynamodb/shop_orders.json", "dynamodb_changes/shop_orders.json"),
    DYNAMODB_STAGING: ("01714618800000-0a1b2c3d/dynamodb/shop_orders/export_time=20240502T030000Z/part-00000.parquet",),
    DYNAMODB_CURRENT: ("shop_orders/data/00001-0a1b2c3d.parquet", "shop_orders/metadata/00001-0a1b2c3d.metadata.json"),
    CURRENT_WORK: ("shop_orders.json", "results/0a1b2c3d.csv"),
    STREAM_DATA: ("orders/dt=2024-05-02/hour=07/changes-0123456789abcdef-" + "9" * 40 + "-1-2-0123456789ab.parquet",),
    STREAM_CLAIMS: ("orders.json",),
    STREAM_COLUMNS: ("orders.json",),
    ATHENA_WORK: ("plans/daily_summary/run-1.json", "results/0a1b2c3d.csv", "probes/0a1b2c3d/part-0.parquet"),
    ATHENA_JOBS: ("marts/continent_summary/part-0.parquet",),
    SOURCE_ACCOUNTS: ("111111111111/rds/world/city/snapshot_time=20240502T024019Z/1/part-00000.parquet",),
}
FOLDERS = (RDS_DATA, *SAMPLES)


def _rds_data_keys(key_template: str) -> tuple[str, ...]:
    """A data file and its partition's `_SUCCESS`, where the key template puts them (relative to LakePrefix)."""
    values = {
        "database": "world",
        "table": "city",
        "source_table": "public.city",
        "source_id": "world-aurora",
        "export_id": "sl-world-aurora-0a1b2c3d",
        "snapshot_time": "20240502T024019Z",
        "snapshot_date": "2024-05-02",
        "batch": "1",
        "file": "part-00000.parquet",
    }
    data = key_template.format_map(values)
    return data, data.rsplit("/", 2)[0] + "/_SUCCESS"


def _keys(folder: str, parameters: dict[str, str]) -> tuple[str, ...]:
    """Sample keys of a folder, relative to LakePrefix."""
    if folder == RDS_DATA:
        return _rds_data_keys(parameters["LakeKeyTemplate"])
    return tuple(resolve(folder, parameters) + key for key in SAMPLES[folder])


@cache
def _policy(function_id: str, prefix: str, key_template: str) -> Policy:
    values = {"LakePrefix": prefix, "LakeKeyTemplate": key_template, "AthenaJobsPrefix": _default("AthenaJobsPrefix")}
    deployed = with_condition(with_parameters(template(), values), "HasLakePrefix", bool(prefix))
    return policy_of(deployed, function_id)


def _default(name: str) -> str:
    return str(template()["Parameters"][name]["Default"])


def _parameters(key_template: str) -> dict[str, str]:
    return {"LakeKeyTemplate": key_template, "AthenaJobsPrefix": _default("AthenaJobsPrefix")}


def _arn(prefix: str, key: str) -> str:
    return f"{LAKE}/{prefix}/{key}" if prefix else f"{LAKE}/{key}"


def _problems(function_id: str, scope: LakeScope, prefix: str, key_template: str) -> list[str]:
    policy, parameters = _policy(function_id, prefix, key_template), _parameters(key_template)
    problems: list[str] = []
    for access, allowed in ALLOWED.items():
        own = getattr(scope, access)
        for folder in FOLDERS:
            mine = any(within(folder, folder_of_mine) for folder_of_mine in own)
            for key in _keys(folder, parameters):
                resource = _arn(prefix, key)
                if mine and policy.decide(allowed, resource) != "Allow":
                    problems.append(f"{allowed} on its own {resource} is refused")
                if not mine:
                    problems += [
                        f"{action} on {resource} is allowed" for action in REFUSED[access] if policy.decide(action, resource) == "Allow"
                    ]
    return problems


def test_every_function_has_a_lake_scope_and_every_scope_a_function() -> None:
    """Adding a function means saying which folders of the lake it reaches (an empty LakeScope when none)."""
    missing = sorted(set(function_ids()) - set(LAKE_SCOPES))
    assert not missing, f"functions without an entry in tests/template/_lake_scope.py LAKE_SCOPES: {missing}"
    stale = sorted(set(LAKE_SCOPES) - set(function_ids()))
    assert not stale, f"LAKE_SCOPES names functions template.yaml does not have: {stale}"


def test_the_samples_cover_every_folder_a_function_reaches() -> None:
    used = {folder for scope in LAKE_SCOPES.values() for access in ALLOWED for folder in getattr(scope, access)}
    assert used - {EVERYTHING} <= set(FOLDERS), sorted(used - set(FOLDERS))


@pytest.mark.parametrize("key_template", KEY_TEMPLATES.values(), ids=KEY_TEMPLATES.keys())
@pytest.mark.parametrize("prefix", PREFIXES.values(), ids=PREFIXES.keys())
@pytest.mark.parametrize("function_id", sorted(function_ids()))
def test_a_function_reaches_its_own_lake_folders_and_no_other(function_id: str, prefix: str, key_template: str) -> None:
    scope = LAKE_SCOPES.get(function_id)
    assert scope is not None, f"{function_id} has no entry in tests/template/_lake_scope.py LAKE_SCOPES"
    problems = _problems(function_id, scope, prefix, key_template)
    assert not problems, f"{function_id} (LakePrefix {prefix!r}, LakeKeyTemplate {key_template!r}):\n" + "\n".join(problems)


@pytest.mark.parametrize(
    ("function_id", "key"),
    [
        ("StreamFlattenFunction", "rds/world/city/snapshot_time=20240502T024019Z/1/part-00000.parquet"),
        ("StreamFlattenFunction", "dynamodb/shop_orders/export_time=20240502T030000Z/_SUCCESS"),
        ("StreamFlattenFunction", "_snaplake/claims/dynamodb/orders.json"),
        ("StreamFlattenFunction", "_snaplake/columns/dynamodb/dynamodb_changes/orders.json"),
        ("ConvertFilesFunction", "dynamodb_stream_changes/orders/dt=2024-05-02/hour=07/x.parquet"),
        ("ConvertPublishFunction", "rds/world/city/snapshot_time=20240502T024019Z/_SUCCESS"),
        ("DynamoDbStartExportFunction", "_snaplake/claims/rds/tables/world/city.json"),
        ("PlanCopyFunction", "_snaplake/claims/dynamodb_stream_changes/orders.json"),
        ("CopyBatchFunction", "_snaplake/athena/plans/daily_summary/run-1.json"),
        ("FinalizeCopyFunction", "athena/marts/continent_summary/part-0.parquet"),
    ],
)
def test_the_review_findings_are_refused(function_id: str, key: str) -> None:
    """The findings as they were put: overwriting another pipeline's data, `_SUCCESS` markers, claims, registries."""
    for key_template in KEY_TEMPLATES.values():
        assert _policy(function_id, "lake", key_template).decide("s3:PutObject", _arn("lake", key)) != "Allow", (key_template, key)


def test_with_a_placeholder_first_key_template_rds_writes_anywhere_else_but_not_into_the_others_folders() -> None:
    """`{database}/...` puts the RDS data folder at the root of LakePrefix: the Deny statement is what keeps the
    other pipelines' folders out of reach then (it holds for any database name, `dynamodb` included)."""
    policy = _policy("CopyBatchFunction", "lake", SEED_KEY_TEMPLATE)
    assert policy.decide("s3:PutObject", _arn("lake", "billing/invoices/partition_datetime=20240502T024019Z/1/p.parquet")) == "Allow"
    for key in ("dynamodb/invoices/partition_datetime=20240502T024019Z/1/p.parquet", "_snaplake/claims/rds/tables/x.json", "accounts/1/x"):
        assert policy.decide("s3:PutObject", _arn("lake", key)) == "Deny", key


def test_the_evaluator_takes_deny_statements_into_account() -> None:
    deployed: dict[str, Any] = {
        "Resources": {
            "Fn": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "Policies": [
                        {
                            "Statement": [
                                {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::b/*"},
                                {"Effect": "Deny", "Action": ["s3:PutObject"], "Resource": "arn:aws:s3:::b/x/*"},
                                {"Effect": "Deny", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::b/y/*", "Condition": {"Bool": {}}},
                            ]
                        }
                    ]
                },
            }
        }
    }
    policy = policy_of(deployed, "Fn")
    assert policy.decide("s3:PutObject", "arn:aws:s3:::b/a") == "Allow"
    assert policy.decide("s3:PutObject", "arn:aws:s3:::b/x/a") == "Deny"
    assert policy.decide("s3:PutObject", "arn:aws:s3:::b/y/a") == "Allow"  # a conditional Deny is not evaluated
    assert policy.decide("s3:GetObject", "arn:aws:s3:::b/a") == "ImplicitDeny"
