"""template.yaml resources: the snapshot-created rule, bucket hardening, topic and queue encryption, log retention, alarm delivery."""

from __future__ import annotations

from typing import Any

import pytest

from ._support import as_list, policy_statements, resources, resources_of_type, template

# The four "snapshot created" events, and RDS-EVENT-0197 "Finished copy of snapshot" (AWS Backup's copies; see docs/rds.md).
SNAPSHOT_CREATED_EVENT_IDS = {"RDS-EVENT-0042", "RDS-EVENT-0091", "RDS-EVENT-0075", "RDS-EVENT-0169", "RDS-EVENT-0197"}
SNAPSHOT_DETAIL_TYPES = {"RDS DB Snapshot Event", "RDS DB Cluster Snapshot Event"}


def _rds_rule_patterns() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for logical_id, spec in resources_of_type("AWS::Serverless::StateMachine"):
        for event_id, event in spec.get("Properties", {}).get("Events", {}).items():
            if event.get("Type") in ("EventBridgeRule", "CloudWatchEvent"):
                pattern = event.get("Properties", {}).get("Pattern", {})
                if "aws.rds" in pattern.get("source", []):
                    found.append((f"{logical_id}.Events.{event_id}", pattern))
    return found


def test_one_rule_starts_the_state_machine_on_rds_snapshot_events() -> None:
    assert len(_rds_rule_patterns()) == 1, [where for where, _ in _rds_rule_patterns()]


def test_rds_rule_matches_exactly_the_four_snapshot_created_events() -> None:
    ((where, pattern),) = _rds_rule_patterns()
    assert pattern.get("source") == ["aws.rds"], where
    detail_types = pattern.get("detail-type", [])
    assert set(detail_types) == SNAPSHOT_DETAIL_TYPES and len(detail_types) == len(SNAPSHOT_DETAIL_TYPES), where
    assert set(pattern) == {"source", "detail-type", "detail"}, f"{where}: unexpected pattern fields {sorted(pattern)}"
    assert set(pattern["detail"]) == {"EventID"}, f"{where}: the rule should match on detail.EventID only"
    event_ids = pattern["detail"]["EventID"]
    assert set(event_ids) == SNAPSHOT_CREATED_EVENT_IDS and len(event_ids) == len(SNAPSHOT_CREATED_EVENT_IDS), where


def test_template_has_buckets() -> None:
    assert resources_of_type("AWS::S3::Bucket")


@pytest.mark.parametrize("logical_id", [logical_id for logical_id, _ in resources_of_type("AWS::S3::Bucket")])
def test_bucket_blocks_public_access(logical_id: str) -> None:
    block = resources()[logical_id].get("Properties", {}).get("PublicAccessBlockConfiguration", {})
    settings = ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")
    assert {name: block.get(name) for name in settings} == dict.fromkeys(settings, True)


# S3 delivers server access logs only to buckets with SSE-S3 default encryption (tests/template/test_static_scan.py).
ACCESS_LOG_BUCKETS = ("AccessLogBucket",)


@pytest.mark.parametrize(
    "logical_id", [logical_id for logical_id, _ in resources_of_type("AWS::S3::Bucket") if logical_id not in ACCESS_LOG_BUCKETS]
)
def test_bucket_encrypts_with_kms(logical_id: str) -> None:
    rules = resources()[logical_id].get("Properties", {}).get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration", [])
    assert rules, f"{logical_id}: no BucketEncryption"
    algorithms = [rule.get("ServerSideEncryptionByDefault", {}).get("SSEAlgorithm") for rule in rules]
    assert algorithms == ["aws:kms"] * len(rules), f"{logical_id}: SSEAlgorithm {algorithms}"


def _denies_insecure_transport(statement: Any, bucket: str) -> bool:
    """A Deny of every S3 action by anyone on the bucket and its objects when the request is not over TLS."""
    if not isinstance(statement, dict) or statement.get("Effect") != "Deny":
        return False
    resources = as_list(statement.get("Resource"))
    return (
        statement.get("Principal") in ("*", {"AWS": "*"})
        and set(as_list(statement.get("Action"))) & {"s3:*", "*"} != set()
        and statement.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") in ("false", False)
        and {"Fn::GetAtt": [bucket, "Arn"]} in resources
        and {"Fn::Sub": f"${{{bucket}.Arn}}/*"} in resources
    )


@pytest.mark.parametrize("logical_id", [logical_id for logical_id, _ in resources_of_type("AWS::S3::Bucket")])
def test_bucket_policy_denies_requests_without_tls(logical_id: str) -> None:
    policies = [
        spec for _, spec in resources_of_type("AWS::S3::BucketPolicy") if spec.get("Properties", {}).get("Bucket") == {"Ref": logical_id}
    ]
    assert policies, f"{logical_id}: no AWS::S3::BucketPolicy with Bucket: !Ref {logical_id}"
    statements = [s for spec in policies for s in as_list(spec["Properties"].get("PolicyDocument", {}).get("Statement", []))]
    assert any(_denies_insecure_transport(s, logical_id) for s in statements), (
        f"{logical_id}: no bucket policy statement denies s3:* on the bucket and its objects when aws:SecureTransport is false"
    )


@pytest.mark.parametrize("logical_id", [logical_id for logical_id, _ in resources_of_type("AWS::SQS::Queue")])
def test_queue_is_encrypted(logical_id: str) -> None:
    props = resources()[logical_id].get("Properties", {})
    assert props.get("SqsManagedSseEnabled") is True or props.get("KmsMasterKeyId"), (
        f"{logical_id}: neither SqsManagedSseEnabled: true nor KmsMasterKeyId"
    )


@pytest.mark.parametrize("logical_id", [logical_id for logical_id, _ in resources_of_type("AWS::SNS::Topic")])
def test_topic_is_encrypted(logical_id: str) -> None:
    assert resources()[logical_id].get("Properties", {}).get("KmsMasterKeyId"), f"{logical_id}: no KmsMasterKeyId"


@pytest.mark.parametrize("logical_id", [logical_id for logical_id, _ in resources_of_type("AWS::Logs::LogGroup")])
def test_log_group_expires_its_events(logical_id: str) -> None:
    assert resources()[logical_id].get("Properties", {}).get("RetentionInDays"), f"{logical_id}: no RetentionInDays"


def _alarm_topics() -> set[str]:
    topics = {logical_id for logical_id, _ in resources_of_type("AWS::SNS::Topic")}
    found = set()
    for _, spec in resources_of_type("AWS::CloudWatch::Alarm"):
        props = spec.get("Properties", {})
        for field in ("AlarmActions", "OKActions", "InsufficientDataActions"):
            for action in as_list(props.get(field, [])):
                if isinstance(action, dict) and action.get("Ref") in topics:
                    found.add(action["Ref"])
    return found


def _key_allows_cloudwatch(key_id: str) -> bool:
    for found in policy_statements(template()):
        statement = found.statement
        if found.resource_id != key_id or statement.get("Effect") != "Allow":
            continue
        services = as_list(statement.get("Principal", {}).get("Service", [])) if isinstance(statement.get("Principal"), dict) else []
        actions = set(as_list(statement.get("Action")))
        if (
            "cloudwatch.amazonaws.com" in services
            and "kms:Decrypt" in actions
            and actions & {"kms:GenerateDataKey", "kms:GenerateDataKey*"}
        ):
            return True
    return False


def test_alarm_topics_use_a_key_cloudwatch_may_use() -> None:
    """CloudWatch alarms can only publish to an encrypted topic whose customer managed key lets cloudwatch.amazonaws.com use it."""
    topics = _alarm_topics()
    assert topics
    problems = []
    for topic in sorted(topics):
        key = resources()[topic].get("Properties", {}).get("KmsMasterKeyId")
        if isinstance(key, str) and key.startswith("alias/aws/"):
            problems.append(f"{topic}: KmsMasterKeyId {key} is AWS managed; CloudWatch alarms cannot use it")
        elif isinstance(key, dict) and ("Ref" in key or "Fn::GetAtt" in key):
            ref = key.get("Ref") or as_list(key.get("Fn::GetAtt"))[0]
            ref = str(ref).split(".", 1)[0]
            if resources().get(ref, {}).get("Type") == "AWS::KMS::Key" and not _key_allows_cloudwatch(ref):
                problems.append(f"{topic}: key {ref} has no key policy statement for cloudwatch.amazonaws.com")
    assert not problems, "\n".join(problems)


def test_change_log_retention_with_partition_projection_is_refused_when_the_stack_is_deployed() -> None:
    """The same refusal CatalogSettings makes at start (ConfigError), before anything is created: the change log's
    dt/hour are projected as ranges; snapshot retention works with projection (the snapshot_time enum)."""
    rule = template()["Rules"]["ChangeLogRetentionNeedsRegisteredPartitions"]

    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "CatalogMode"}, "projection"]}
    assert [a["Assert"] for a in rule["Assertions"]] == [{"Fn::Equals": [{"Ref": "ChangeLogRetentionDays"}, "0"]}]
    assert not [r for r in template()["Rules"].values() if "SnapshotRetention" in str(r) and "LakeCatalogRoleArn" not in str(r)]
