"""RDS snapshot requests: parse the trigger, resolve the snapshot, apply the allow-list.

Three inputs reach the filter: an EventBridge RDS snapshot event, a direct
request `{"snapshotArn": ...}` (backfill) and `{"latestSnapshotOf": ...}`
(scheduled). The source cluster/instance is always resolved through the RDS
API: snapshot names do not reliably say where they came from.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from botocore.exceptions import ClientError

from snaplake.core.aws import error_code, is_not_found
from snaplake.core.errors import InvalidEvent
from snaplake.core.s3 import Bucket
from snaplake.core.times import iso_utc
from snaplake.rds.errors import NoSnapshotAvailable, SnapshotNotFound, SnapshotNotReady, SourceNotFound
from snaplake.rds.lake_guards import landed_snapshot_owner

SNAPSHOT_CREATED_EVENT_IDS = {
    "RDS-EVENT-0042": "manual DB snapshot created",
    "RDS-EVENT-0091": "automated DB snapshot created",
    "RDS-EVENT-0075": "manual DB cluster snapshot created",
    "RDS-EVENT-0169": "automated DB cluster snapshot created",
    # "Finished copy of snapshot <name> in region <region>" (a same-Region copy, e.g. AWS Backup's); SourceArn is the copy.
    "RDS-EVENT-0197": "DB snapshot copy finished",
}
_DETAIL_TYPES = {"RDS DB Snapshot Event": "instance", "RDS DB Cluster Snapshot Event": "cluster"}
_SNAPSHOT_ARN = re.compile(r"^arn:aws[a-z-]*:rds:[a-z0-9-]+:\d{12}:(snapshot|cluster-snapshot):([A-Za-z0-9:._-]{1,255})$")
SOURCE_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,62}$")

SourceType = Literal["cluster", "instance"]


@dataclass(frozen=True)
class SnapshotRef:
    arn: str
    source_type: SourceType
    identifier: str


@dataclass(frozen=True)
class LatestOf:
    source_id: str


@dataclass(frozen=True)
class Ignored:
    reason: str


@dataclass(frozen=True)
class Snapshot:
    arn: str
    identifier: str
    source_type: SourceType
    source_id: str
    engine: str
    created: datetime
    status: str

    def as_output(self, reason: str, attempt: int) -> dict[str, Any]:
        return {
            "export": True,
            "reason": reason,
            "snapshotArn": self.arn,
            "snapshotIdentifier": self.identifier,
            "sourceType": self.source_type,
            "sourceIdentifier": self.source_id,
            "engine": self.engine,
            "snapshotTime": iso_utc(self.created),
            "exportAttempt": attempt,
        }


def parse_snapshot_arn(arn: Any) -> SnapshotRef:
    if not isinstance(arn, str):
        raise InvalidEvent(f"snapshot ARN must be a string, got {type(arn).__name__}")
    match = _SNAPSHOT_ARN.fullmatch(arn)
    if not match:
        raise InvalidEvent(f"{arn[:300]!r} is not an RDS DB snapshot or DB cluster snapshot ARN")
    kind, identifier = match.groups()
    return SnapshotRef(arn, "cluster" if kind == "cluster-snapshot" else "instance", identifier)


def parse_request(event: Any) -> SnapshotRef | LatestOf | Ignored:
    if not isinstance(event, dict):
        raise InvalidEvent(f"event must be a JSON object, got {type(event).__name__}")
    if "detail-type" in event or event.get("source") == "aws.rds":
        return _parse_eventbridge(event)
    if "snapshotArn" in event:
        _only_known_fields(event, "snapshotArn")
        return parse_snapshot_arn(event["snapshotArn"])
    if "latestSnapshotOf" in event:
        _only_known_fields(event, "latestSnapshotOf")
        source_id = event["latestSnapshotOf"]
        if not isinstance(source_id, str) or not SOURCE_IDENTIFIER.fullmatch(source_id):
            raise InvalidEvent(f"latestSnapshotOf must be a DB cluster or instance identifier, got {str(source_id)[:100]!r}")
        return LatestOf(source_id)
    raise InvalidEvent('unsupported event: expected an EventBridge RDS snapshot event, {"snapshotArn": ...} or {"latestSnapshotOf": ...}')


def _only_known_fields(request: dict[str, Any], kind: str) -> None:
    """A direct request is typed by hand: a misspelt field must not be ignored (`exportAtempt` would re-use a failed export)."""
    unknown = sorted(set(request) - {kind, "exportAttempt"})
    if unknown:
        raise InvalidEvent(
            f"unknown fields {[name[:40] for name in unknown[:5]]} in a {kind!r} request; it takes {kind!r} and 'exportAttempt'"
        )


def export_attempt(event: Any) -> int:
    """A backfill may ask for a fresh export of a snapshot whose earlier export failed."""
    attempt = event.get("exportAttempt", 1) if isinstance(event, dict) else 1
    if not isinstance(attempt, int) or isinstance(attempt, bool) or not 1 <= attempt <= 999:
        raise InvalidEvent(f"exportAttempt must be an integer from 1 to 999, got {attempt!r:.60}")
    return attempt


def _parse_eventbridge(event: dict[str, Any]) -> SnapshotRef | Ignored:
    detail_type = event.get("detail-type")
    detail = event.get("detail")
    if event.get("source") != "aws.rds":
        raise InvalidEvent(f"event source must be 'aws.rds', got {str(event.get('source'))[:100]!r}")
    if detail_type is not None and not isinstance(detail_type, str):
        raise InvalidEvent(f"detail-type must be a string, got {type(detail_type).__name__}")
    if detail_type not in _DETAIL_TYPES:
        return Ignored(f"detail-type {str(detail_type)[:100]!r} is not a snapshot event")
    if not isinstance(detail, dict):
        raise InvalidEvent("RDS snapshot event has no 'detail' object")
    event_id = detail.get("EventID")
    if event_id is not None and not isinstance(event_id, str):
        raise InvalidEvent(f"detail.EventID must be a string, got {type(event_id).__name__}")
    if event_id not in SNAPSHOT_CREATED_EVENT_IDS:
        return Ignored(f"event {str(event_id)[:40]!r} is not a snapshot-created event")
    ref = parse_snapshot_arn(detail.get("SourceArn"))
    if ref.source_type != _DETAIL_TYPES[detail_type]:
        raise InvalidEvent(f"{detail_type} carries a {ref.source_type} snapshot ARN")
    return ref


def _snapshot_type(identifier: str) -> dict[str, str]:
    """DescribeDB(Cluster)Snapshots needs SnapshotType for automated and AWS Backup snapshots."""
    if identifier.startswith("rds:"):
        return {"SnapshotType": "automated"}
    if identifier.startswith("awsbackup:"):
        return {"SnapshotType": "awsbackup"}
    return {}


def describe_snapshot(rds: Any, ref: SnapshotRef) -> Snapshot:
    kind = _snapshot_type(ref.identifier)
    try:
        if ref.source_type == "cluster":
            found = rds.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=ref.identifier, **kind)["DBClusterSnapshots"]
        else:
            found = rds.describe_db_snapshots(DBSnapshotIdentifier=ref.identifier, **kind)["DBSnapshots"]
    except ClientError as error:
        if is_not_found(error, "DBSnapshotNotFound", "DBClusterSnapshotNotFoundFault"):
            raise SnapshotNotFound(f"snapshot {ref.arn} does not exist") from None
        raise
    if not found:
        raise SnapshotNotFound(f"snapshot {ref.arn} does not exist")
    snapshot = _snapshot(found[0], ref.source_type)
    if snapshot.arn != ref.arn:
        # Same name in this account and region, but the request named another account or region.
        raise SnapshotNotFound(f"snapshot {ref.arn} is not in this account and region (found {snapshot.arn})")
    return snapshot


def latest_snapshot(rds: Any, source_id: str) -> Snapshot:
    """The newest `available` snapshot of a DB cluster or, failing that, a DB instance.

    Automated and manual snapshots come by default; AWS Backup's need their own call.
    """
    source_type: SourceType
    try:
        rds.describe_db_clusters(DBClusterIdentifier=source_id)
        source_type = "cluster"
        snapshots = [
            s
            for kind in ({}, {"SnapshotType": "awsbackup"})
            for page in rds.get_paginator("describe_db_cluster_snapshots").paginate(DBClusterIdentifier=source_id, **kind)
            for s in page["DBClusterSnapshots"]
        ]
    except ClientError as error:
        if error_code(error) != "DBClusterNotFoundFault":
            raise
        try:
            rds.describe_db_instances(DBInstanceIdentifier=source_id)
        except ClientError as inner:
            if error_code(inner) == "DBInstanceNotFound":
                raise SourceNotFound(f"no DB cluster or DB instance is named {source_id!r}") from None
            raise
        source_type = "instance"
        snapshots = [
            s
            for kind in ({}, {"SnapshotType": "awsbackup"})
            for page in rds.get_paginator("describe_db_snapshots").paginate(DBInstanceIdentifier=source_id, **kind)
            for s in page["DBSnapshots"]
        ]
    available = [s for s in snapshots if s.get("Status") == "available" and s.get("SnapshotCreateTime")]
    if not available:
        raise NoSnapshotAvailable(f"{source_type} {source_id!r} has no available snapshot")
    return _snapshot(max(available, key=lambda s: s["SnapshotCreateTime"]), source_type)


def _snapshot(raw: dict[str, Any], source_type: SourceType) -> Snapshot:
    if source_type == "cluster":
        arn, identifier, source_id = raw["DBClusterSnapshotArn"], raw["DBClusterSnapshotIdentifier"], raw["DBClusterIdentifier"]
    else:
        arn, identifier, source_id = raw["DBSnapshotArn"], raw["DBSnapshotIdentifier"], raw["DBInstanceIdentifier"]
    # A copied snapshot holds the data as of the original's creation.
    created = raw.get("OriginalSnapshotCreateTime") or raw.get("SnapshotCreateTime")
    if created is None:
        raise SnapshotNotReady(f"snapshot {arn} has no creation time yet (status {raw.get('Status')!r})")
    return Snapshot(arn, identifier, source_type, source_id, raw.get("Engine", ""), created, raw.get("Status", ""))


def is_selected(source_id: str, patterns: tuple[str, ...]) -> bool:
    # RDS identifiers are case-insensitive (stored lower-case).
    return any(fnmatch.fnmatchcase(source_id.lower(), pattern.lower()) for pattern in patterns)


# Engines whose snapshots RDS can export to S3 (not Oracle, SQL Server, Db2 or RDS Custom).
EXPORTABLE_ENGINES = ("aurora-mysql", "aurora-postgresql", "mysql", "mariadb", "postgres")


def is_exportable(engine: str) -> bool:
    return engine.lower() in EXPORTABLE_ENGINES or engine.lower() == "aurora"


def decide(rds: Any, event: Any, patterns: tuple[str, ...], lake: Bucket | None = None, lake_prefix: str = "") -> dict[str, Any]:
    """The filter step: what to export for this input, or why nothing.

    With the lake given, a snapshot whose source and snapshot time already have an export of another
    snapshot on record in the lake (a copy of a snapshot that landed: RDS keeps the original's
    OriginalSnapshotCreateTime) is skipped with the reason; PlanCopy's claim refuses it anyway.
    """
    request = parse_request(event)
    if isinstance(request, Ignored):
        return {"export": False, "reason": request.reason}
    attempt = export_attempt(event)
    if isinstance(request, LatestOf):
        if not is_selected(request.source_id, patterns):
            return {"export": False, "reason": f"source {request.source_id!r} is not in SOURCE_IDENTIFIERS"}
        snapshot = latest_snapshot(rds, request.source_id)
        reason = f"latest available snapshot of {request.source_id}"
    else:
        snapshot = describe_snapshot(rds, request)
        reason = "snapshot of a selected source"
    if not is_selected(snapshot.source_id, patterns):
        return {
            "export": False,
            "reason": f"snapshot {snapshot.identifier} belongs to {snapshot.source_type} {snapshot.source_id!r}, not in SOURCE_IDENTIFIERS",
        }
    if not is_exportable(snapshot.engine):
        reason = f"snapshot {snapshot.identifier} is of engine {snapshot.engine!r}, which RDS cannot export to S3"
        return {"export": False, "reason": reason}
    if snapshot.status != "available":
        raise SnapshotNotReady(f"snapshot {snapshot.arn} is {snapshot.status!r}, not 'available'")
    owner = None if lake is None else landed_snapshot_owner(lake, lake_prefix, snapshot.source_id, snapshot.created)
    if owner is not None and owner.get("snapshotArn") != snapshot.arn:
        return {
            "export": False,
            "reason": f"the data of {snapshot.source_type} {snapshot.source_id!r} as of {iso_utc(snapshot.created)} already landed "
            f"(or is landing) from snapshot {owner.get('snapshotArn')} (export {owner.get('export')}); "
            f"snapshot {snapshot.identifier} holds the same data",
        }
    return snapshot.as_output(reason, attempt)
