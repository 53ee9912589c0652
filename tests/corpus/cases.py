"""The malformed-input corpus: one entry per case, run by test_malformed_inputs.py.

A case names the handler as `<code file>:<function>`, the event, and what must
come of it: a named error (`Raises`), or, for the stream handlers that answer
per record, the records reported back (`BatchItemFailures`, `ProcessingFailed`).
Whatever the outcome, nothing may be written. An event is either literal data
or, when it must name something real (a copy plan, an export, a landed
partition), a function of the seeded deployment (`Seeded`).

`xfail` marks a case whose handler lives in a file this change could not touch:
the reason says what escapes, for whoever owns that file.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from snaplake_local.sources import sample_event

# ---------------------------------------------------------------- handlers (code file : function)

FILTER = "functions/snapshot_filter/app.py:lambda_handler"
START = "functions/start_export/app.py:lambda_handler"
POLL = "functions/poll_export/app.py:lambda_handler"
PLAN_COPY = "functions/copy_objects/app.py:plan_handler"
COPY = "functions/copy_objects/app.py:copy_handler"
FINALIZE_COPY = "functions/copy_objects/app.py:finalize_handler"
RDS_CATALOG = "functions/catalog/app.py:rds_handler"
DDB_CATALOG = "functions/catalog/app.py:dynamodb_handler"
DDB_START = "functions/dynamodb_export/app.py:start_handler"
DDB_POLL = "functions/dynamodb_export/app.py:poll_handler"
DDB_COMMIT = "functions/dynamodb_export/app.py:commit_handler"
DDB_PUBLISHING = "functions/dynamodb_export/app.py:publishing_handler"
DDB_RELEASE = "functions/dynamodb_export/app.py:release_handler"
SCHEDULE = "functions/dynamodb_export/schedule.py:lambda_handler"
CONVERT_PLAN = "functions/convert_export/app.py:plan_handler"
SCAN = "functions/convert_export/app.py:scan_handler"
MERGE = "functions/convert_export/app.py:merge_handler"
CONVERT = "functions/convert_export/app.py:convert_handler"
CONVERT_FINALIZE = "functions/convert_export/app.py:finalize_handler"
PUBLISH = "functions/convert_export/app.py:publish_handler"
STREAM = "functions/stream_flatten/app.py:handler"
FIREHOSE = "functions/firehose_flatten/app.py:handler"
ATHENA = "functions/athena_query/app.py:lambda_handler"
DDB_CURRENT = "functions/dynamodb_current/app.py:lambda_handler"

# ---------------------------------------------------------------- values the cases are made of

ACCOUNT, REGION = "123456789012", "eu-west-1"
CLUSTER_SNAPSHOT_ARN = f"arn:aws:rds:{REGION}:{ACCOUNT}:cluster-snapshot:world-aurora-manual-1"
TABLE_ARN = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/shop-orders"
EXECUTION = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:snaplake-local-DynamoDbExportStateMachine:corpus"
BROKEN_UTF8 = "\udcff"  # how an undecodable byte arrives in a Python string (surrogateescape)
HUGE = "x" * (300 * 1024)  # larger than a Step Functions payload (256 KB)
SQL = "a; DROP TABLE x"


@dataclass(frozen=True)
class Seeded:
    """What the deployment holds before the cases run (see test_malformed_inputs._seed)."""

    lake_bucket: str
    export_bucket: str
    rds_plan: dict[str, str]  # PlanCopy's plan of the sample cluster snapshot's export (not copied)
    rds_share: dict[str, int]  # its one worker's share
    rds_batches: int
    ddb_export_arn: str  # a COMPLETED full export of shop-orders
    ddb_manifest_summary_key: str
    ddb_planned: dict[str, Any]  # ConvertPlan's output for it (converted and published)
    ddb_partition: str  # the published lake partition, not registered in Glue

    def copy_batch(self, **changes: Any) -> dict[str, Any]:
        return {"plan": self.rds_plan, "share": self.rds_share, **changes}

    def conversion(self, **changes: Any) -> dict[str, Any]:
        """The input ScanFiles/ConvertFiles get (plan, first worker's share, kind, table, exportedTo, exportId)."""
        planned = self.ddb_planned
        carried = {key: planned[key] for key in ("plan", "kind", "table", "exportedTo", "exportId")}
        return {**carried, "share": planned["workers"][0], **changes}

    def totals(self, **changes: Any) -> dict[str, Any]:
        """The input MergeSchema and FinalizeConversion get."""
        planned = self.ddb_planned
        carried = {key: planned[key] for key in ("plan", "kind", "table", "exportedTo", "exportId", "files", "expectedItems", "shares")}
        return {**carried, **changes}

    def landed(self, name: str) -> dict[str, Any]:
        return {"landedManifest": {"bucket": self.export_bucket, "key": f"corpus/landed/{name}.json"}}

    def landed_entry(self, **changes: Any) -> dict[str, Any]:
        entry = {"database": "world", "table": "shop_orders", "sourceTable": "public.orders", "partition": self.ddb_partition}
        return {**entry, "objects": 1, "bytes": 1, **changes}

    def manifests(self) -> dict[str, bytes]:
        """Hand-made landed manifests (landed.json as FinalizeCopy writes it), malformed in one way each."""

        def manifest(*tables: Any, bucket: Any = self.lake_bucket) -> bytes:
            return json.dumps({"lakeBucket": bucket, "tables": list(tables)}).encode()

        good = self.landed_entry()
        return {
            f"corpus/landed/{name}.json": body
            for name, body in {
                "not-json": b'{"lakeBucket": ',
                "not-utf8": b'{"lakeBucket": "\xff\xfe"}',
                "a-list": b"[]",
                "no-tables": json.dumps({"lakeBucket": self.lake_bucket}).encode(),
                "tables-an-object": json.dumps({"lakeBucket": self.lake_bucket, "tables": {"world": good}}).encode(),
                "table-entry-a-string": manifest("world.users"),
                "table-missing-partition": manifest({k: v for k, v in good.items() if k != "partition"}),
                "sql-in-database": manifest(self.landed_entry(database=SQL)),
                "backtick-in-table": manifest(self.landed_entry(table="orders`; DROP TABLE `x")),
                "quote-in-table": manifest(self.landed_entry(table="orders' OR '1'='1")),
                "dotdot-partition": manifest(self.landed_entry(partition=f"../{self.ddb_partition}")),
                "number-partition": manifest(self.landed_entry(partition=20240502)),
                "other-lake-bucket": manifest(good, bucket="someone-elses-bucket"),
                "good-then-bad": manifest(good, self.landed_entry(table="x`y")),
                "ten-thousand-tables": manifest(*[good] * 9_999, self.landed_entry(partition="/" + self.ddb_partition)),
            }.items()
        }


Event = Any  # the event itself, or Callable[[Seeded], Any]


@dataclass(frozen=True)
class Raises:
    """The handler raises the SnaplakeError subclass of this name."""

    error: str


@dataclass(frozen=True)
class BatchItemFailures:
    """The stream handler returns exactly these sequence numbers in batchItemFailures."""

    sequence_numbers: tuple[str, ...]


@dataclass(frozen=True)
class ProcessingFailed:
    """The Firehose handler answers every recordId once; these (default: all) are ProcessingFailed."""

    failed: tuple[str, ...] = ()

    @staticmethod
    def record_ids(event: Any) -> list[str]:
        return [str(record.get("recordId", "")) for record in event["records"]]


@dataclass(frozen=True)
class Case:
    id: str
    handler: str
    event: Event
    expect: Raises | BatchItemFailures | ProcessingFailed
    xfail: str | None = field(default=None)


INVALID = Raises("InvalidEvent")


def _eventbridge(**detail: Any) -> dict[str, Any]:
    event = sample_event("rds_manual_cluster_snapshot.json")
    event["detail"].update(detail)
    return dict(event)


def _stream_record(sequence: str, dynamodb: dict[str, Any] | None = None, **top: Any) -> dict[str, Any]:
    record = dict(sample_event("dynamodb_stream_batch.json")["Records"][0])
    record["dynamodb"] = {**record["dynamodb"], "SequenceNumber": sequence, **(dynamodb or {})}
    record.update(top)
    return record


def _stream(first: dict[str, Any]) -> dict[str, Any]:
    """A batch whose first record is `first` and whose second record is well-formed."""
    return {"Records": [first, _stream_record("200")]}


def _replay(**info: Any) -> dict[str, Any]:
    """The sample replay request (events/dynamodb_stream_replay_failure.json) with DDBStreamBatchInfo changed."""
    event = json.loads(json.dumps(sample_event("dynamodb_stream_replay_failure.json")))
    event["replayFailure"]["DDBStreamBatchInfo"].update(info)
    return dict(event)


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"S": "bottom"}
    for _ in range(depth):
        value = {"M": {"a": value}}
    return value


def _firehose(*data: Any) -> dict[str, Any]:
    records = [{"recordId": f"r{i}", "approximateArrivalTimestamp": 1764054000123, "data": d} for i, d in enumerate(data, 1)]
    return {"invocationId": "corpus", "deliveryStreamArn": "arn:aws:firehose:eu-west-1:123456789012:deliverystream/x", "records": records}


def _publishing(**fields: Any) -> Callable[[Seeded], dict[str, Any]]:
    """The MarkPublishing sample for the seeded export, with `fields` changed."""
    return lambda s: {**sample_event("dynamodb_mark_publishing.json"), "exportArn": s.ddb_export_arn, **fields}


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


GOOD_FIREHOSE_DATA = _b64(b'{"order": {"id": 1}}')


CASES: list[Case] = [
    # ---------------------------------------------------------------- FilterSnapshot
    Case("filter-event-is-a-list", FILTER, [{"snapshotArn": CLUSTER_SNAPSHOT_ARN}], INVALID),
    Case("filter-event-is-a-string", FILTER, CLUSTER_SNAPSHOT_ARN, INVALID),
    Case("filter-empty-object", FILTER, {}, INVALID),
    Case("filter-arn-is-a-number", FILTER, {"snapshotArn": 12345}, INVALID),
    Case("filter-arn-wrong-partition", FILTER, {"snapshotArn": CLUSTER_SNAPSHOT_ARN.replace("arn:aws:", "arn:azure:")}, INVALID),
    Case("filter-arn-wrong-service", FILTER, {"snapshotArn": f"arn:aws:ec2:{REGION}:{ACCOUNT}:snapshot:snap-0123"}, INVALID),
    Case("filter-arn-short-account", FILTER, {"snapshotArn": CLUSTER_SNAPSHOT_ARN.replace(ACCOUNT, ACCOUNT[:11])}, INVALID),
    Case("filter-arn-is-a-cluster", FILTER, {"snapshotArn": f"arn:aws:rds:{REGION}:{ACCOUNT}:cluster:world-aurora"}, INVALID),
    Case("filter-arn-broken-utf8", FILTER, {"snapshotArn": CLUSTER_SNAPSHOT_ARN + BROKEN_UTF8}, INVALID),
    Case("filter-arn-nul", FILTER, {"snapshotArn": CLUSTER_SNAPSHOT_ARN + "\x00"}, INVALID),
    Case("filter-arn-huge", FILTER, {"snapshotArn": CLUSTER_SNAPSHOT_ARN + HUGE}, INVALID),
    Case("filter-arn-unknown-snapshot", FILTER, {"snapshotArn": CLUSTER_SNAPSHOT_ARN + "-gone"}, Raises("SnapshotNotFound")),
    Case(
        "filter-arn-other-account",
        FILTER,
        {"snapshotArn": CLUSTER_SNAPSHOT_ARN.replace(ACCOUNT, "210987654321")},
        Raises("SnapshotNotFound"),
    ),
    Case(
        "filter-instance-event-carries-cluster-arn",
        FILTER,
        {**_eventbridge(), "detail-type": "RDS DB Snapshot Event"},
        INVALID,
    ),
    Case("filter-event-detail-a-list", FILTER, {**_eventbridge(), "detail": [CLUSTER_SNAPSHOT_ARN]}, INVALID),
    Case("filter-event-source-arn-missing", FILTER, _eventbridge(SourceArn=None), INVALID),
    Case("filter-event-id-a-number", FILTER, _eventbridge(EventID=75), INVALID),
    Case("filter-event-detail-type-a-number", FILTER, {**_eventbridge(), "detail-type": 7}, INVALID),
    Case("filter-event-source-not-rds", FILTER, {**_eventbridge(), "source": "aws.ec2"}, INVALID),
    Case("filter-latest-of-sql", FILTER, {"latestSnapshotOf": SQL}, INVALID),
    Case("filter-latest-of-a-list", FILTER, {"latestSnapshotOf": ["shop-mysql"]}, INVALID),
    Case("filter-latest-of-unknown-source", FILTER, {"latestSnapshotOf": "shop-gone"}, Raises("SourceNotFound")),
    Case("filter-attempt-as-string", FILTER, {"snapshotArn": CLUSTER_SNAPSHOT_ARN, "exportAttempt": "2"}, INVALID),
    Case("filter-attempt-as-bool", FILTER, {"snapshotArn": CLUSTER_SNAPSHOT_ARN, "exportAttempt": True}, INVALID),
    Case("filter-attempt-negative", FILTER, {"snapshotArn": CLUSTER_SNAPSHOT_ARN, "exportAttempt": -1}, INVALID),
    Case("filter-attempt-misspelt", FILTER, {"snapshotArn": CLUSTER_SNAPSHOT_ARN, "exportAtempt": 2}, INVALID),
    # ---------------------------------------------------------------- StartExport (RDS)
    Case("start-event-is-a-list", START, [sample_event("start_export.json")], INVALID),
    Case("start-arn-missing", START, {"export": True, "snapshotTime": "2024-05-02T12:05:55Z"}, INVALID),
    Case("start-arn-of-s3", START, {"snapshotArn": "arn:aws:s3:::snaplake-local-lakebucket/x"}, INVALID),
    Case("start-arn-huge", START, {"snapshotArn": CLUSTER_SNAPSHOT_ARN + HUGE}, INVALID),
    Case("start-arn-broken-utf8", START, {"snapshotArn": CLUSTER_SNAPSHOT_ARN[:-1] + BROKEN_UTF8}, INVALID),
    Case("start-arn-unknown-snapshot", START, {"snapshotArn": CLUSTER_SNAPSHOT_ARN + "-gone"}, Raises("SnapshotNotFound")),
    Case("start-attempt-as-string", START, {"snapshotArn": CLUSTER_SNAPSHOT_ARN, "exportAttempt": "1"}, INVALID),
    Case("start-attempt-as-bool", START, {"snapshotArn": CLUSTER_SNAPSHOT_ARN, "exportAttempt": True}, INVALID),
    Case("start-attempt-negative", START, {"snapshotArn": CLUSTER_SNAPSHOT_ARN, "exportAttempt": -3}, INVALID),
    Case("start-attempt-huge", START, {"snapshotArn": CLUSTER_SNAPSHOT_ARN, "exportAttempt": 10**30}, INVALID),
    # ---------------------------------------------------------------- PollExport (RDS)
    Case("poll-event-is-a-list", POLL, [sample_event("poll_export.json")], INVALID),
    Case("poll-identifier-a-number", POLL, {"exportTaskIdentifier": 7}, INVALID),
    Case("poll-identifier-dotdot", POLL, {"exportTaskIdentifier": "../sl-world"}, INVALID),
    Case("poll-identifier-huge", POLL, {"exportTaskIdentifier": "sl-" + HUGE}, INVALID),
    Case("poll-identifier-unknown", POLL, {"exportTaskIdentifier": "sl-gone-0123456789"}, Raises("ExportNotFound")),
    Case("poll-polls-not-a-number", POLL, {**sample_event("poll_export.json"), "polls": "many"}, INVALID),
    Case("poll-polls-a-list", POLL, {**sample_event("poll_export.json"), "polls": [1]}, INVALID),
    Case("poll-polls-negative", POLL, {**sample_event("poll_export.json"), "polls": -5}, INVALID),
    # ---------------------------------------------------------------- PlanCopy
    Case("plan-copy-event-is-a-list", PLAN_COPY, [sample_event("plan_copy.json")], INVALID),
    Case("plan-copy-snapshot-time-missing", PLAN_COPY, {**sample_event("plan_copy.json"), "snapshotTime": None}, INVALID),
    Case(
        "plan-copy-snapshot-time-not-a-time", PLAN_COPY, {**sample_event("plan_copy.json"), "snapshotTime": "2024-13-45T99:00:00Z"}, INVALID
    ),
    Case("plan-copy-snapshot-time-no-zone", PLAN_COPY, {**sample_event("plan_copy.json"), "snapshotTime": "2024-05-02T12:05:55"}, INVALID),
    Case("plan-copy-snapshot-time-epoch", PLAN_COPY, {**sample_event("plan_copy.json"), "snapshotTime": 1714651555}, INVALID),
    Case("plan-copy-root-is-slash", PLAN_COPY, {**sample_event("plan_copy.json"), "exportRoot": "/"}, INVALID),
    Case(
        "plan-copy-root-leading-slash",
        PLAN_COPY,
        {**sample_event("plan_copy.json"), "exportRoot": "/exports/sl-world-aurora-manual-1-8db64dbebf/"},
        INVALID,
    ),
    Case(
        "plan-copy-root-dotdot",
        PLAN_COPY,
        {**sample_event("plan_copy.json"), "exportRoot": "exports/../exports/sl-world-aurora-manual-1-8db64dbebf/"},
        INVALID,
    ),
    Case(
        "plan-copy-root-double-slash",
        PLAN_COPY,
        {**sample_event("plan_copy.json"), "exportRoot": "exports//sl-world-aurora-manual-1-8db64dbebf/"},
        INVALID,
    ),
    Case(
        "plan-copy-root-percent-dotdot",
        PLAN_COPY,
        {**sample_event("plan_copy.json"), "exportRoot": "exports/%2e%2e/sl-world-aurora-manual-1-8db64dbebf/"},
        INVALID,
    ),
    Case(
        "plan-copy-root-control-character",
        PLAN_COPY,
        {**sample_event("plan_copy.json"), "exportRoot": "exports/\x1bsl-world-aurora-manual-1-8db64dbebf/"},
        INVALID,
    ),
    Case(
        "plan-copy-root-broken-utf8",
        PLAN_COPY,
        {**sample_event("plan_copy.json"), "exportRoot": f"exports/{BROKEN_UTF8}/sl-world-aurora-manual-1-8db64dbebf/"},
        INVALID,
    ),
    Case(
        "plan-copy-root-of-another-export",
        PLAN_COPY,
        {**sample_event("plan_copy.json"), "exportRoot": "exports/"},
        INVALID,
    ),
    Case("plan-copy-bucket-not-a-bucket-name", PLAN_COPY, {**sample_event("plan_copy.json"), "exportBucket": "../Not A Bucket"}, INVALID),
    Case(
        "plan-copy-bucket-a-list", PLAN_COPY, {**sample_event("plan_copy.json"), "exportBucket": ["snaplake-local-exportbucket"]}, INVALID
    ),
    Case(
        "plan-copy-export-id-dotdot",
        PLAN_COPY,
        {**sample_event("plan_copy.json"), "exportTaskIdentifier": "../../lake"},
        INVALID,
    ),
    Case("plan-copy-source-id-sql", PLAN_COPY, {**sample_event("plan_copy.json"), "sourceIdentifier": SQL}, INVALID),
    Case("plan-copy-engine-an-object", PLAN_COPY, {**sample_event("plan_copy.json"), "engine": {"name": "postgres"}}, INVALID),
    # ---------------------------------------------------------------- CopyBatch
    Case("copy-event-is-a-list", COPY, lambda s: [s.copy_batch()], INVALID),
    Case("copy-plan-missing", COPY, lambda s: {"share": s.rds_share}, INVALID),
    Case("copy-plan-prefix-dotdot", COPY, lambda s: s.copy_batch(plan={**s.rds_plan, "prefix": "exports/../../"}), INVALID),
    Case("copy-plan-prefix-slash", COPY, lambda s: s.copy_batch(plan={**s.rds_plan, "prefix": "/"}), INVALID),
    Case(
        "copy-plan-prefix-control-character",
        COPY,
        lambda s: s.copy_batch(plan={**s.rds_plan, "prefix": s.rds_plan["prefix"].replace("/plan-", "/\x07plan-")}),
        INVALID,
    ),
    Case("copy-plan-bucket-not-a-bucket-name", COPY, lambda s: s.copy_batch(plan={**s.rds_plan, "bucket": "Not A Bucket"}), INVALID),
    Case(
        "copy-plan-that-does-not-exist",
        COPY,
        lambda s: s.copy_batch(plan={**s.rds_plan, "prefix": s.rds_plan["prefix"].replace("/plan-", "/plan-0")[:-2] + "/"}),
        Raises("PlanMissing"),
    ),
    Case("copy-share-a-list", COPY, lambda s: s.copy_batch(share=list(s.rds_share.values())), INVALID),
    Case("copy-share-worker-as-string", COPY, lambda s: s.copy_batch(share={**s.rds_share, "worker": "0"}), INVALID),
    Case("copy-share-worker-as-bool", COPY, lambda s: s.copy_batch(share={**s.rds_share, "worker": False}), INVALID),
    Case("copy-share-more-batches-than-planned", COPY, lambda s: s.copy_batch(share={**s.rds_share, "batches": 10**6}), INVALID),
    Case("copy-cursor-offset-negative", COPY, lambda s: s.copy_batch(cursor={"batch": 0, "offset": -5}), INVALID),
    Case("copy-cursor-offset-past-the-batch", COPY, lambda s: s.copy_batch(cursor={"batch": 0, "offset": 10**12}), INVALID),
    Case(
        "copy-cursor-offset-at-the-end-of-the-batch",
        COPY,
        lambda s: s.copy_batch(cursor={"batch": 0, "offset": min(s.rds_share["objects"], s.rds_share["batchSize"])}),
        INVALID,
    ),
    Case("copy-cursor-batch-past-the-plan", COPY, lambda s: s.copy_batch(cursor={"batch": 10**9, "offset": 0}), INVALID),
    Case("copy-cursor-a-string", COPY, lambda s: s.copy_batch(cursor="0:0"), INVALID),
    Case("copy-tally-not-a-number", COPY, lambda s: s.copy_batch(copied="12 objects"), INVALID),
    # ---------------------------------------------------------------- FinalizeCopy
    Case("finalize-copy-batches-as-string", FINALIZE_COPY, lambda s: {"plan": s.rds_plan, "batches": str(s.rds_batches)}, INVALID),
    Case("finalize-copy-batches-negative", FINALIZE_COPY, lambda s: {"plan": s.rds_plan, "batches": -1}, INVALID),
    Case("finalize-copy-batches-zero", FINALIZE_COPY, lambda s: {"plan": s.rds_plan, "batches": 0}, INVALID),
    Case("finalize-copy-batches-huge", FINALIZE_COPY, lambda s: {"plan": s.rds_plan, "batches": 10**9}, INVALID),
    Case("finalize-copy-not-copied-yet", FINALIZE_COPY, lambda s: {"plan": s.rds_plan, "batches": s.rds_batches}, Raises("CopyIncomplete")),
    Case("finalize-copy-plan-a-string", FINALIZE_COPY, lambda s: {"plan": s.rds_plan["prefix"], "batches": 1}, INVALID),
    # ---------------------------------------------------------------- RegisterCatalog (RDS landed manifest)
    Case("rds-catalog-event-is-a-list", RDS_CATALOG, lambda s: [s.landed("not-json")], INVALID),
    Case("rds-catalog-manifest-a-string", RDS_CATALOG, {"landedManifest": "s3://bucket/landed.json"}, INVALID),
    Case("rds-catalog-manifest-key-missing", RDS_CATALOG, lambda s: s.landed("does-not-exist"), Raises("LandedManifestInvalid")),
    Case(
        "rds-catalog-manifest-key-dotdot",
        RDS_CATALOG,
        lambda s: {"landedManifest": {"bucket": s.export_bucket, "key": "corpus/landed/../landed/not-json.json"}},
        INVALID,
    ),
    Case(
        "rds-catalog-manifest-key-broken-utf8",
        RDS_CATALOG,
        lambda s: {"landedManifest": {"bucket": s.export_bucket, "key": f"corpus/{BROKEN_UTF8}.json"}},
        INVALID,
    ),
    Case(
        "rds-catalog-manifest-key-nul",
        RDS_CATALOG,
        lambda s: {"landedManifest": {"bucket": s.export_bucket, "key": "corpus/landed/not-json.json\x00"}},
        INVALID,
    ),
    Case(
        "rds-catalog-manifest-key-too-long",
        RDS_CATALOG,
        lambda s: {"landedManifest": {"bucket": s.export_bucket, "key": "corpus/" + "k" * 2000 + ".json"}},
        INVALID,
    ),
    Case(
        "rds-catalog-manifest-bucket-not-a-bucket-name",
        RDS_CATALOG,
        {"landedManifest": {"bucket": "s3://x", "key": "landed.json"}},
        INVALID,
    ),
    Case("rds-catalog-manifest-not-json", RDS_CATALOG, lambda s: s.landed("not-json"), Raises("LandedManifestInvalid")),
    Case("rds-catalog-manifest-not-utf8", RDS_CATALOG, lambda s: s.landed("not-utf8"), Raises("LandedManifestInvalid")),
    Case("rds-catalog-manifest-a-list", RDS_CATALOG, lambda s: s.landed("a-list"), Raises("LandedManifestInvalid")),
    Case("rds-catalog-manifest-no-tables", RDS_CATALOG, lambda s: s.landed("no-tables"), Raises("LandedManifestInvalid")),
    Case("rds-catalog-manifest-tables-an-object", RDS_CATALOG, lambda s: s.landed("tables-an-object"), Raises("LandedManifestInvalid")),
    Case("rds-catalog-manifest-table-a-string", RDS_CATALOG, lambda s: s.landed("table-entry-a-string"), Raises("LandedManifestInvalid")),
    Case(
        "rds-catalog-manifest-table-without-partition",
        RDS_CATALOG,
        lambda s: s.landed("table-missing-partition"),
        Raises("LandedManifestInvalid"),
    ),
    Case("rds-catalog-manifest-sql-in-database", RDS_CATALOG, lambda s: s.landed("sql-in-database"), Raises("LandedManifestInvalid")),
    Case("rds-catalog-manifest-backtick-in-table", RDS_CATALOG, lambda s: s.landed("backtick-in-table"), Raises("LandedManifestInvalid")),
    Case("rds-catalog-manifest-quote-in-table", RDS_CATALOG, lambda s: s.landed("quote-in-table"), Raises("LandedManifestInvalid")),
    Case("rds-catalog-manifest-dotdot-partition", RDS_CATALOG, lambda s: s.landed("dotdot-partition"), Raises("LandedManifestInvalid")),
    Case("rds-catalog-manifest-number-partition", RDS_CATALOG, lambda s: s.landed("number-partition"), Raises("LandedManifestInvalid")),
    Case("rds-catalog-manifest-other-bucket", RDS_CATALOG, lambda s: s.landed("other-lake-bucket"), Raises("LandedManifestInvalid")),
    Case("rds-catalog-manifest-good-then-bad", RDS_CATALOG, lambda s: s.landed("good-then-bad"), Raises("LandedManifestInvalid")),
    Case("rds-catalog-manifest-10k-tables", RDS_CATALOG, lambda s: s.landed("ten-thousand-tables"), Raises("LandedManifestInvalid")),
    # ---------------------------------------------------------------- MergeCurrent (the <table>_current Iceberg table)
    Case("current-event-is-a-list", DDB_CURRENT, [sample_event("dynamodb_merge_current.json")], INVALID),
    Case(
        "current-export-type-lower-case", DDB_CURRENT, {**sample_event("dynamodb_merge_current.json"), "exportType": "full_export"}, INVALID
    ),
    Case("current-partitions-a-string", DDB_CURRENT, {**sample_event("dynamodb_merge_current.json"), "partitions": "dynamodb/x/"}, INVALID),
    Case("current-table-sql", DDB_CURRENT, {**sample_event("dynamodb_merge_current.json"), "table": SQL}, Raises("InvalidIdentifier")),
    Case("current-table-huge", DDB_CURRENT, {**sample_event("dynamodb_merge_current.json"), "table": HUGE}, Raises("InvalidIdentifier")),
    Case(
        "current-exported-to-not-a-time", DDB_CURRENT, {**sample_event("dynamodb_merge_current.json"), "exportedTo": "yesterday"}, INVALID
    ),
    Case(
        "current-incremental-without-window",
        DDB_CURRENT,
        {**sample_event("dynamodb_merge_current.json"), "exportType": "INCREMENTAL_EXPORT", "windowFrom": None},
        INVALID,
    ),
    Case("current-export-arn-a-number", DDB_CURRENT, {**sample_event("dynamodb_merge_current.json"), "exportArn": 7}, INVALID),
    Case("current-execution-missing", DDB_CURRENT, {**sample_event("dynamodb_merge_current.json"), "execution": None}, INVALID),
    # ---------------------------------------------------------------- RegisterCatalog (DynamoDB partitions)
    Case("ddb-catalog-event-is-a-list", DDB_CATALOG, [sample_event("catalog_dynamodb.json")], INVALID),
    Case(
        "ddb-catalog-kind-upper-case",
        DDB_CATALOG,
        lambda s: {"kind": "FULL", "table": "shop_orders", "partitions": [s.ddb_partition]},
        INVALID,
    ),
    Case(
        "ddb-catalog-partitions-a-string",
        DDB_CATALOG,
        lambda s: {"kind": "full", "table": "shop_orders", "partitions": s.ddb_partition},
        INVALID,
    ),
    Case("ddb-catalog-table-sql", DDB_CATALOG, lambda s: {"kind": "full", "table": SQL, "partitions": [s.ddb_partition]}, INVALID),
    Case(
        "ddb-catalog-table-backticks",
        DDB_CATALOG,
        lambda s: {"kind": "full", "table": "`shop_orders`", "partitions": [s.ddb_partition]},
        INVALID,
    ),
    Case(
        "ddb-catalog-table-quotes",
        DDB_CATALOG,
        lambda s: {"kind": "full", "table": 'shop_orders"; --', "partitions": [s.ddb_partition]},
        INVALID,
    ),
    Case("ddb-catalog-table-huge", DDB_CATALOG, lambda s: {"kind": "full", "table": HUGE, "partitions": [s.ddb_partition]}, INVALID),
    Case("ddb-catalog-table-a-number", DDB_CATALOG, lambda s: {"kind": "full", "table": 7, "partitions": [s.ddb_partition]}, INVALID),
    Case(
        "ddb-catalog-partition-of-another-table",
        DDB_CATALOG,
        lambda s: {"kind": "full", "table": "other_table", "partitions": [s.ddb_partition]},
        INVALID,
    ),
    Case("ddb-catalog-partition-a-number", DDB_CATALOG, {"kind": "full", "table": "shop_orders", "partitions": [20240502]}, INVALID),
    Case(
        "ddb-catalog-partition-leading-slash",
        DDB_CATALOG,
        lambda s: {"kind": "full", "table": "shop_orders", "partitions": ["/" + s.ddb_partition]},
        INVALID,
    ),
    Case(
        "ddb-catalog-partition-dotdot",
        DDB_CATALOG,
        lambda s: {"kind": "full", "table": "shop_orders", "partitions": [f"dynamodb/x/../shop_orders/{s.ddb_partition.split('/')[-2]}/"]},
        INVALID,
    ),
    Case(
        "ddb-catalog-partition-double-slash",
        DDB_CATALOG,
        lambda s: {"kind": "full", "table": "shop_orders", "partitions": [s.ddb_partition.replace("/", "//", 1)]},
        INVALID,
    ),
    Case(
        "ddb-catalog-partition-percent-escape",
        DDB_CATALOG,
        lambda s: {"kind": "full", "table": "shop_orders", "partitions": [s.ddb_partition.replace("dynamodb/", "dynamodb/%2e%2e/")]},
        INVALID,
    ),
    Case(
        "ddb-catalog-partition-nul",
        DDB_CATALOG,
        lambda s: {"kind": "full", "table": "shop_orders", "partitions": [s.ddb_partition + "\x00"]},
        INVALID,
    ),
    Case(
        "ddb-catalog-partition-broken-utf8",
        DDB_CATALOG,
        lambda s: {"kind": "full", "table": "shop_orders", "partitions": [s.ddb_partition[:-1] + BROKEN_UTF8 + "/"]},
        INVALID,
    ),
    Case(
        "ddb-catalog-good-partition-then-bad",
        DDB_CATALOG,
        lambda s: {"kind": "full", "table": "shop_orders", "partitions": [s.ddb_partition, "dynamodb/shop_orders/../../x=1/"]},
        INVALID,
    ),
    Case(
        "ddb-catalog-10k-partitions-last-bad",
        DDB_CATALOG,
        lambda s: {"kind": "full", "table": "shop_orders", "partitions": [s.ddb_partition] * 9_999 + [None]},
        INVALID,
    ),
    # ---------------------------------------------------------------- DynamoDB StartExport
    Case("ddb-start-event-is-a-list", DDB_START, [sample_event("dynamodb_start_export.json")], INVALID),
    Case("ddb-start-execution-missing", DDB_START, {"request": {"tableArn": TABLE_ARN, "mode": "full"}}, INVALID),
    Case("ddb-start-execution-not-an-arn", DDB_START, {"request": {"tableArn": TABLE_ARN}, "execution": "me"}, INVALID),
    Case("ddb-start-request-a-list", DDB_START, {"request": [TABLE_ARN], "execution": EXECUTION}, INVALID),
    Case(
        "ddb-start-arn-wrong-service",
        DDB_START,
        {"request": {"tableArn": TABLE_ARN.replace(":dynamodb:", ":dynamo:")}, "execution": EXECUTION},
        INVALID,
    ),
    Case(
        "ddb-start-arn-long-account",
        DDB_START,
        {"request": {"tableArn": TABLE_ARN.replace(ACCOUNT, ACCOUNT + "0")}, "execution": EXECUTION},
        INVALID,
    ),
    Case(
        "ddb-start-arn-other-region",
        DDB_START,
        {"request": {"tableArn": TABLE_ARN.replace(REGION, "us-east-1")}, "execution": EXECUTION},
        INVALID,
    ),
    Case(
        "ddb-start-arn-other-account",
        DDB_START,
        {"request": {"tableArn": TABLE_ARN.replace(ACCOUNT, "210987654321")}, "execution": EXECUTION},
        INVALID,
    ),
    Case(
        "ddb-start-table-does-not-exist",
        DDB_START,
        {"request": {"tableArn": TABLE_ARN + "-gone"}, "execution": EXECUTION},
        Raises("DynamoDbTableNotFound"),
    ),
    Case("ddb-start-mode-upper-case", DDB_START, {"request": {"tableArn": TABLE_ARN, "mode": "FULL"}, "execution": EXECUTION}, INVALID),
    Case("ddb-start-mode-misspelt-key", DDB_START, {"request": {"tableArn": TABLE_ARN, "mdoe": "full"}, "execution": EXECUTION}, INVALID),
    # ---------------------------------------------------------------- DynamoDB PollExport
    Case("ddb-poll-event-is-a-list", DDB_POLL, [sample_event("dynamodb_poll_export.json")], INVALID),
    Case("ddb-poll-arn-of-a-table", DDB_POLL, {"exportArn": TABLE_ARN}, INVALID),
    Case("ddb-poll-arn-broken-utf8", DDB_POLL, {"exportArn": TABLE_ARN + "/export/0179" + BROKEN_UTF8}, INVALID),
    Case("ddb-poll-export-unknown", DDB_POLL, {"exportArn": TABLE_ARN + "/export/01700000000000-00000000"}, Raises("ExportNotFound")),
    Case("ddb-poll-polls-not-a-number", DDB_POLL, lambda s: {"exportArn": s.ddb_export_arn, "polls": "x"}, INVALID),
    # ---------------------------------------------------------------- DynamoDB CommitCheckpoint
    Case("ddb-commit-event-is-a-list", DDB_COMMIT, [sample_event("dynamodb_commit_checkpoint.json")], INVALID),
    Case(
        "ddb-commit-exported-to-missing",
        DDB_COMMIT,
        lambda s: {**sample_event("dynamodb_commit_checkpoint.json"), "exportArn": s.ddb_export_arn, "exportedTo": None},
        INVALID,
    ),
    Case(
        "ddb-commit-exported-to-not-a-time",
        DDB_COMMIT,
        lambda s: {**sample_event("dynamodb_commit_checkpoint.json"), "exportArn": s.ddb_export_arn, "exportedTo": "last tuesday"},
        INVALID,
    ),
    Case(
        "ddb-commit-exported-to-no-zone",
        DDB_COMMIT,
        lambda s: {**sample_event("dynamodb_commit_checkpoint.json"), "exportArn": s.ddb_export_arn, "exportedTo": "2026-11-24T23:57:32"},
        INVALID,
    ),
    Case(
        "ddb-commit-exported-to-in-the-future",
        DDB_COMMIT,
        lambda s: {**sample_event("dynamodb_commit_checkpoint.json"), "exportArn": s.ddb_export_arn, "exportedTo": "9999-12-31T23:59:59Z"},
        INVALID,
    ),
    Case(
        "ddb-commit-table-arn-a-number",
        DDB_COMMIT,
        lambda s: {**sample_event("dynamodb_commit_checkpoint.json"), "exportArn": s.ddb_export_arn, "tableArn": 5},
        INVALID,
    ),
    Case(
        "ddb-commit-export-type-unknown",
        DDB_COMMIT,
        lambda s: {**sample_event("dynamodb_commit_checkpoint.json"), "exportArn": s.ddb_export_arn, "exportType": "PARTIAL"},
        INVALID,
    ),
    Case(
        "ddb-commit-export-of-another-table",
        DDB_COMMIT,
        lambda s: {
            **sample_event("dynamodb_commit_checkpoint.json"),
            "exportArn": s.ddb_export_arn.replace("table/shop-orders/", "table/other-table/"),
        },
        INVALID,
    ),
    Case(
        "ddb-commit-execution-not-an-arn",
        DDB_COMMIT,
        lambda s: {**sample_event("dynamodb_commit_checkpoint.json"), "exportArn": s.ddb_export_arn, "execution": "run-1"},
        INVALID,
    ),
    Case(
        "ddb-commit-export-arn-not-an-arn",
        DDB_COMMIT,
        {**sample_event("dynamodb_commit_checkpoint.json"), "exportArn": "01795564952290-0847f1aa"},
        INVALID,
    ),
    # ---------------------------------------------------------------- DynamoDB MarkPublishing
    Case("ddb-publishing-event-is-a-list", DDB_PUBLISHING, [sample_event("dynamodb_mark_publishing.json")], INVALID),
    Case("ddb-publishing-execution-missing", DDB_PUBLISHING, _publishing(execution=None), INVALID),
    Case("ddb-publishing-execution-not-an-arn", DDB_PUBLISHING, _publishing(execution="run-1"), INVALID),
    Case("ddb-publishing-incremental-without-window-start", DDB_PUBLISHING, _publishing(exportType="INCREMENTAL_EXPORT"), INVALID),
    Case(
        "ddb-publishing-window-start-after-its-end",
        DDB_PUBLISHING,
        _publishing(exportType="INCREMENTAL_EXPORT", windowFrom="2026-11-25T00:57:32Z"),
        INVALID,
    ),
    Case(
        "ddb-publishing-window-start-not-a-time",
        DDB_PUBLISHING,
        _publishing(exportType="INCREMENTAL_EXPORT", windowFrom=1732492652),
        INVALID,
    ),
    Case(
        "ddb-publishing-export-of-another-table",
        DDB_PUBLISHING,
        lambda s: {**_publishing()(s), "exportArn": s.ddb_export_arn.replace("table/shop-orders/", "table/other-table/")},
        INVALID,
    ),
    Case("ddb-publishing-by-a-run-without-the-lease", DDB_PUBLISHING, _publishing(execution=EXECUTION), Raises("ExportLeaseLost")),
    # ---------------------------------------------------------------- DynamoDB ReleaseLease
    Case("ddb-release-event-is-a-list", DDB_RELEASE, [sample_event("dynamodb_release_lease.json")], INVALID),
    Case("ddb-release-execution-a-number", DDB_RELEASE, {"tableArn": TABLE_ARN, "execution": 7}, INVALID),
    Case("ddb-release-execution-not-an-arn", DDB_RELEASE, {"tableArn": TABLE_ARN, "execution": "*"}, INVALID),
    Case("ddb-release-table-arn-missing", DDB_RELEASE, {"execution": EXECUTION}, INVALID),
    # ---------------------------------------------------------------- DynamoDB schedule
    Case("schedule-event-is-a-list", SCHEDULE, [TABLE_ARN], INVALID),
    Case("schedule-table-arns-a-string", SCHEDULE, {"tableArns": TABLE_ARN}, INVALID),
    Case("schedule-table-arns-empty", SCHEDULE, {"tableArns": []}, INVALID),
    Case("schedule-table-arn-a-number", SCHEDULE, {"tableArns": [7]}, INVALID),
    Case("schedule-good-arn-then-bad", SCHEDULE, {"tableArns": [TABLE_ARN, TABLE_ARN.replace("arn:aws:", "arn:")]}, INVALID),
    Case("schedule-10k-arns-last-bad", SCHEDULE, {"tableArns": [TABLE_ARN] * 9_999 + ["arn:aws:dynamodb:::table/x"]}, INVALID),
    Case("schedule-mode-unknown", SCHEDULE, {"tableArns": [TABLE_ARN], "mode": "sometimes"}, INVALID),
    Case("schedule-time-not-a-time", SCHEDULE, {"tableArns": [TABLE_ARN], "scheduledTime": "tomorrow"}, INVALID),
    # ---------------------------------------------------------------- ConvertToParquet: Plan
    Case("convert-plan-event-is-a-list", CONVERT_PLAN, [sample_event("dynamodb_plan_conversion.json")], INVALID),
    Case(
        "convert-plan-summary-key-dotdot",
        CONVERT_PLAN,
        lambda s: {
            **sample_event("dynamodb_plan_conversion.json"),
            "exportArn": s.ddb_export_arn,
            "manifestSummaryKey": "../manifest.json",
        },
        INVALID,
    ),
    Case(
        "convert-plan-summary-key-leading-slash",
        CONVERT_PLAN,
        lambda s: {
            **sample_event("dynamodb_plan_conversion.json"),
            "exportArn": s.ddb_export_arn,
            "manifestSummaryKey": "/" + s.ddb_manifest_summary_key,
        },
        INVALID,
    ),
    Case(
        "convert-plan-summary-key-percent-slash",
        CONVERT_PLAN,
        lambda s: {
            **sample_event("dynamodb_plan_conversion.json"),
            "exportArn": s.ddb_export_arn,
            "manifestSummaryKey": s.ddb_manifest_summary_key.replace("/manifest-summary", "%2Fmanifest-summary"),
        },
        INVALID,
    ),
    Case(
        "convert-plan-summary-key-broken-utf8",
        CONVERT_PLAN,
        lambda s: {
            **sample_event("dynamodb_plan_conversion.json"),
            "exportArn": s.ddb_export_arn,
            "manifestSummaryKey": s.ddb_manifest_summary_key + BROKEN_UTF8,
        },
        INVALID,
    ),
    Case(
        "convert-plan-bucket-not-a-bucket-name",
        CONVERT_PLAN,
        lambda s: {**sample_event("dynamodb_plan_conversion.json"), "exportArn": s.ddb_export_arn, "bucket": "NOT_A_BUCKET"},
        INVALID,
    ),
    Case(
        "convert-plan-exported-to-not-a-time",
        CONVERT_PLAN,
        lambda s: {
            **sample_event("dynamodb_plan_conversion.json"),
            "exportArn": s.ddb_export_arn,
            "manifestSummaryKey": s.ddb_manifest_summary_key,
            "exportedTo": "soon",
        },
        INVALID,
    ),
    Case(
        "convert-plan-export-arn-not-an-arn",
        CONVERT_PLAN,
        lambda s: {**sample_event("dynamodb_plan_conversion.json"), "exportArn": "x", "manifestSummaryKey": s.ddb_manifest_summary_key},
        INVALID,
    ),
    Case(
        "convert-plan-export-of-another-table",
        CONVERT_PLAN,
        lambda s: {
            **sample_event("dynamodb_plan_conversion.json"),
            "exportArn": s.ddb_export_arn,
            "manifestSummaryKey": s.ddb_manifest_summary_key,
            "tableArn": TABLE_ARN + "-other",
        },
        INVALID,
    ),
    # ---------------------------------------------------------------- ConvertToParquet: ScanFiles
    Case("scan-event-is-a-list", SCAN, lambda s: [s.conversion()], INVALID),
    Case("scan-share-more-files-than-planned", SCAN, lambda s: s.conversion(share={"worker": 0, "workers": 1, "files": 100}), INVALID),
    Case(
        "scan-cursor-negative",
        SCAN,
        lambda s: s.conversion(share={"worker": 0, "workers": 1, "files": s.ddb_planned["files"]}, cursor=-1),
        INVALID,
    ),
    Case("scan-cursor-as-string", SCAN, lambda s: s.conversion(cursor="1"), INVALID),
    Case("scan-kind-unknown", SCAN, lambda s: s.conversion(kind="partial"), INVALID),
    Case("scan-plan-prefix-dotdot", SCAN, lambda s: s.conversion(plan={**s.ddb_planned["plan"], "prefix": "../../"}), INVALID),
    Case(
        "scan-plan-that-does-not-exist",
        SCAN,
        lambda s: s.conversion(plan={**s.ddb_planned["plan"], "prefix": s.ddb_planned["plan"]["prefix"][:-1] + "0/"}),
        Raises("PlanMissing"),
    ),
    # ---------------------------------------------------------------- ConvertToParquet: MergeSchema
    Case("merge-files-missing", MERGE, lambda s: {"plan": s.ddb_planned["plan"], "expectedItems": 12}, INVALID),
    Case("merge-expected-items-missing", MERGE, lambda s: {"plan": s.ddb_planned["plan"], "files": s.ddb_planned["files"]}, INVALID),
    Case("merge-files-as-string", MERGE, lambda s: s.totals(files=str(s.ddb_planned["files"])), INVALID),
    Case("merge-files-negative", MERGE, lambda s: s.totals(files=-1, expectedItems=0), INVALID),
    Case("merge-files-huge", MERGE, lambda s: s.totals(files=10**9), INVALID),
    Case(
        "merge-expected-items-wrong", MERGE, lambda s: s.totals(expectedItems=s.ddb_planned["expectedItems"] + 1), Raises("CountMismatch")
    ),
    # ---------------------------------------------------------------- ConvertToParquet: ConvertFiles
    Case("convert-kind-missing", CONVERT, lambda s: {k: v for k, v in s.conversion().items() if k != "kind"}, INVALID),
    Case("convert-table-sql", CONVERT, lambda s: s.conversion(table=SQL), INVALID),
    Case("convert-table-dotdot", CONVERT, lambda s: s.conversion(table="../x"), INVALID),
    Case("convert-exported-to-not-a-time", CONVERT, lambda s: s.conversion(exportedTo="2026-02-30T00:00:00Z"), INVALID),
    Case("convert-export-id-dotdot", CONVERT, lambda s: s.conversion(exportId="../../dynamodb/shop_orders"), INVALID),
    Case(
        "convert-cursor-past-the-files",
        CONVERT,
        lambda s: s.conversion(share={"worker": 0, "workers": 1, "files": 1}, cursor=10**12),
        INVALID,
    ),
    # ---------------------------------------------------------------- ConvertToParquet: PublishFiles
    Case("publish-event-is-a-list", PUBLISH, lambda s: [s.conversion()], INVALID),
    Case("publish-share-missing", PUBLISH, lambda s: {k: v for k, v in s.conversion().items() if k != "share"}, INVALID),
    Case("publish-share-worker-beyond-workers", PUBLISH, lambda s: s.conversion(share={"worker": 3, "workers": 1, "files": 1}), INVALID),
    Case("publish-share-files-beyond-plan", PUBLISH, lambda s: s.conversion(share={"worker": 0, "workers": 1, "files": 100}), INVALID),
    Case("publish-export-id-dotdot", PUBLISH, lambda s: s.conversion(exportId="../../dynamodb/shop_orders"), INVALID),
    Case("publish-plan-prefix-dotdot", PUBLISH, lambda s: s.conversion(plan={**s.ddb_planned["plan"], "prefix": "../../"}), INVALID),
    Case(
        "publish-plan-that-does-not-exist",
        PUBLISH,
        lambda s: s.conversion(plan={**s.ddb_planned["plan"], "prefix": s.ddb_planned["plan"]["prefix"][:-1] + "0/"}),
        Raises("PlanMissing"),
    ),
    # ---------------------------------------------------------------- ConvertToParquet: Finalize
    Case("convert-finalize-files-missing", CONVERT_FINALIZE, lambda s: {k: v for k, v in s.totals().items() if k != "files"}, INVALID),
    Case("convert-finalize-files-negative", CONVERT_FINALIZE, lambda s: s.totals(files=-1, expectedItems=0), INVALID),
    Case("convert-finalize-files-zero", CONVERT_FINALIZE, lambda s: s.totals(files=0, expectedItems=0), INVALID),
    Case("convert-finalize-expected-as-string", CONVERT_FINALIZE, lambda s: s.totals(expectedItems="12"), INVALID),
    Case("convert-finalize-table-quotes", CONVERT_FINALIZE, lambda s: s.totals(table="orders'--", files=0, expectedItems=0), INVALID),
    Case("convert-finalize-export-id-slash", CONVERT_FINALIZE, lambda s: s.totals(exportId="/etc"), INVALID),
    # ---------------------------------------------------------------- DynamoDB Streams -> change log
    Case("stream-records-a-string", STREAM, {"Records": "x"}, Raises("MalformedStreamRecord")),
    Case(
        "stream-sequence-number-missing",
        STREAM,
        {"Records": [_stream_record("100", {"SequenceNumber": None})]},
        Raises("MalformedStreamRecord"),
    ),
    Case(
        "stream-sequence-number-a-number",
        STREAM,
        {"Records": [_stream_record("100", {"SequenceNumber": 100})]},
        Raises("MalformedStreamRecord"),
    ),
    Case("stream-event-name-unknown", STREAM, _stream(_stream_record("100", eventName="DELETE")), BatchItemFailures(("100", "200"))),
    Case(
        "stream-source-arn-of-kinesis",
        STREAM,
        _stream(_stream_record("100", eventSourceARN="arn:aws:kinesis:eu-west-1:123456789012:stream/orders")),
        BatchItemFailures(("100", "200")),
    ),
    Case(
        "stream-source-arn-of-a-table", STREAM, _stream(_stream_record("100", eventSourceARN=TABLE_ARN)), BatchItemFailures(("100", "200"))
    ),
    Case(
        "stream-time-as-string",
        STREAM,
        _stream(_stream_record("100", {"ApproximateCreationDateTime": "2025-11-25T07:00:00Z"})),
        BatchItemFailures(("100", "200")),
    ),
    Case(
        "stream-time-negative",
        STREAM,
        _stream(_stream_record("100", {"ApproximateCreationDateTime": -1})),
        BatchItemFailures(("100", "200")),
    ),
    Case(
        "stream-time-huge",
        STREAM,
        _stream(_stream_record("100", {"ApproximateCreationDateTime": 1e300})),
        BatchItemFailures(("100", "200")),
    ),
    Case(
        "stream-time-as-bool",
        STREAM,
        _stream(_stream_record("100", {"ApproximateCreationDateTime": True})),
        BatchItemFailures(("100", "200")),
    ),
    Case("stream-keys-missing", STREAM, _stream(_stream_record("100", {"Keys": None})), BatchItemFailures(("100", "200"))),
    Case("stream-new-image-a-list", STREAM, _stream(_stream_record("100", {"NewImage": [{"S": "x"}]})), BatchItemFailures(("100", "200"))),
    Case(
        "stream-string-attribute-a-number",
        STREAM,
        _stream(_stream_record("100", {"NewImage": {"pk": {"S": 5}}})),
        BatchItemFailures(("100", "200")),
    ),
    Case(
        "stream-number-attribute-not-a-number",
        STREAM,
        _stream(_stream_record("100", {"NewImage": {"pk": {"S": "a"}, "total": {"N": "12abc"}}})),
        BatchItemFailures(("100", "200")),
    ),
    Case(
        "stream-bool-attribute-a-string",
        STREAM,
        _stream(_stream_record("100", {"NewImage": {"pk": {"S": "a"}, "paid": {"BOOL": "true"}}})),
        BatchItemFailures(("100", "200")),
    ),
    Case(
        "stream-attribute-value-broken-utf8",
        STREAM,
        _stream(_stream_record("100", {"NewImage": {"pk": {"S": "a" + BROKEN_UTF8}}})),
        BatchItemFailures(("100", "200")),
    ),
    Case(
        "stream-attribute-name-broken-utf8",
        STREAM,
        _stream(_stream_record("100", {"NewImage": {"pk": {"S": "a"}, BROKEN_UTF8: {"S": "x"}}})),
        BatchItemFailures(("100", "200")),
    ),
    Case(
        "stream-map-nested-too-deep",
        STREAM,
        _stream(_stream_record("100", {"NewImage": {"pk": {"S": "a"}, "deep": _nested(700)}})),
        BatchItemFailures(("100", "200")),
    ),
    Case(
        "stream-10k-records-first-bad",
        STREAM,
        {"Records": [_stream_record("1", eventName="UPSERT")] + [_stream_record(str(n)) for n in range(2, 10_001)]},
        BatchItemFailures(tuple(str(n) for n in range(1, 10_001))),
    ),
    Case(
        "stream-event-is-a-list",
        STREAM,
        [_stream_record("100")],
        Raises("MalformedStreamRecord"),
    ),
    # ---------------------------------------------------------------- DynamoDB Streams: an operator's replay of a failure record
    Case("stream-replay-not-a-failure-record", STREAM, {"replayFailure": _stream(_stream_record("100"))}, Raises("InvalidReplayRequest")),
    Case("stream-replay-with-records", STREAM, {**_replay(), "Records": [_stream_record("100")]}, Raises("InvalidReplayRequest")),
    Case("stream-replay-body-not-json", STREAM, {"replayFailure": "{not json"}, Raises("InvalidReplayRequest")),
    Case("stream-replay-body-huge", STREAM, {"replayFailure": HUGE}, Raises("InvalidReplayRequest")),
    Case("stream-replay-shard-id-a-path", STREAM, _replay(shardId="../../rds/world"), Raises("InvalidReplayRequest")),
    Case("stream-replay-range-backwards", STREAM, _replay(startSequenceNumber="9", endSequenceNumber="1"), Raises("InvalidReplayRequest")),
    Case("stream-replay-sequence-a-number", STREAM, _replay(startSequenceNumber=1), Raises("InvalidReplayRequest")),
    Case("stream-replay-kinesis", STREAM, _replay(streamArn=f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/"), Raises("InvalidReplayRequest")),
    # The sample names another deployment's function: only this function's own mapping has moved past the range.
    Case("stream-replay-of-another-function", STREAM, _replay(), Raises("InvalidReplayRequest")),
    # ---------------------------------------------------------------- Athena SQL jobs (ValidateJobs, RunJobStep)
    Case("athena-event-is-a-list", ATHENA, [sample_event("athena_etl_jobs.json")], INVALID),
    Case("athena-jobs-an-object", ATHENA, {"jobs": {"a": 1}}, Raises("InvalidJob")),
    Case("athena-jobs-empty", ATHENA, {"jobs": []}, Raises("InvalidJob")),
    Case("athena-job-name-sql", ATHENA, {"jobs": [{**sample_event("athena_etl_jobs.json")["jobs"][0], "name": SQL}]}, Raises("InvalidJob")),
    Case(
        "athena-job-database-backticks",
        ATHENA,
        {"jobs": [{**sample_event("athena_etl_jobs.json")["jobs"][0], "database": "marts`; DROP DATABASE `x"}]},
        Raises("InvalidIdentifier"),
    ),
    Case(
        "athena-job-table-quotes",
        ATHENA,
        {"jobs": [{**sample_event("athena_etl_jobs.json")["jobs"][0], "table": 'summary"; DROP TABLE "x'}]},
        Raises("InvalidIdentifier"),
    ),
    Case(
        "athena-job-query-two-statements",
        ATHENA,
        {"jobs": [{**sample_event("athena_etl_jobs.json")["jobs"][3], "query": "SELECT 1; DROP TABLE marts.continent_summary"}]},
        Raises("InvalidSelect"),
    ),
    Case(
        "athena-job-mode-unknown",
        ATHENA,
        {"jobs": [{**sample_event("athena_etl_jobs.json")["jobs"][0], "mode": "merge"}]},
        Raises("InvalidJob"),
    ),
    Case(
        "athena-job-name-broken-utf8",
        ATHENA,
        {"jobs": [{**sample_event("athena_etl_jobs.json")["jobs"][0], "name": "a" + BROKEN_UTF8}]},
        Raises("InvalidJob"),
    ),
    Case(
        "athena-apas-partition-value-athena-escapes",
        ATHENA,
        {"jobs": [{**sample_event("athena_etl_jobs.json")["jobs"][2], "partition": {"dt": "2024#05"}}]},
        Raises("UnsafePartitionValue"),
    ),
    Case("athena-step-index-negative", ATHENA, {**sample_event("athena_query_step.json"), "index": -1}, Raises("InvalidJob")),
    Case("athena-step-index-as-string", ATHENA, {**sample_event("athena_query_step.json"), "index": "0"}, Raises("InvalidJob")),
    Case(
        "athena-step-start-time-not-a-time",
        ATHENA,
        {**sample_event("athena_query_step.json"), "startTime": "at five"},
        Raises("InvalidJob"),
    ),
    Case("athena-step-cursor-a-string", ATHENA, {**sample_event("athena_query_step.json"), "cursor": "step 3"}, Raises("InvalidJob")),
    Case("athena-step-execution-a-number", ATHENA, {**sample_event("athena_query_step.json"), "execution": 7}, Raises("InvalidJob")),
    # ---------------------------------------------------------------- Firehose transformation
    Case("firehose-data-not-base64", FIREHOSE, _firehose("not base64!", GOOD_FIREHOSE_DATA), ProcessingFailed(("r1",))),
    Case("firehose-data-a-number", FIREHOSE, _firehose(12345, GOOD_FIREHOSE_DATA), ProcessingFailed(("r1",))),
    Case("firehose-data-missing", FIREHOSE, _firehose(None, GOOD_FIREHOSE_DATA), ProcessingFailed(("r1",))),
    Case("firehose-data-broken-utf8-in-base64", FIREHOSE, _firehose("eyJh" + BROKEN_UTF8, GOOD_FIREHOSE_DATA), ProcessingFailed(("r1",))),
    Case("firehose-data-not-utf8", FIREHOSE, _firehose(_b64(b'{"a": "\xff\xfe"}'), GOOD_FIREHOSE_DATA), ProcessingFailed(("r1",))),
    Case("firehose-data-a-json-list", FIREHOSE, _firehose(_b64(b"[1, 2]"), GOOD_FIREHOSE_DATA), ProcessingFailed(("r1",))),
    Case(
        "firehose-data-too-large",
        FIREHOSE,
        _firehose(_b64(b'{"a": "' + b"x" * 1_100_000 + b'"}'), GOOD_FIREHOSE_DATA),
        ProcessingFailed(("r1",)),
    ),
    Case("firehose-10k-records-not-json", FIREHOSE, _firehose(*[_b64(b"{")] * 10_000), ProcessingFailed()),
    Case(
        "firehose-data-lone-surrogate-escape",
        FIREHOSE,
        _firehose(_b64(b'{"a": "\\udcff"}'), GOOD_FIREHOSE_DATA),
        ProcessingFailed(("r1",)),
    ),
    Case(
        "firehose-data-nested-too-deep",
        FIREHOSE,
        _firehose(_b64(b"[" * 100_000 + b"]" * 100_000), GOOD_FIREHOSE_DATA),
        ProcessingFailed(("r1",)),
    ),
    Case(
        "firehose-records-a-string",
        FIREHOSE,
        {"records": "x"},
        Raises("InvalidEvent"),
    ),
]
