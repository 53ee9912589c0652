"""The static scan (make scan: checkov on template.yaml) may only be quieted with a stated reason, and the findings it
raised that matter stay fixed: access logs for both data buckets, customer-managed keys on the logs and the checkpoints."""

from __future__ import annotations

import re

from tests.template._support import PROJECT_ROOT, resources, resources_of_type


def test_every_check_skipped_in_the_template_says_why() -> None:
    for logical_id, spec in resources().items():
        for skip in spec.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert re.fullmatch(r"CKV_AWS_\d+", skip.get("id", "")), f"{logical_id}: {skip}"
            assert len(skip.get("comment", "").split()) >= 5, f"{logical_id}: skipping {skip.get('id')} needs a one-line reason"


def test_every_check_skipped_for_the_whole_template_says_why() -> None:
    lines = (PROJECT_ROOT / ".checkov.yaml").read_text().splitlines()
    skipped = [i for i, line in enumerate(lines) if re.fullmatch(r"\s*- CKV_AWS_\d+", line)]
    assert skipped
    for index in skipped:
        check = lines[index].strip("- ").strip()
        assert lines[index - 1].lstrip().startswith("#") and check in "\n".join(lines[max(0, index - 4) : index]), (
            f".checkov.yaml skips {check} without a comment above it naming it and saying why"
        )


def test_both_data_buckets_log_every_access_to_the_access_log_bucket() -> None:
    for logical_id in ("ExportBucket", "LakeBucket"):
        logging = resources()[logical_id]["Properties"].get("LoggingConfiguration", {})
        assert logging.get("DestinationBucketName") == {"Ref": "AccessLogBucket"}, logical_id
        assert logging.get("LogFilePrefix"), logical_id
    log_bucket = resources()["AccessLogBucket"]["Properties"]
    assert log_bucket["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"] == {"Ref": "AccessLogRetentionDays"}
    # S3 delivers server access logs only to SSE-S3 buckets.
    assert log_bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "AES256"
    }


def test_logs_and_checkpoints_are_encrypted_with_a_customer_managed_key() -> None:
    for logical_id, spec in resources_of_type("AWS::Logs::LogGroup"):
        assert spec["Properties"].get("KmsKeyId") == {"Fn::GetAtt": ["OperationsKey", "Arn"]}, logical_id
    sse = resources()["CheckpointTable"]["Properties"]["SSESpecification"]
    assert sse["SSEType"] == "KMS" and sse["KMSMasterKeyId"] == {"Fn::GetAtt": ["OperationsKey", "Arn"]}
    assert resources()["OperationsKey"]["Properties"]["EnableKeyRotation"] is True


def test_every_function_using_the_checkpoint_table_may_use_its_key_through_dynamodb() -> None:
    users = 0
    for logical_id, spec in resources_of_type("AWS::Serverless::Function"):
        statements = [
            s for policy in spec["Properties"].get("Policies", []) if isinstance(policy, dict) for s in policy.get("Statement", [])
        ]
        if not any(s.get("Resource") == {"Fn::GetAtt": ["CheckpointTable", "Arn"]} for s in statements):
            continue
        users += 1
        grants = [s for s in statements if s.get("Resource") == {"Fn::GetAtt": ["OperationsKey", "Arn"]}]
        assert any("kms:Decrypt" in s["Action"] and "kms:GenerateDataKey" in s["Action"] for s in grants), logical_id
        assert all("kms:ViaService" in s.get("Condition", {}).get("StringEquals", {}) for s in grants), logical_id
    assert users >= 4
