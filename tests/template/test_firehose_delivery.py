"""The optional Firehose delivery stream (FirehoseDeliveryStream=true, docs/firehose.md): only under its condition, set
up as AWS requires for dynamic partitioning with format conversion, its Prefix the Glue table's partition layout, and
a role that writes only its own three folders of the lake.

Firehose itself does not run here (moto's firehose mock has no Lambda processor, dynamic partitioning or format
conversion); test_firehose_record_lands_where_the_prefix_and_the_table_say runs the real transform on a record and
places its answer with the rendered Prefix, the way Firehose substitutes it.
"""

from __future__ import annotations

import base64
import json
import re
from functools import cache
from typing import Any

import pytest
from snaplake.streams.firehose import transform_records
from snaplake.streams.settings import FlattenSettings

from ._iam import Policy, Renderer, policy_of, with_condition, with_parameters
from ._support import resources, template

CONDITION = "HasFirehoseDeliveryStream"
BLOCK = (
    "FirehoseDatabase",
    "FirehoseTable",
    "FirehoseLogGroup",
    "FirehoseDeliveryLogStream",
    "FirehoseBackupLogStream",
    "FirehoseDeliveryRole",
    "FirehoseLakeDeliveryStream",
)
KEY_FIELD = "customer__country"
LAKE = "arn:aws:s3:::{LakeBucket}"
PREFIXES = {"LakePrefix lake": "lake", "no LakePrefix": ""}


def _deployed(prefix: str, **conditions: bool) -> dict[str, Any]:
    values = {"LakePrefix": prefix, "FirehoseTableName": "events", "FirehosePartitionKeyFields": f"{KEY_FIELD},region"}
    deployed = with_condition(with_parameters(template(), values), "HasLakePrefix", bool(prefix))
    for name, value in {"CreateLakeBucket": True, **conditions}.items():
        deployed = with_condition(deployed, name, value)
    return deployed


def _one(values: frozenset[str]) -> str:
    assert len(values) == 1, values
    return next(iter(values))


def _destination() -> dict[str, Any]:
    return dict(resources()["FirehoseLakeDeliveryStream"]["Properties"]["ExtendedS3DestinationConfiguration"])


def _rendered(prefix: str, field: str) -> str:
    deployed = _deployed(prefix)
    spec = deployed["Resources"]["FirehoseLakeDeliveryStream"]["Properties"]["ExtendedS3DestinationConfiguration"]
    return _one(Renderer(deployed).render(spec[field]))


@cache
def _role(prefix: str) -> Policy:
    deployed = _deployed(prefix)
    # policy_of reads a role through a resource's Role property, as it does for a function.
    deployed["Resources"]["_Firehose"] = {"Properties": {"Role": {"Fn::GetAtt": "FirehoseDeliveryRole.Arn"}}}
    return policy_of(deployed, "_Firehose")


def test_the_delivery_stream_and_everything_it_uses_exist_only_under_its_condition() -> None:
    for logical_id in BLOCK:
        assert resources()[logical_id].get("Condition") == CONDITION, logical_id
    condition = template()["Conditions"][CONDITION]
    # Its processor is FirehoseFlattenFunction, which exists only with FirehoseTransform "true".
    assert {"Condition": "HasFirehoseTransform"} in condition["Fn::And"]
    assert template()["Parameters"]["FirehoseDeliveryStream"]["Default"] == "false"
    assert "HasFirehoseDeliveryStream" in json.dumps(template()["Outputs"]["FirehoseDeliveryStreamName"])


def test_turning_it_on_without_the_transform_or_a_partition_key_is_refused_at_deploy_time() -> None:
    rule = template()["Rules"]["FirehoseDeliveryStreamNeedsItsTransformAndAPartitionKey"]
    asserted = json.dumps(rule["Assertions"])
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "FirehoseDeliveryStream"}, "true"]}
    assert '"Ref": "FirehoseTransform"' in asserted and '"Ref": "FirehosePartitionKeyFields"' in asserted


def test_the_source_is_direct_put_or_the_kinesis_stream_parameter() -> None:
    props = resources()["FirehoseLakeDeliveryStream"]["Properties"]
    assert props["DeliveryStreamType"] == {"Fn::If": ["FirehoseReadsKinesis", "KinesisStreamAsSource", "DirectPut"]}
    assert props["KinesisStreamSourceConfiguration"]["Fn::If"][1]["KinesisStreamARN"] == {"Ref": "FirehoseSourceStreamArn"}
    pattern = re.compile(template()["Parameters"]["FirehoseSourceStreamArn"]["AllowedPattern"])
    assert pattern.fullmatch("") and pattern.fullmatch("arn:aws:kinesis:eu-west-1:123456789012:stream/events")
    assert not pattern.fullmatch("arn:aws:kinesis:eu-west-1:123456789012:stream/*")


def test_the_destination_is_set_up_as_aws_requires_for_dynamic_partitioning_and_format_conversion() -> None:
    destination = _destination()
    assert destination["DynamicPartitioningConfiguration"]["Enabled"] is True
    assert destination["DynamicPartitioningConfiguration"]["RetryOptions"]["DurationInSeconds"] > 0
    # Format conversion needs a buffer of at least 64 MB; it compresses inside Parquet, so the object is UNCOMPRESSED.
    assert destination["BufferingHints"]["SizeInMBs"] >= 64
    assert destination["CompressionFormat"] == "UNCOMPRESSED"
    (processor,) = destination["ProcessingConfiguration"]["Processors"]
    parameters = {p["ParameterName"]: p["ParameterValue"] for p in processor["Parameters"]}
    assert destination["ProcessingConfiguration"]["Enabled"] is True and processor["Type"] == "Lambda"
    assert parameters["LambdaArn"] == {"Fn::GetAtt": ["FirehoseFlattenFunction", "Arn"]}
    # 1 MB of input keeps the flattened answer inside the transform's 6 MB response.
    assert parameters["BufferSizeInMBs"] == "1"
    conversion = destination["DataFormatConversionConfiguration"]
    assert conversion["Enabled"] is True
    assert "OpenXJsonSerDe" in conversion["InputFormatConfiguration"]["Deserializer"]
    assert "ParquetSerDe" in conversion["OutputFormatConfiguration"]["Serializer"]
    schema = conversion["SchemaConfiguration"]
    assert schema["DatabaseName"] == {"Ref": "FirehoseDatabase"} and schema["TableName"] == {"Ref": "FirehoseTable"}
    assert schema["VersionId"] == "LATEST" and schema["RoleARN"] == {"Fn::GetAtt": ["FirehoseDeliveryRole", "Arn"]}
    assert destination["S3BackupMode"] == "Enabled"
    for config in (destination, destination["S3BackupConfiguration"]):
        assert config["CloudWatchLoggingOptions"]["Enabled"] is True
        assert config["CloudWatchLoggingOptions"]["LogGroupName"] == {"Ref": "FirehoseLogGroup"}


@pytest.mark.parametrize("prefix", PREFIXES.values(), ids=PREFIXES.keys())
def test_prefixes_partition_by_the_first_key_field_and_keep_errors_and_backups_out_of_the_table(prefix: str) -> None:
    root = f"{prefix}/" if prefix else ""
    assert _rendered(prefix, "Prefix") == (
        f"{root}firehose/events/partition_key=!{{partitionKeyFromLambda:{KEY_FIELD}}}/dt=!{{timestamp:yyyy-MM-dd}}/"
    )
    assert _rendered(prefix, "ErrorOutputPrefix") == (
        f"{root}_snaplake/firehose_errors/events/!{{firehose:error-output-type}}/dt=!{{timestamp:yyyy-MM-dd}}/"
    )
    deployed = _deployed(prefix)
    backup = deployed["Resources"]["FirehoseLakeDeliveryStream"]["Properties"]["ExtendedS3DestinationConfiguration"]
    assert _one(Renderer(deployed).render(backup["S3BackupConfiguration"]["Prefix"])) == f"{root}_snaplake/firehose_backup/events/"


@pytest.mark.parametrize("prefix", PREFIXES.values(), ids=PREFIXES.keys())
def test_the_glue_table_reads_the_folders_the_prefix_writes(prefix: str) -> None:
    deployed = _deployed(prefix)
    table = deployed["Resources"]["FirehoseTable"]["Properties"]["TableInput"]
    renderer = Renderer(deployed)
    partition_names = [key["Name"] for key in table["PartitionKeys"]]
    written = _rendered(prefix, "Prefix")
    folders = re.findall(r"([a-z_]+)=!\{", written)
    assert folders == partition_names
    expected = re.sub(r"!\{partitionKeyFromLambda:[a-z_]+\}", "${partition_key}", written).replace("!{timestamp:yyyy-MM-dd}", "${dt}")
    assert _one(renderer.render(table["Parameters"]["storage.location.template"])) == "s3://{LakeBucket}/" + expected
    assert _one(renderer.render(table["StorageDescriptor"]["Location"])) == "s3://{LakeBucket}/" + written.split("partition_key=")[0]
    assert table["Parameters"]["projection.enabled"] == "true"
    assert all(f"projection.{name}.type" in table["Parameters"] for name in partition_names)
    # A data column named like a partition column would make the table unreadable.
    columns = {column["Name"] for column in table["StorageDescriptor"]["Columns"]}
    assert columns and not columns & set(partition_names)


def test_firehose_record_lands_where_the_prefix_and_the_table_say() -> None:
    data = {"customer": {"country": "DE"}, "event_id": "e-1", "event_type": "order_placed", "region": "eu"}
    event = {"records": [{"recordId": "1", "data": base64.b64encode(json.dumps(data).encode()).decode()}]}
    fields = str(_deployed("lake")["Parameters"]["FirehosePartitionKeyFields"]["Default"]).split(",")
    (answer,) = transform_records(event, FlattenSettings(partition_key_fields=tuple(fields))).records
    assert answer["result"] == "Ok"
    keys = answer["metadata"]["partitionKeys"]
    # Firehose fills each !{partitionKeyFromLambda:name} from the answer's partitionKeys; a name it lacks fails the record.
    folder = re.sub(r"!\{partitionKeyFromLambda:([a-z_]+)\}", lambda m: keys[m.group(1)], _rendered("lake", "Prefix"))
    assert folder == "lake/firehose/events/partition_key=DE/dt=!{timestamp:yyyy-MM-dd}/"


@pytest.mark.parametrize("prefix", PREFIXES.values(), ids=PREFIXES.keys())
def test_the_role_writes_its_three_folders_and_nothing_else_of_the_lake(prefix: str) -> None:
    role = _role(prefix)
    assert not role.unresolved
    root = f"{LAKE}/{prefix}/" if prefix else f"{LAKE}/"
    own = (
        "firehose/events/partition_key=DE/dt=2026-12-05/events-1-2026-12-05-00-00-00-0a1b.parquet",
        "_snaplake/firehose_errors/events/processing-failed/dt=2026-12-05/events-1-0a1b",
        "_snaplake/firehose_backup/events/2026/12/05/00/events-1-0a1b.gz",
    )
    others = (
        "firehose/other/partition_key=DE/dt=2026-12-05/x.parquet",
        "rds/world/city/snapshot_time=20240502T024019Z/1/part-00000.parquet",
        "dynamodb/shop_orders/export_time=20240502T030000Z/_SUCCESS",
        "dynamodb_stream_changes/orders/dt=2024-05-02/hour=07/x.parquet",
        "_snaplake/claims/dynamodb_stream_changes/orders.json",
        "_snaplake/firehose_errors/other/processing-failed/x",
        "events.parquet",
    )
    for key in own:
        assert role.decide("s3:PutObject", root + key) == "Allow", key
    for key in others:
        for action in ("s3:PutObject", "s3:GetObject", "s3:DeleteObject", "s3:PutObjectAcl"):
            assert role.decide(action, root + key) != "Allow", f"{action} {key}"
    assert not any(role.decide(action, root + own[0]) == "Allow" for action in ("s3:DeleteObject", "s3:PutObjectAcl"))


def test_the_role_reads_only_its_table_invokes_only_the_transform_and_reads_kinesis_only_as_its_source() -> None:
    role = _role("lake")
    glue = "arn:aws:glue:{AWS::Region}:{AWS::AccountId}"
    assert role.decide("glue:GetTableVersions", f"{glue}:table/{{FirehoseDatabase}}/events") == "Allow"
    assert role.decide("glue:GetTable", f"{glue}:table/{{FirehoseDatabase}}/other") != "Allow"
    assert role.decide("glue:UpdateTable", f"{glue}:table/{{FirehoseDatabase}}/events") != "Allow"
    transform = "arn:aws:lambda:{AWS::Region}:{AWS::AccountId}:function:{FirehoseFlattenFunction}"
    assert role.decide("lambda:InvokeFunction", transform) == "Allow"
    assert role.decide("lambda:InvokeFunction", transform.replace("FirehoseFlattenFunction", "StreamFlattenFunction")) != "Allow"
    source = "{FirehoseSourceStreamArn}"
    assert role.decide("kinesis:GetRecords", source) == "Allow"
    assert role.decide("kinesis:GetRecords", "arn:aws:kinesis:eu-west-1:123456789012:stream/other") != "Allow"
    assert role.decide("kinesis:PutRecord", source) != "Allow"
    # ... and only when the source is a Kinesis stream (policy_of reads both branches of an Fn::If statement).
    statements = resources()["FirehoseDeliveryRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    kinesis = [s for s in statements if "kinesis:" in json.dumps(s)]
    assert [s["Fn::If"][0] for s in kinesis] == ["FirehoseReadsKinesis"]
    trust = resources()["FirehoseDeliveryRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "firehose.amazonaws.com"}]
    assert all(s["Condition"]["StringEquals"]["sts:ExternalId"] == {"Ref": "AWS::AccountId"} for s in trust)
