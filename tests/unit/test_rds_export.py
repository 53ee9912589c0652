"""RDS export tasks: the deterministic identifier, starting once, polling."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import snaplake.rds.export_task
from botocore.exceptions import ClientError
from snaplake.core.errors import ConfigError, ExportFailed, ExportNotFound, InvalidEvent
from snaplake.rds.errors import ExportCanceled, ExportSlotsBusy
from snaplake.rds.export_task import MAX_CONCURRENT_EXPORTS, active_export_count, export_task_identifier, poll_export, start_export
from snaplake.rds.settings import EXPORT_PREFIX_MAX_CHARS, ExportSettings

from tests.template._support import template
from tests.unit.helpers import ACCOUNT, REGION, create_aurora_postgresql_cluster, create_mysql_instance

CLUSTER_SNAPSHOT_ARN = f"arn:aws:rds:{REGION}:{ACCOUNT}:cluster-snapshot:world-aurora-manual-1"
INSTANCE_SNAPSHOT_ARN = f"arn:aws:rds:{REGION}:{ACCOUNT}:snapshot:shop-mysql-before-migration"
SETTINGS = ExportSettings(
    bucket="snaplake-exports",
    prefix="exports/rds",
    role_arn=f"arn:aws:iam::{ACCOUNT}:role/snaplake-export",
    kms_key_arn=f"arn:aws:kms:{REGION}:{ACCOUNT}:key/11111111-2222-3333-4444-555555555555",
    export_only=(),
)

# ---------------------------------------------------------------- export_task_identifier

_BASE = f"arn:aws:rds:{REGION}:{ACCOUNT}"
IDENTIFIER_ARNS = [
    f"{_BASE}:snapshot:rds:orders-db-2024-05-02-03-15",
    f"{_BASE}:cluster-snapshot:rds:billing-aurora-2024-05-02-02-35",
    f"{_BASE}:snapshot:orders-db-before-migration",
    f"{_BASE}:cluster-snapshot:billing-manual-1",
    f"{_BASE}:cluster-snapshot:awsbackup:job-0a1b2c3d-4e5f-6789-abcd-ef0123456789",
    f"{_BASE}:snapshot:My.Snapshot_v2__final",
    f"{_BASE}:snapshot:a.b_c-d:e",
    f"{_BASE}:snapshot:1-starts-with-a-digit",
    f"{_BASE}:snapshot:---",
    f"{_BASE}:snapshot:...",
    f"{_BASE}:snapshot:_",
    f"{_BASE}:snapshot:x",
    f"{_BASE}:snapshot:{'a' * 255}",
    f"{_BASE}:cluster-snapshot:{'a' * 255}",
    f"{_BASE}:snapshot:{'a' * 254}b",
    f"{_BASE}:snapshot:{'ab-' * 85}",
    f"{_BASE}:snapshot:{'a' * 45}-b",  # a hyphen right where the readable part is cut
    f"{_BASE}:snapshot:{'a' * 46}-b",
    f"{_BASE}:snapshot:{'a' * 44}--b",
    f"{_BASE}:snapshot:{'a.' * 127}a",
    f"{_BASE}:snapshot:{'Z_' * 127}z",
    "arn:aws-cn:rds:cn-north-1:123456789012:snapshot:rds:orders-db-2024-05-02-03-15",
    "arn:aws-us-gov:rds:us-gov-west-1:123456789012:cluster-snapshot:billing-manual-1",
]
_VALID_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9-]*")


def _assert_valid_export_task_identifier(identifier: str) -> None:
    assert len(identifier) <= 60, identifier
    assert _VALID_IDENTIFIER.fullmatch(identifier), identifier
    assert "--" not in identifier, identifier
    assert not identifier.endswith("-"), identifier


@pytest.mark.parametrize("attempt", [1, 2, 10, 999])
@pytest.mark.parametrize("arn", IDENTIFIER_ARNS)
def test_export_task_identifier_is_always_valid(arn: str, attempt: int) -> None:
    _assert_valid_export_task_identifier(export_task_identifier(arn, attempt))


@pytest.mark.parametrize("arn", IDENTIFIER_ARNS)
def test_redelivered_snapshot_maps_to_same_export_identifier(arn: str) -> None:
    assert export_task_identifier(arn) == export_task_identifier(arn)
    assert export_task_identifier(arn, 2) == export_task_identifier(arn, 2)
    assert export_task_identifier(arn) == export_task_identifier(arn, 1)


def test_distinct_snapshots_and_attempts_get_distinct_identifiers() -> None:
    identifiers = {export_task_identifier(arn, attempt) for arn in IDENTIFIER_ARNS for attempt in (1, 2, 3)}

    assert len(identifiers) == len(IDENTIFIER_ARNS) * 3


def test_instance_and_cluster_snapshots_of_the_same_name_get_different_identifiers() -> None:
    instance = export_task_identifier(f"{_BASE}:snapshot:nightly-1")
    cluster = export_task_identifier(f"{_BASE}:cluster-snapshot:nightly-1")

    assert instance != cluster


def test_second_export_attempt_gets_a_different_identifier() -> None:
    first = export_task_identifier(CLUSTER_SNAPSHOT_ARN, 1)
    second = export_task_identifier(CLUSTER_SNAPSHOT_ARN, 2)

    assert second != first
    _assert_valid_export_task_identifier(second)


def test_long_names_that_share_a_prefix_get_different_identifiers() -> None:
    first = export_task_identifier(f"{_BASE}:snapshot:{'a' * 200}-one")
    second = export_task_identifier(f"{_BASE}:snapshot:{'a' * 200}-two")

    assert first != second
    assert len(first) <= 60 and len(second) <= 60


def test_identifier_keeps_a_readable_form_of_the_snapshot_name() -> None:
    identifier = export_task_identifier(f"{_BASE}:snapshot:rds:orders-db-2024-05-02-03-15")

    assert identifier.startswith("sl-rds-orders-db-2024-05-02-03-15-")


def test_identifier_of_same_name_in_another_account_differs() -> None:
    assert export_task_identifier(CLUSTER_SNAPSHOT_ARN) != export_task_identifier(CLUSTER_SNAPSHOT_ARN.replace(ACCOUNT, "210987654321"))


# ---------------------------------------------------------------- start_export / poll_export with moto


@pytest.fixture
def snapshots(rds: Any) -> Any:
    create_aurora_postgresql_cluster(rds, "world-aurora")
    rds.create_db_cluster_snapshot(DBClusterIdentifier="world-aurora", DBClusterSnapshotIdentifier="world-aurora-manual-1")
    create_mysql_instance(rds, "shop-mysql")
    rds.create_db_snapshot(DBInstanceIdentifier="shop-mysql", DBSnapshotIdentifier="shop-mysql-before-migration")
    return rds


def _tasks(rds: Any) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = rds.describe_export_tasks()["ExportTasks"]
    return tasks


def test_start_export_starts_a_task_named_for_the_snapshot(snapshots: Any) -> None:
    result = start_export(snapshots, {"snapshotArn": CLUSTER_SNAPSHOT_ARN}, SETTINGS)

    identifier = export_task_identifier(CLUSTER_SNAPSHOT_ARN)
    assert result["exportTaskIdentifier"] == identifier
    assert result["reused"] is False
    assert result["exportBucket"] == "snaplake-exports"
    assert result["exportRoot"] == f"exports/rds/{identifier}/"
    assert result["polls"] == 0
    assert result["waitSeconds"] > 0
    [task] = _tasks(snapshots)
    assert task["ExportTaskIdentifier"] == identifier
    assert task["SourceArn"] == CLUSTER_SNAPSHOT_ARN
    assert task["S3Bucket"] == SETTINGS.bucket
    assert task["S3Prefix"] == SETTINGS.prefix
    assert task["IamRoleArn"] == SETTINGS.role_arn
    assert task["KmsKeyId"] == SETTINGS.kms_key_arn


def test_starting_twice_for_the_same_snapshot_reuses_the_first_task(snapshots: Any) -> None:
    first = start_export(snapshots, {"snapshotArn": CLUSTER_SNAPSHOT_ARN}, SETTINGS)
    second = start_export(snapshots, {"snapshotArn": CLUSTER_SNAPSHOT_ARN}, SETTINGS)

    assert second["exportTaskIdentifier"] == first["exportTaskIdentifier"]
    assert first["reused"] is False
    assert second["reused"] is True
    assert second["exportRoot"] == first["exportRoot"]
    assert [t["ExportTaskIdentifier"] for t in _tasks(snapshots)] == [first["exportTaskIdentifier"]]


def test_second_export_attempt_starts_a_separate_task(snapshots: Any) -> None:
    first = start_export(snapshots, {"snapshotArn": CLUSTER_SNAPSHOT_ARN}, SETTINGS)
    second = start_export(snapshots, {"snapshotArn": CLUSTER_SNAPSHOT_ARN, "exportAttempt": 2}, SETTINGS)

    assert second["reused"] is False
    assert second["exportTaskIdentifier"] == export_task_identifier(CLUSTER_SNAPSHOT_ARN, 2)
    assert {t["ExportTaskIdentifier"] for t in _tasks(snapshots)} == {first["exportTaskIdentifier"], second["exportTaskIdentifier"]}


def test_instance_snapshot_export_passes_export_only_and_omits_empty_prefix(snapshots: Any) -> None:
    settings = ExportSettings(
        bucket="snaplake-exports", prefix="", role_arn=SETTINGS.role_arn, kms_key_arn=SETTINGS.kms_key_arn, export_only=("shop.customers",)
    )

    result = start_export(snapshots, {"snapshotArn": INSTANCE_SNAPSHOT_ARN}, settings)

    assert result["exportRoot"] == f"{result['exportTaskIdentifier']}/"
    [task] = _tasks(snapshots)
    assert task["SourceArn"] == INSTANCE_SNAPSHOT_ARN
    assert task["ExportOnly"] == ["shop.customers"]
    assert not task.get("S3Prefix")


def test_all_export_slots_busy_is_export_slots_busy(snapshots: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(snaplake.rds.export_task, "active_export_count", lambda rds: MAX_CONCURRENT_EXPORTS)

    with pytest.raises(ExportSlotsBusy):
        start_export(snapshots, {"snapshotArn": CLUSTER_SNAPSHOT_ARN}, SETTINGS)

    assert _tasks(snapshots) == []


def test_task_already_started_is_reused_even_when_slots_are_busy(snapshots: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    first = start_export(snapshots, {"snapshotArn": CLUSTER_SNAPSHOT_ARN}, SETTINGS)
    monkeypatch.setattr(snaplake.rds.export_task, "active_export_count", lambda rds: MAX_CONCURRENT_EXPORTS)

    again = start_export(snapshots, {"snapshotArn": CLUSTER_SNAPSHOT_ARN}, SETTINGS)

    assert again["reused"] is True
    assert again["exportTaskIdentifier"] == first["exportTaskIdentifier"]


@pytest.mark.parametrize("request_", [{}, {"snapshotArn": None}, {"snapshotArn": "world-aurora-manual-1"}, {"snapshotArn": 5}])
def test_start_export_without_a_snapshot_arn_is_an_invalid_event(request_: dict[str, Any]) -> None:
    with pytest.raises(InvalidEvent):
        start_export(FakeRds(), request_, SETTINGS)


def test_start_export_with_non_integer_attempt_is_an_invalid_event() -> None:
    with pytest.raises(InvalidEvent):
        start_export(FakeRds(), {"snapshotArn": CLUSTER_SNAPSHOT_ARN, "exportAttempt": "2"}, SETTINGS)


def test_poll_of_a_moto_export_reports_it_complete(snapshots: Any) -> None:
    started = start_export(snapshots, {"snapshotArn": CLUSTER_SNAPSHOT_ARN, "snapshotTime": "2024-05-02T12:05:55Z"}, SETTINGS)
    state = {**started, "snapshotTime": "2024-05-02T12:05:55Z"}

    polled = poll_export(snapshots, state)

    assert polled["status"] == "COMPLETE"
    assert polled["done"] is True
    assert polled["exportTaskIdentifier"] == started["exportTaskIdentifier"]
    assert polled["exportBucket"] == "snaplake-exports"
    assert polled["exportRoot"] == started["exportRoot"]
    assert polled["warnings"] is None
    assert polled["polls"] == 1
    assert polled["snapshotTime"] == "2024-05-02T12:05:55Z"  # earlier steps' fields pass through


def test_poll_of_unknown_export_is_export_not_found(rds: Any) -> None:
    with pytest.raises(ExportNotFound):
        poll_export(rds, {"exportTaskIdentifier": "sl-no-such-export-0123456789"})


@pytest.mark.parametrize("state", [{}, {"exportTaskIdentifier": ""}, {"exportTaskIdentifier": 7}])
def test_poll_without_identifier_is_an_invalid_event(state: dict[str, Any]) -> None:
    with pytest.raises(InvalidEvent):
        poll_export(FakeRds(), state)


# ---------------------------------------------------------------- a small fake RDS for the statuses moto cannot produce


def _client_error(code: str, message: str = "", operation: str = "StartExportTask") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


class _Paginator:
    def __init__(self, operation: Any) -> None:
        self.operation = operation

    def paginate(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        yield self.operation(**kwargs)


class FakeRds:
    """DescribeExportTasks / StartExportTask with tasks in any state, following the real
    API: upper-case statuses in responses, lower-case status values in filters."""

    def __init__(self, *tasks: dict[str, Any], start_error: ClientError | None = None, lost_race: bool = False) -> None:
        self.tasks = {task["ExportTaskIdentifier"]: task for task in tasks}
        self.start_error = start_error
        self.lost_race = lost_race

    def describe_export_tasks(self, ExportTaskIdentifier: str | None = None, Filters: Any = None) -> dict[str, Any]:
        tasks = list(self.tasks.values())
        if ExportTaskIdentifier is not None:
            if ExportTaskIdentifier not in self.tasks:
                raise _client_error("ExportTaskNotFound", "not found", "DescribeExportTasks")
            tasks = [self.tasks[ExportTaskIdentifier]]
        for filter_ in Filters or []:
            if filter_["Name"] == "status":
                tasks = [t for t in tasks if t["Status"].lower() in filter_["Values"]]
        return {"ExportTasks": tasks}

    def get_paginator(self, name: str) -> _Paginator:
        assert name == "describe_export_tasks"
        return _Paginator(self.describe_export_tasks)

    def start_export_task(self, **params: Any) -> dict[str, Any]:
        task = {
            "ExportTaskIdentifier": params["ExportTaskIdentifier"],
            "SourceArn": params["SourceArn"],
            "S3Bucket": params["S3BucketName"],
            "S3Prefix": params.get("S3Prefix", ""),
            "Status": "STARTING",
            "PercentProgress": 0,
        }
        if self.lost_race:  # another delivery started the same task a moment earlier
            self.tasks[task["ExportTaskIdentifier"]] = {**task, "Status": "IN_PROGRESS", "PercentProgress": 3}
            raise _client_error("ExportTaskAlreadyExists", "already exists")
        if self.start_error is not None:
            raise self.start_error
        self.tasks[task["ExportTaskIdentifier"]] = task
        return task


def _task(identifier: str, status: str, **extra: Any) -> dict[str, Any]:
    return {
        "ExportTaskIdentifier": identifier,
        "SourceArn": f"{_BASE}:snapshot:{identifier}",
        "S3Bucket": "snaplake-exports",
        "S3Prefix": "exports/rds",
        "Status": status,
        **extra,
    }


def test_active_export_count_counts_starting_in_progress_and_canceling_tasks() -> None:
    rds = FakeRds(
        _task("a", "STARTING"),
        _task("b", "IN_PROGRESS"),
        _task("c", "CANCELING"),
        _task("d", "COMPLETE"),
        _task("e", "FAILED"),
        _task("f", "CANCELED"),
    )

    assert active_export_count(rds) == 3


def test_five_active_exports_is_export_slots_busy() -> None:
    rds = FakeRds(*[_task(f"busy-{i}", "IN_PROGRESS") for i in range(MAX_CONCURRENT_EXPORTS)])

    with pytest.raises(ExportSlotsBusy):
        start_export(rds, {"snapshotArn": CLUSTER_SNAPSHOT_ARN}, SETTINGS)

    assert export_task_identifier(CLUSTER_SNAPSHOT_ARN) not in rds.tasks


def test_four_active_exports_leave_a_slot_free() -> None:
    rds = FakeRds(*[_task(f"busy-{i}", "IN_PROGRESS") for i in range(MAX_CONCURRENT_EXPORTS - 1)], _task("done", "COMPLETE"))

    result = start_export(rds, {"snapshotArn": CLUSTER_SNAPSHOT_ARN}, SETTINGS)

    assert result["status"] == "STARTING"
    assert result["reused"] is False


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("ExportTaskLimitExceeded", "Too many export tasks"),
        ("InvalidParameterCombination", "You have exceeded the quota for concurrent snapshot export tasks"),
    ],
)
def test_start_refused_for_quota_is_export_slots_busy(code: str, message: str) -> None:
    rds = FakeRds(start_error=_client_error(code, message))

    with pytest.raises(ExportSlotsBusy):
        start_export(rds, {"snapshotArn": CLUSTER_SNAPSHOT_ARN}, SETTINGS)


def test_start_refused_for_another_reason_surfaces_the_client_error() -> None:
    rds = FakeRds(start_error=_client_error("IamRoleNotFound", "role snaplake-export not found"))

    with pytest.raises(ClientError) as raised:
        start_export(rds, {"snapshotArn": CLUSTER_SNAPSHOT_ARN}, SETTINGS)

    assert raised.value.response["Error"]["Code"] == "IamRoleNotFound"


def test_start_that_loses_a_race_reuses_the_task_the_other_delivery_started() -> None:
    rds = FakeRds(lost_race=True)

    result = start_export(rds, {"snapshotArn": CLUSTER_SNAPSHOT_ARN}, SETTINGS)

    assert result["reused"] is True
    assert result["status"] == "IN_PROGRESS"
    assert result["exportTaskIdentifier"] == export_task_identifier(CLUSTER_SNAPSHOT_ARN)


def _poll(*tasks: dict[str, Any], polls: int = 0) -> dict[str, Any]:
    return poll_export(FakeRds(*tasks), {"exportTaskIdentifier": tasks[0]["ExportTaskIdentifier"], "polls": polls})


def test_failed_export_is_export_failed_carrying_the_failure_cause() -> None:
    cause = "The S3 bucket snaplake-exports isn't located in the current AWS Region."

    with pytest.raises(ExportFailed, match="isn't located in the current AWS Region"):
        _poll(_task("sl-x-0123456789", "FAILED", FailureCause=cause))


def test_failed_export_without_cause_is_still_export_failed() -> None:
    with pytest.raises(ExportFailed):
        _poll(_task("sl-x-0123456789", "FAILED"))


@pytest.mark.parametrize("status", ["CANCELED", "CANCELING", "canceled"])
def test_canceled_export_is_export_canceled(status: str) -> None:
    with pytest.raises(ExportCanceled):
        _poll(_task("sl-x-0123456789", status))


@pytest.mark.parametrize("status", ["STARTING", "IN_PROGRESS"])
def test_running_export_is_not_done_and_reports_progress(status: str) -> None:
    polled = _poll(_task("sl-x-0123456789", status, PercentProgress=42))

    assert polled["done"] is False
    assert polled["status"] == status
    assert polled["percentProgress"] == 42
    assert polled["exportRoot"] == "exports/rds/sl-x-0123456789/"


def test_poll_waits_longer_after_the_first_polls() -> None:
    early = _poll(_task("sl-x-0123456789", "IN_PROGRESS"), polls=0)
    late = _poll(_task("sl-x-0123456789", "IN_PROGRESS"), polls=10)

    assert early["polls"] == 1
    assert late["polls"] == 11
    assert late["waitSeconds"] > early["waitSeconds"]


def test_warning_message_json_is_parsed_into_warnings() -> None:
    warning = {"skippedTables": [], "skippedObjectives": [], "general": [{"reason": "FAILED_TO_EXTRACT_TABLES_LIST_FOR_DATABASE"}]}

    polled = _poll(_task("sl-x-0123456789", "COMPLETE", PercentProgress=100, WarningMessage=json.dumps(warning)))

    assert polled["done"] is True
    assert polled["warnings"] == warning


def test_warning_message_that_is_not_json_is_kept_as_a_general_reason() -> None:
    polled = _poll(_task("sl-x-0123456789", "COMPLETE", WarningMessage="Some tables were skipped"))

    assert polled["warnings"] == {"general": [{"reason": "Some tables were skipped"}]}


# ---------------------------------------------------------------- ExportPrefix (issue 11, case 16)

EXPORT_ENV = {
    "EXPORT_BUCKET": "snaplake-exports",
    "EXPORT_ROLE_ARN": "arn:aws:iam::123456789012:role/export",
    "EXPORT_KMS_KEY_ARN": "arn:aws:kms:eu-west-1:123456789012:key/k",
}


@pytest.mark.parametrize("prefix", ["x" * 61, "exports/" + "y" * 53, "rds:exports", "with space", "exports/`x`", 'a"b'])
def test_export_prefix_rds_would_refuse_or_rewrite_is_a_config_error_at_start(prefix: str) -> None:
    """S3Prefix: at most 60 characters (observed, aws-formats.md 2.1), no ':'; RDS rewrites space, backtick, quote, backslash."""
    with pytest.raises(ConfigError, match="EXPORT_PREFIX"):
        ExportSettings.from_env({**EXPORT_ENV, "EXPORT_PREFIX": prefix})


@pytest.mark.parametrize("prefix", ["", "exports", "x" * 60, "team-a/rds_exports/v=1.0"])
def test_export_prefix_within_the_limits_is_accepted(prefix: str) -> None:
    assert ExportSettings.from_env({**EXPORT_ENV, "EXPORT_PREFIX": prefix}).prefix == prefix


def test_template_export_prefix_parameter_has_the_same_limits() -> None:
    """Refused at deploy time already: CloudFormation checks MaxLength and AllowedPattern before anything is created."""
    parameter = template()["Parameters"]["ExportPrefix"]
    assert int(parameter["MaxLength"]) == EXPORT_PREFIX_MAX_CHARS
    for prefix in ("exports", "x" * 60, "team-a/rds_exports/v=1.0"):
        assert re.fullmatch(parameter["AllowedPattern"], prefix)
    for prefix in ("a:b", "a b", "/exports", "exports/", "a//b"):
        assert not re.fullmatch(parameter["AllowedPattern"], prefix)
