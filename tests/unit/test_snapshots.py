"""Snapshot requests: parsing the trigger, resolving the snapshot, the allow-list."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws
from snaplake.core.claims import Claims
from snaplake.core.errors import InvalidEvent
from snaplake.core.s3 import Bucket
from snaplake.core.times import parse_iso_utc
from snaplake.rds.errors import NoSnapshotAvailable, SnapshotNotFound, SnapshotNotReady, SourceNotFound
from snaplake.rds.lake_guards import snapshot_claim_key
from snaplake.rds.snapshots import Ignored, LatestOf, SnapshotRef, decide, export_attempt, parse_request, parse_snapshot_arn

from tests.unit.helpers import ACCOUNT, REGION, RdsClock, create_aurora_postgresql_cluster, create_mysql_instance, load_event

CLUSTER_SNAPSHOT_ARN = f"arn:aws:rds:{REGION}:{ACCOUNT}:cluster-snapshot:world-aurora-manual-1"
INSTANCE_SNAPSHOT_ARN = f"arn:aws:rds:{REGION}:{ACCOUNT}:snapshot:shop-mysql-before-migration"
ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")

# ---------------------------------------------------------------- parse_request


@pytest.mark.parametrize(
    ("event_file", "source_type", "identifier"),
    [
        ("rds_manual_cluster_snapshot.json", "cluster", "world-aurora-manual-1"),
        ("rds_automated_cluster_snapshot.json", "cluster", "rds:world-aurora-2024-05-02-02-35"),
        ("rds_manual_instance_snapshot.json", "instance", "shop-mysql-before-migration"),
        ("rds_automated_instance_snapshot.json", "instance", "rds:shop-mysql-2024-05-02-03-15"),
    ],
)
def test_snapshot_created_event_parses_to_a_snapshot_reference(event_file: str, source_type: str, identifier: str) -> None:
    event = load_event(event_file)

    request = parse_request(event)

    assert request == SnapshotRef(event["detail"]["SourceArn"], source_type, identifier)  # type: ignore[arg-type]


def test_direct_snapshot_arn_request_parses_to_a_snapshot_reference() -> None:
    assert parse_request(load_event("rds_export_request.json")) == SnapshotRef(CLUSTER_SNAPSHOT_ARN, "cluster", "world-aurora-manual-1")


def test_direct_instance_snapshot_arn_request_parses_to_an_instance_reference() -> None:
    assert parse_request({"snapshotArn": INSTANCE_SNAPSHOT_ARN}) == SnapshotRef(
        INSTANCE_SNAPSHOT_ARN, "instance", "shop-mysql-before-migration"
    )


def test_latest_snapshot_request_parses_to_latest_of_the_source() -> None:
    assert parse_request(load_event("rds_latest_snapshot_request.json")) == LatestOf("shop-mysql")


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws-cn:rds:cn-north-1:123456789012:snapshot:rds:orders-db-2024-05-02-03-15",
        "arn:aws-us-gov:rds:us-gov-west-1:123456789012:cluster-snapshot:awsbackup:job-0a1b2c3d-4e5f",
        "arn:aws:rds:eu-west-1:123456789012:snapshot:My.Snapshot_v2",
        f"arn:aws:rds:eu-west-1:123456789012:snapshot:{'a' * 255}",
    ],
)
def test_snapshot_arns_in_every_partition_and_naming_style_are_accepted(arn: str) -> None:
    ref = parse_snapshot_arn(arn)

    assert ref.arn == arn
    assert arn.endswith(":" + ref.identifier)


def test_snapshot_copy_finished_event_names_the_copy_to_export() -> None:
    """RDS-EVENT-0197, "Finished copy of snapshot <name> in region <region>" (RDS user guide, USER_Events.Messages,
    DB snapshot events, category notification): a same-Region copy such as AWS Backup makes; SourceArn is the copy."""
    request = parse_request(load_event("rds_snapshot_copy_finished.json"))

    assert request == SnapshotRef(
        "arn:aws:rds:eu-west-1:123456789012:snapshot:shop-mysql-2024-05-02-03-15-copy", "instance", "shop-mysql-2024-05-02-03-15-copy"
    )


def test_deleted_snapshot_event_is_ignored() -> None:
    request = parse_request(load_event("rds_snapshot_deleted.json"))

    assert isinstance(request, Ignored)
    assert "RDS-EVENT-0041" in request.reason


@pytest.mark.parametrize("event_id", ["RDS-EVENT-0040", "RDS-EVENT-0090", "RDS-EVENT-0196", "RDS-EVENT-0190", "RDS-EVENT-0161", None])
def test_snapshot_event_that_is_not_a_creation_is_ignored(event_id: str | None) -> None:
    event = load_event("rds_manual_instance_snapshot.json")
    event["detail"]["EventID"] = event_id

    assert isinstance(parse_request(event), Ignored)


@pytest.mark.parametrize("detail_type", ["RDS DB Instance Event", "RDS DB Cluster Event", "RDS DB Parameter Group Event", None])
def test_rds_event_that_is_not_a_snapshot_event_is_ignored(detail_type: str | None) -> None:
    event = load_event("rds_manual_instance_snapshot.json")
    event["detail-type"] = detail_type

    request = parse_request(event)

    assert isinstance(request, Ignored)
    assert "not a snapshot event" in request.reason


def _without_detail() -> dict[str, Any]:
    event = load_event("rds_manual_cluster_snapshot.json")
    del event["detail"]
    return event


def _with_detail(detail: Any) -> dict[str, Any]:
    event = load_event("rds_manual_cluster_snapshot.json")
    event["detail"] = detail
    return event


def _with_source_arn(arn: Any, event_file: str = "rds_manual_cluster_snapshot.json") -> dict[str, Any]:
    event = load_event(event_file)
    event["detail"]["SourceArn"] = arn
    return event


def _with_source(source: Any) -> dict[str, Any]:
    event = load_event("rds_manual_cluster_snapshot.json")
    event["source"] = source
    return event


def _instance_event_with_cluster_arn() -> dict[str, Any]:
    return _with_source_arn(CLUSTER_SNAPSHOT_ARN, "rds_manual_instance_snapshot.json")


def _cluster_event_with_instance_arn() -> dict[str, Any]:
    return _with_source_arn(INSTANCE_SNAPSHOT_ARN, "rds_manual_cluster_snapshot.json")


MALFORMED_INPUTS: dict[str, Any] = {
    "list": [load_event("rds_manual_cluster_snapshot.json")],
    "string": "arn:aws:rds:eu-west-1:123456789012:snapshot:x",
    "number": 42,
    "null": None,
    "empty object": {},
    "unknown shape": {"snapshot": CLUSTER_SNAPSHOT_ARN},
    "missing detail": _without_detail(),
    "detail is a string": _with_detail("RDS-EVENT-0075"),
    "detail is a list": _with_detail([{"EventID": "RDS-EVENT-0075"}]),
    "detail-type without aws.rds source": _with_source("aws.ec2"),
    "detail-type without source": _with_source(None),
    "instance event with cluster ARN": _instance_event_with_cluster_arn(),
    "cluster event with instance ARN": _cluster_event_with_instance_arn(),
    "event ARN missing": _with_source_arn(None),
    "event ARN is a number": _with_source_arn(12345),
    "event ARN is a list": _with_source_arn([CLUSTER_SNAPSHOT_ARN]),
    "event ARN is not RDS": _with_source_arn("arn:aws:s3:::snaplake-exports/key"),
    "event ARN is a DB instance": _with_source_arn("arn:aws:rds:eu-west-1:123456789012:db:world-aurora-1"),
    "direct ARN not an ARN": {"snapshotArn": "world-aurora-manual-1"},
    "direct ARN short account": {"snapshotArn": "arn:aws:rds:eu-west-1:1234:snapshot:x"},
    "direct ARN empty name": {"snapshotArn": "arn:aws:rds:eu-west-1:123456789012:snapshot:"},
    "direct ARN bad character": {"snapshotArn": "arn:aws:rds:eu-west-1:123456789012:snapshot:a/b"},
    "direct ARN too long": {"snapshotArn": f"arn:aws:rds:eu-west-1:123456789012:snapshot:{'a' * 256}"},
    "direct ARN is a cluster": {"snapshotArn": "arn:aws:rds:eu-west-1:123456789012:cluster:world-aurora"},
    "direct ARN is a number": {"snapshotArn": 7},
    "direct ARN is null": {"snapshotArn": None},
    "direct ARN is an object": {"snapshotArn": {"arn": CLUSTER_SNAPSHOT_ARN}},
    "latestSnapshotOf empty": {"latestSnapshotOf": ""},
    "latestSnapshotOf starts with digit": {"latestSnapshotOf": "1shop"},
    "latestSnapshotOf underscore": {"latestSnapshotOf": "shop_mysql"},
    "latestSnapshotOf too long": {"latestSnapshotOf": "a" * 64},
    "latestSnapshotOf with slash": {"latestSnapshotOf": "shop/mysql"},
    "latestSnapshotOf number": {"latestSnapshotOf": 42},
    "latestSnapshotOf null": {"latestSnapshotOf": None},
    "latestSnapshotOf list": {"latestSnapshotOf": ["shop-mysql"]},
}


@pytest.mark.parametrize("event", list(MALFORMED_INPUTS.values()), ids=list(MALFORMED_INPUTS))
def test_malformed_input_is_an_invalid_event(event: Any) -> None:
    with pytest.raises(InvalidEvent):
        parse_request(event)


def _with_detail_type(detail_type: Any) -> dict[str, Any]:
    event = load_event("rds_manual_cluster_snapshot.json")
    event["detail-type"] = detail_type
    return event


def _with_event_id(event_id: Any) -> dict[str, Any]:
    event = load_event("rds_manual_cluster_snapshot.json")
    event["detail"]["EventID"] = event_id
    return event


@pytest.mark.parametrize(
    "event",
    [
        _with_detail_type(["RDS DB Cluster Snapshot Event"]),
        _with_detail_type({"name": "RDS DB Cluster Snapshot Event"}),
        _with_event_id(["RDS-EVENT-0075"]),
        _with_event_id({"id": "RDS-EVENT-0075"}),
    ],
    ids=["detail-type list", "detail-type object", "EventID list", "EventID object"],
)
def test_unhashable_detail_type_or_event_id_is_an_invalid_event(event: dict[str, Any]) -> None:
    with pytest.raises(InvalidEvent):
        parse_request(event)


@pytest.mark.parametrize(
    "event",
    [{"snapshotArn": CLUSTER_SNAPSHOT_ARN + "\n"}, {"latestSnapshotOf": "shop-mysql\n"}],
    ids=["snapshotArn", "latestSnapshotOf"],
)
def test_identifier_with_trailing_newline_is_an_invalid_event(event: dict[str, Any]) -> None:
    with pytest.raises(InvalidEvent):
        parse_request(event)


# ---------------------------------------------------------------- export_attempt


@pytest.mark.parametrize(
    ("event", "expected"),
    [({}, 1), ({"snapshotArn": CLUSTER_SNAPSHOT_ARN}, 1), ({"exportAttempt": 2}, 2), ({"exportAttempt": 999}, 999), ([], 1), ("x", 1)],
)
def test_export_attempt_defaults_to_one_and_accepts_1_to_999(event: Any, expected: int) -> None:
    assert export_attempt(event) == expected


@pytest.mark.parametrize("attempt", [0, -1, 1000, "2", 2.0, True, False, None, [2]])
def test_export_attempt_outside_1_to_999_or_not_an_integer_is_an_invalid_event(attempt: Any) -> None:
    with pytest.raises(InvalidEvent):
        export_attempt({"exportAttempt": attempt})


# ---------------------------------------------------------------- decide (moto RDS)


@pytest.fixture(scope="module")
def sources() -> Iterator[Any]:
    """One moto RDS world for the read-only `decide` tests (building it costs more than the tests).

    - world-aurora (aurora-postgresql cluster): automated rds:world-aurora-2024-05-02-02-35,
      manual world-aurora-manual-1 (12:05:55), then world-aurora-zz-older listed last but taken earlier.
    - shop-mysql (mysql instance): automated rds:shop-mysql-2024-05-02-03-15, manual
      shop-mysql-before-migration (10:00:07), then shop-mysql-zz-older listed last but taken earlier.
    - world-aurora snapshot nightly-7, whose name does not say which cluster it belongs to.
    - ledger-mysql (mysql instance): manual ledger-1 and ledger-copy, a copy made two days later.
    - empty-aurora: a cluster whose only (automated) snapshot was deleted.
    """
    clock = RdsClock()
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        patch.setattr("moto.rds.models.utcnow", clock)
        rds = boto3.client("rds", region_name=REGION)
        clock.set("2024-05-02T02:35:00Z")
        create_aurora_postgresql_cluster(rds, "world-aurora")
        clock.set("2024-05-02T03:15:00Z")
        create_mysql_instance(rds, "shop-mysql")
        clock.set("2024-05-02T10:00:07Z")
        rds.create_db_snapshot(DBInstanceIdentifier="shop-mysql", DBSnapshotIdentifier="shop-mysql-before-migration")
        clock.set("2024-05-02T12:05:55Z")
        rds.create_db_cluster_snapshot(DBClusterIdentifier="world-aurora", DBClusterSnapshotIdentifier="world-aurora-manual-1")
        clock.set("2024-04-30T00:00:00Z")
        rds.create_db_cluster_snapshot(DBClusterIdentifier="world-aurora", DBClusterSnapshotIdentifier="world-aurora-zz-older")
        rds.create_db_snapshot(DBInstanceIdentifier="shop-mysql", DBSnapshotIdentifier="shop-mysql-zz-older")
        clock.set("2024-04-29T00:00:00Z")
        rds.create_db_cluster_snapshot(DBClusterIdentifier="world-aurora", DBClusterSnapshotIdentifier="nightly-7")
        clock.set("2024-04-20T00:00:00Z")
        create_mysql_instance(rds, "ledger-mysql")
        rds.create_db_snapshot(DBInstanceIdentifier="ledger-mysql", DBSnapshotIdentifier="ledger-1")
        clock.set("2024-04-22T00:00:00Z")
        rds.copy_db_snapshot(SourceDBSnapshotIdentifier="ledger-1", TargetDBSnapshotIdentifier="ledger-copy")
        create_aurora_postgresql_cluster(rds, "empty-aurora")
        for snapshot in rds.describe_db_cluster_snapshots(DBClusterIdentifier="empty-aurora")["DBClusterSnapshots"]:
            rds.delete_db_cluster_snapshot(DBClusterSnapshotIdentifier=snapshot["DBClusterSnapshotIdentifier"])
        yield rds


def test_manual_cluster_snapshot_event_of_selected_cluster_is_exported(sources: Any) -> None:
    event = load_event("rds_manual_cluster_snapshot.json")

    result = decide(sources, event, ("world-aurora",))

    assert result == {
        "export": True,
        "reason": "snapshot of a selected source",
        "snapshotArn": CLUSTER_SNAPSHOT_ARN,
        "snapshotIdentifier": "world-aurora-manual-1",
        "sourceType": "cluster",
        "sourceIdentifier": "world-aurora",
        "engine": "aurora-postgresql",
        "snapshotTime": "2024-05-02T12:05:55Z",
        "exportAttempt": 1,
    }


def test_manual_instance_snapshot_event_of_selected_instance_is_exported(sources: Any) -> None:
    result = decide(sources, load_event("rds_manual_instance_snapshot.json"), ("shop-mysql",))

    assert result["export"] is True
    assert result["snapshotArn"] == INSTANCE_SNAPSHOT_ARN
    assert result["snapshotIdentifier"] == "shop-mysql-before-migration"
    assert result["sourceType"] == "instance"
    assert result["sourceIdentifier"] == "shop-mysql"
    assert result["engine"] == "mysql"
    assert result["snapshotTime"] == "2024-05-02T10:00:07Z"


@pytest.mark.parametrize(
    ("event_file", "source_type", "source_id", "snapshot_time"),
    [
        ("rds_automated_cluster_snapshot.json", "cluster", "world-aurora", "2024-05-02T02:35:00Z"),
        ("rds_automated_instance_snapshot.json", "instance", "shop-mysql", "2024-05-02T03:15:00Z"),
    ],
)
def test_automated_snapshot_event_resolves_its_source_through_the_api(
    sources: Any, event_file: str, source_type: str, source_id: str, snapshot_time: str
) -> None:
    event = load_event(event_file)

    result = decide(sources, event, ("*",))

    assert result["export"] is True
    assert result["snapshotArn"] == event["detail"]["SourceArn"]
    assert result["snapshotIdentifier"] == event["detail"]["SourceIdentifier"]
    assert result["sourceType"] == source_type
    assert result["sourceIdentifier"] == source_id
    assert result["snapshotTime"] == snapshot_time
    assert ISO_UTC.match(result["snapshotTime"])


def test_source_identifier_comes_from_the_api_not_the_snapshot_name(sources: Any) -> None:
    result = decide(sources, {"snapshotArn": f"arn:aws:rds:{REGION}:{ACCOUNT}:cluster-snapshot:nightly-7"}, ("world-aurora",))

    assert result["export"] is True
    assert result["sourceIdentifier"] == "world-aurora"
    assert result["snapshotIdentifier"] == "nightly-7"


def test_copied_snapshot_reports_the_original_snapshot_time(sources: Any) -> None:
    result = decide(sources, {"snapshotArn": f"arn:aws:rds:{REGION}:{ACCOUNT}:snapshot:ledger-copy"}, ("ledger-*",))

    assert result["snapshotIdentifier"] == "ledger-copy"
    assert result["snapshotTime"] == "2024-04-20T00:00:00Z"


def test_copy_of_a_snapshot_whose_time_is_claimed_by_another_snapshot_is_skipped(sources: Any) -> None:
    """PlanCopy claimed ledger-mysql's 2024-04-20 snapshot time for ledger-1's export; its copy holds the same data."""
    lake = Bucket(boto3.client("s3", region_name=REGION), "snaplake-lake")
    lake.s3.create_bucket(Bucket=lake.name, CreateBucketConfiguration={"LocationConstraint": REGION})
    original = f"arn:aws:rds:{REGION}:{ACCOUNT}:snapshot:ledger-1"
    key = snapshot_claim_key("lake", "ledger-mysql", datetime(2024, 4, 20, tzinfo=UTC))
    Claims(lake).claim(key, {"export": "sl-ledger-1-0123456789", "snapshotArn": original, "source": "ledger-mysql"})

    copy = decide(sources, {"snapshotArn": f"arn:aws:rds:{REGION}:{ACCOUNT}:snapshot:ledger-copy"}, ("ledger-*",), lake, "lake")
    again = decide(sources, {"snapshotArn": original}, ("ledger-*",), lake, "lake")
    elsewhere = decide(sources, {"snapshotArn": f"arn:aws:rds:{REGION}:{ACCOUNT}:snapshot:ledger-copy"}, ("ledger-*",), lake, "other")

    assert copy["export"] is False
    assert f"from snapshot {original} (export sl-ledger-1-0123456789)" in copy["reason"]
    assert again["export"] is True  # the same snapshot again: a redelivery, which reuses its export
    assert elsewhere["export"] is True  # nothing landed under that lake prefix


def test_direct_request_carries_its_export_attempt(sources: Any) -> None:
    result = decide(sources, {"snapshotArn": CLUSTER_SNAPSHOT_ARN, "exportAttempt": 3}, ("world-aurora",))

    assert result["export"] is True
    assert result["exportAttempt"] == 3


@pytest.mark.parametrize(
    "patterns",
    [
        ("world-aurora",),
        ("World-Aurora",),
        ("world-*",),
        ("*-aurora",),
        ("world-?urora",),
        ("*",),
        ("billing", "world-aurora"),
        ("shop-*", "world-[a-z]*"),
    ],
)
def test_allow_list_exact_names_and_globs_select_the_source(sources: Any, patterns: tuple[str, ...]) -> None:
    assert decide(sources, load_event("rds_manual_cluster_snapshot.json"), patterns)["export"] is True


@pytest.mark.parametrize("patterns", [("shop-mysql",), ("world",), ("world-aurora-*",), ("billing-*", "shop-*"), ()])
def test_snapshot_of_source_outside_the_allow_list_is_not_exported(sources: Any, patterns: tuple[str, ...]) -> None:
    result = decide(sources, load_event("rds_manual_cluster_snapshot.json"), patterns)

    assert result["export"] is False
    assert "world-aurora" in result["reason"]
    assert "SOURCE_IDENTIFIERS" in result["reason"]
    assert "snapshotArn" not in result


def test_deleted_snapshot_event_is_not_exported(sources: Any) -> None:
    result = decide(sources, load_event("rds_snapshot_deleted.json"), ("*",))

    assert result["export"] is False
    assert result["reason"]


def test_latest_snapshot_of_cluster_is_the_newest_available_one(sources: Any) -> None:
    # world-aurora-zz-older and nightly-7 are listed after the newest snapshot.
    result = decide(sources, {"latestSnapshotOf": "world-aurora"}, ("world-*",))

    assert result["export"] is True
    assert result["snapshotIdentifier"] == "world-aurora-manual-1"
    assert result["snapshotArn"] == CLUSTER_SNAPSHOT_ARN
    assert result["sourceType"] == "cluster"
    assert result["sourceIdentifier"] == "world-aurora"
    assert result["snapshotTime"] == "2024-05-02T12:05:55Z"
    assert "world-aurora" in result["reason"]


def test_latest_snapshot_of_instance_is_the_newest_available_one(sources: Any) -> None:
    result = decide(sources, load_event("rds_latest_snapshot_request.json"), ("shop-mysql",))

    assert result["export"] is True
    assert result["snapshotIdentifier"] == "shop-mysql-before-migration"
    assert result["sourceType"] == "instance"
    assert result["sourceIdentifier"] == "shop-mysql"
    assert result["engine"] == "mysql"
    assert result["snapshotTime"] == "2024-05-02T10:00:07Z"


def test_latest_snapshot_of_source_outside_the_allow_list_is_not_exported(sources: Any) -> None:
    result = decide(sources, {"latestSnapshotOf": "shop-mysql"}, ("world-*",))

    assert result["export"] is False
    assert "shop-mysql" in result["reason"]


def test_latest_snapshot_of_unknown_source_is_source_not_found(sources: Any) -> None:
    with pytest.raises(SourceNotFound):
        decide(sources, {"latestSnapshotOf": "no-such-db"}, ("*",))


def test_latest_snapshot_of_source_without_snapshots_is_no_snapshot_available(sources: Any) -> None:
    with pytest.raises(NoSnapshotAvailable):
        decide(sources, {"latestSnapshotOf": "empty-aurora"}, ("*",))


@pytest.mark.parametrize(
    "arn",
    [
        f"arn:aws:rds:{REGION}:{ACCOUNT}:cluster-snapshot:no-such-snapshot",
        f"arn:aws:rds:{REGION}:{ACCOUNT}:snapshot:no-such-snapshot",
        # The instance snapshot's name under the cluster snapshot kind, and the reverse.
        f"arn:aws:rds:{REGION}:{ACCOUNT}:cluster-snapshot:shop-mysql-before-migration",
        f"arn:aws:rds:{REGION}:{ACCOUNT}:snapshot:world-aurora-manual-1",
    ],
)
def test_snapshot_arn_that_does_not_exist_is_snapshot_not_found(sources: Any, arn: str) -> None:
    with pytest.raises(SnapshotNotFound):
        decide(sources, {"snapshotArn": arn}, ("*",))


def test_malformed_request_is_an_invalid_event_before_any_api_call(sources: Any) -> None:
    with pytest.raises(InvalidEvent):
        decide(sources, {"snapshotArn": CLUSTER_SNAPSHOT_ARN, "exportAttempt": 0}, ("*",))


class _CreatingSnapshotRds:
    """An RDS client whose one DB snapshot is still being created."""

    def __init__(self, create_time: Any) -> None:
        self.create_time = create_time

    def describe_db_snapshots(self, **_: Any) -> dict[str, Any]:
        return {
            "DBSnapshots": [
                {
                    "DBSnapshotArn": INSTANCE_SNAPSHOT_ARN,
                    "DBSnapshotIdentifier": "shop-mysql-before-migration",
                    "DBInstanceIdentifier": "shop-mysql",
                    "Engine": "mysql",
                    "Status": "creating",
                    **({"SnapshotCreateTime": self.create_time} if self.create_time else {}),
                }
            ]
        }


@pytest.mark.parametrize("create_time", [None, "2024-05-02T10:00:07Z"])
def test_snapshot_that_is_still_being_created_is_not_ready(create_time: str | None) -> None:
    rds = _CreatingSnapshotRds(parse_iso_utc(create_time) if create_time else None)

    with pytest.raises(SnapshotNotReady):
        decide(rds, {"snapshotArn": INSTANCE_SNAPSHOT_ARN}, ("*",))
