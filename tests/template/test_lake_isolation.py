"""Source accounts in a shared lake (issue 12 finding 2): each `LakeWriterAccounts` account reaches only
`<LakePrefix>/accounts/<its id>/`, and the lake key only through S3. The lake bucket's policy and the key's policy are
rendered from template.yaml for concrete parameters and decided request by request (tests/template/_bucket_policy.py)."""

from __future__ import annotations

from typing import Any

import pytest
from snaplake_local.template import TemplateEvaluator

from tests.template._bucket_policy import Request, decide
from tests.template._support import template

OWNER = "123456789012"
WRITER_A = "111111111111"
WRITER_B = "222222222222"
STRANGER = "333333333333"
LAKE = "central-lake"
REGION = "eu-west-1"


def _policies(lake_prefix: str) -> tuple[dict[str, Any], dict[str, Any]]:
    evaluator = TemplateEvaluator(
        template(),
        {"LakeWriterAccounts": f"{WRITER_A},{WRITER_B}", "LakePrefix": lake_prefix, "LakeBucketName": "", "SourceIdentifiers": "db"},
        REGION,
        OWNER,
        "snaplake",
    )
    evaluator.physical = {
        "LakeBucket": {"ref": LAKE, "Arn": f"arn:aws:s3:::{LAKE}"},
        "DataKey": {"ref": "key-id", "Arn": f"arn:aws:kms:{REGION}:{OWNER}:key/key-id"},
    }
    resources = dict(evaluator.resources())
    bucket_policy = evaluator.evaluate(resources["LakeBucketPolicy"]["Properties"]["PolicyDocument"])
    key_policy = evaluator.evaluate(resources["DataKey"]["Properties"]["KeyPolicy"])
    return bucket_policy, key_policy


def _object(key: str) -> str:
    return f"arn:aws:s3:::{LAKE}/{key}"


TLS = {"aws:SecureTransport": "true"}


@pytest.mark.parametrize("prefix", ["lake", ""])
@pytest.mark.parametrize("action", ["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"])
def test_a_source_account_reaches_its_own_folder_only(prefix: str, action: str) -> None:
    policy, _ = _policies(prefix)
    root = f"{prefix}/" if prefix else ""
    own = _object(f"{root}accounts/{WRITER_A}/rds/app/orders/snapshot_time=20240502T024019Z/1/part-0.parquet")
    other = _object(f"{root}accounts/{WRITER_B}/rds/app/orders/snapshot_time=20240502T024019Z/1/part-0.parquet")
    owners = _object(f"{root}rds/app/orders/snapshot_time=20240502T024019Z/1/part-0.parquet")
    plans = _object(f"{root}_snaplake/athena/plans/job/run.json")
    assert decide(policy, Request(WRITER_A, action, own, TLS)) == "Allow"
    for resource in (other, owners, plans):
        assert decide(policy, Request(WRITER_A, action, resource, TLS)) != "Allow", resource
    assert decide(policy, Request(STRANGER, action, _object(f"{root}accounts/{STRANGER}/x"), TLS)) != "Allow"


def test_a_source_account_cannot_step_out_with_a_crafted_key() -> None:
    policy, _ = _policies("lake")
    for key in (f"lake/accounts/{WRITER_A}x/data", f"lake/accounts/{WRITER_B}/accounts/{WRITER_A}/data", "lake/accounts//data"):
        assert decide(policy, Request(WRITER_A, "s3:PutObject", _object(key), TLS)) != "Allow", key


def test_a_source_account_lists_its_own_folder_only() -> None:
    policy, _ = _policies("lake")
    bucket = f"arn:aws:s3:::{LAKE}"
    assert decide(policy, Request(WRITER_A, "s3:ListBucket", bucket, {**TLS, "s3:prefix": f"lake/accounts/{WRITER_A}/rds/"})) == "Allow"
    for prefix in (f"lake/accounts/{WRITER_B}/", "lake/", "lake/rds/", ""):
        assert decide(policy, Request(WRITER_A, "s3:ListBucket", bucket, {**TLS, "s3:prefix": prefix})) != "Allow", prefix
    assert decide(policy, Request(WRITER_A, "s3:ListBucket", bucket, TLS)) != "Allow"  # no prefix: the whole bucket


def test_no_writer_request_without_tls_is_allowed() -> None:
    policy, _ = _policies("lake")
    own = _object(f"lake/accounts/{WRITER_A}/data")
    assert decide(policy, Request(WRITER_A, "s3:GetObject", own, {"aws:SecureTransport": "false"})) == "Deny"


def test_writers_use_the_lake_key_only_through_s3() -> None:
    _, policy = _policies("lake")
    via_s3 = {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}
    for action in ("kms:GenerateDataKey", "kms:Decrypt"):
        assert decide(policy, Request(WRITER_A, action, "*", via_s3)) == "Allow"
        assert decide(policy, Request(WRITER_A, action, "*")) != "Allow"  # a direct Decrypt of a lake data key
        assert decide(policy, Request(WRITER_A, action, "*", {"kms:ViaService": "s3.us-east-1.amazonaws.com"})) != "Allow"
        assert decide(policy, Request(STRANGER, action, "*", via_s3)) != "Allow"
    assert decide(policy, Request(WRITER_A, "kms:ScheduleKeyDeletion", "*", via_s3)) != "Allow"


@pytest.mark.parametrize("prefix", ["lake", ""])
def test_a_source_account_deletes_nothing_not_even_in_its_own_folder(prefix: str) -> None:
    """Why a source stack keeps no retention (template rule RetentionBelongsToTheLakeAccount): its purge would be refused."""
    policy, _ = _policies(prefix)
    root = f"{prefix}/" if prefix else ""
    own = _object(f"{root}accounts/{WRITER_A}/rds/world/city/snapshot_time=20240502T024019Z/1/part-0.parquet")
    assert decide(policy, Request(WRITER_A, "s3:DeleteObject", own, TLS)) != "Allow"
