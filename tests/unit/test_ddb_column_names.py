"""Column names of DynamoDB exports in the lake: never a partition key or system column, case-folded duplicates kept
apart, and each attribute path's column the same in every export of one table (the lake's column registry).

Exports are written to a moto bucket in DynamoDB's layout and run through the conversion steps the pipeline runs.
"""

from __future__ import annotations

import gzip
import json
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from snaplake.dynamodb.conversion import convert_files, merge_schemas, plan_conversion, scan_files
from snaplake.dynamodb.publish import finalize_conversion, publish_share
from snaplake.dynamodb.settings import ConversionSettings

TABLE_ARN = "arn:aws:dynamodb:eu-west-1:123456789012:table/Orders"
EXPORTS, LAKE = "exports", "lake"
SETTINGS = ConversionSettings(
    bucket=LAKE, prefix="data", bucket_owner=None, kms_key_arn=None, export_bucket_owner=None, workers=2, plan_prefix="plans"
)


@pytest.fixture
def buckets(s3: Any) -> Any:
    for name in (EXPORTS, LAKE):
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    return s3


def export(s3: Any, export_id: str, files: list[list[dict[str, Any]]], window: tuple[str, str] | None = None) -> dict[str, Any]:
    """Write an export (one data file per list of lines) as DynamoDB does and convert it; FinalizeConversion's output."""
    root = f"AWSDynamoDB/{export_id}"
    manifest = []
    for index, lines in enumerate(files):
        key = f"AWSDynamoDB/data/{export_id}-{index}.json.gz" if window else f"{root}/data/{index}.json.gz"
        s3.put_object(Bucket=EXPORTS, Key=key, Body=gzip.compress("".join(json.dumps(line) + "\n" for line in lines).encode()))
        manifest.append({"itemCount": len(lines), "dataFileS3Key": key})
    s3.put_object(Bucket=EXPORTS, Key=f"{root}/manifest-files.json", Body="".join(json.dumps(m) + "\n" for m in manifest).encode())
    summary: dict[str, Any] = {"manifestFilesS3Key": f"{root}/manifest-files.json", "itemCount": sum(map(len, files))}
    if window:
        summary.update(exportFromTime=window[0], exportToTime=window[1], exportType="INCREMENTAL_EXPORT")
    else:
        summary["exportTime"] = f"2026-01-14T10:{export_id[-2:]}:00.000Z"  # one export_time partition per export
    s3.put_object(Bucket=EXPORTS, Key=f"{root}/manifest-summary.json", Body=json.dumps(summary).encode())
    request = {
        "tableArn": TABLE_ARN,
        "exportArn": f"{TABLE_ARN}/export/{export_id}",
        "bucket": EXPORTS,
        "manifestSummaryKey": f"{root}/manifest-summary.json",
    }
    planned = plan_conversion(s3, request, SETTINGS)
    carried = {key: planned[key] for key in ("plan", "kind", "table", "exportedTo", "exportId")}
    for share in planned["workers"]:
        assert scan_files(s3, {**carried, "share": share}, SETTINGS, lambda: 10**9)["done"]
    merge_schemas(s3, {"plan": planned["plan"], "files": planned["files"], "expectedItems": planned["expectedItems"]}, SETTINGS)
    for share in planned["workers"]:
        assert convert_files(s3, {**carried, "share": share}, SETTINGS, lambda: 10**9)["done"]
    for share in planned["workers"]:
        assert publish_share(s3, {**carried, "share": share}, SETTINGS, lambda: 10**9)["done"]
    landed = finalize_conversion(
        s3, {**carried, "files": planned["files"], "expectedItems": planned["expectedItems"], "shares": planned["shares"]}, SETTINGS
    )
    return {**landed, "exportId": export_id}


def tables(s3: Any, landed: dict[str, Any]) -> list[pa.Table]:
    """The Parquet objects FinalizeConversion published (change files of other windows in the same hours left out)."""
    out = []
    for prefix in landed["partitionPrefixes"]:
        for obj in s3.list_objects_v2(Bucket=LAKE, Prefix=prefix).get("Contents", []):
            name = obj["Key"].rsplit("/", 1)[-1]
            if name.endswith(".parquet") and (name.startswith("part-") or name.startswith(landed["exportId"])):
                out.append(pq.read_table(pa.BufferReader(s3.get_object(Bucket=LAKE, Key=obj["Key"])["Body"].read())))
    return out


def rows(s3: Any, landed: dict[str, Any]) -> list[dict[str, Any]]:
    return sorted(
        (row for table in tables(s3, landed) for row in table.to_pylist()), key=lambda row: str(row.get("pk") or row.get("key__pk"))
    )


def item(pk: str, **attributes: str) -> dict[str, Any]:
    return {"Item": {"pk": {"S": pk}, **{name: {"S": value} for name, value in attributes.items()}}}


def test_a_full_export_attribute_named_like_its_partition_key_gets_another_column(buckets: Any) -> None:
    landed = export(buckets, "01768385930622-00000001", [[item("a", export_time="yesterday", Export_Time="x")], []])

    assert [prefix.rsplit("/", 2)[-2].split("=")[0] for prefix in landed["partitionPrefixes"]] == ["export_time"]
    [table] = tables(buckets, landed)
    assert "export_time" not in table.column_names
    assert rows(buckets, landed) == [{"pk": "a", "export_time_2": "x", "export_time_3": "yesterday"}]


def test_full_export_attributes_equal_after_case_folding_keep_their_own_columns(buckets: Any) -> None:
    landed = export(buckets, "01768385930622-00000002", [[item("a", Foo="upper", foo="lower")], [item("b", foo="lower only")]])

    assert rows(buckets, landed) == [{"pk": "a", "foo": "upper", "foo_2": "lower"}, {"pk": "b", "foo": None, "foo_2": "lower only"}]


def test_an_attribute_keeps_its_column_when_a_later_export_brings_one_that_folds_to_the_same_name(buckets: Any) -> None:
    first = export(buckets, "01768385930622-00000003", [[item("a", foo="lower")]])
    second = export(buckets, "01768389999999-00000004", [[item("b", Foo="upper", foo="lower again")]])

    assert rows(buckets, first) == [{"pk": "a", "foo": "lower"}]
    assert rows(buckets, second) == [{"pk": "b", "foo": "lower again", "foo_2": "upper"}]


def test_change_rows_keep_their_columns_across_windows(buckets: Any) -> None:
    def change(pk: str, micros: int, **image: str) -> dict[str, Any]:
        new = {"pk": {"S": pk}, **{name: {"S": value} for name, value in image.items()}}
        return {"Metadata": {"WriteTimestampMicros": {"N": str(micros)}}, "Keys": {"pk": {"S": pk}}, "NewImage": new}

    first = export(
        buckets,
        "01768386924000-00000005",
        [[change("a", 1768386096366933, foo="lower")]],
        ("2026-01-14T10:20:00.000Z", "2026-01-14T10:35:00.000Z"),
    )
    second = export(
        buckets,
        "01768388186000-00000006",
        [[change("b", 1768387654353205, Foo="upper", foo="again")]],
        ("2026-01-14T10:35:00.000Z", "2026-01-14T10:50:00.000Z"),
    )

    assert [{k: v for k, v in row.items() if k.startswith("new__")} for row in rows(buckets, first)] == [
        {"new__foo": "lower", "new__pk": "a"}
    ]
    assert [{k: v for k, v in row.items() if k.startswith("new__")} for row in rows(buckets, second)] == [
        {"new__foo": "again", "new__foo_2": "upper", "new__pk": "b"}
    ]


def test_fixed_column_names_travel_with_the_schema_and_must_name_every_path() -> None:
    from snaplake.dynamodb.errors import IncompatibleSchemas
    from snaplake.dynamodb.parquet import ConvertOptions, ExportSchema

    options = ConvertOptions()
    schema = ExportSchema()
    schema.observe_block(json.dumps(item("a", Foo="x")).encode() + b"\n", "full", options)
    assert schema.attribute_paths("full", options) == [("pk",), ("Foo",)]
    schema.name_columns({("pk",): "pk", ("Foo",): "foo_7"})

    stored = ExportSchema.from_json(json.loads(json.dumps(schema.to_json())))

    assert stored.arrow_schema("full", options).names == ["foo_7", "pk"]
    stored.name_columns({("pk",): "pk"})
    with pytest.raises(IncompatibleSchemas, match=r"do not name the attribute path \['Foo'\]"):
        stored.arrow_schema("full", options)
    with pytest.raises(IncompatibleSchemas, match="same column name"):
        stored.name_columns({("pk",): "pk", ("Foo",): "pk"})
