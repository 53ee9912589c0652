"""DynamoDB exports: request parsing, window planning, starting once, polling, the checkpoint.

AWS behaviour comes from snaplake_local.emulator.DynamoDbExportEmulator (PITR windows on a
virtual clock, ExportTableToPointInTime validation, DescribeExport progress); the checkpoint
table is a plain moto table.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from snaplake.core.errors import ConfigError, ExportFailed, ExportNotFound, InvalidEvent
from snaplake.core.times import iso_utc
from snaplake.dynamodb.checkpoint import (
    LEASE_SECONDS,
    PublishingExport,
    abandon_commit,
    claim_export_lease,
    commit_checkpoint,
    load_checkpoint,
    load_export_state,
    mark_publishing,
    release_export_lease,
    resume_publishing_export,
)
from snaplake.dynamodb.errors import DynamoDbExportsBusy, ExportLeaseLost, PitrDisabled, WindowOutsidePitr
from snaplake.dynamodb.export import (
    MAX_WINDOW,
    Checkpoint,
    ExportPlan,
    execution_name,
    parse_request,
    plan_next_export,
    poll_export,
    start_export,
)
from snaplake.dynamodb.settings import DynamoDbExportSettings
from snaplake_local.emulator import DynamoDbExportEmulator, VirtualClock

from tests.unit.helpers import ACCOUNT, REGION

START = datetime(2024, 5, 1, 0, 0, tzinfo=UTC)
TABLE = "Orders"
TABLE_ARN = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{TABLE}"
OTHER_TABLE_ARN = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/Customers"
CHECKPOINTS = "snaplake-dynamodb-checkpoints"
BUCKET = "snaplake-exports"
KMS_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/11111111-2222-3333-4444-555555555555"
SETTINGS = DynamoDbExportSettings(
    bucket=BUCKET, prefix="dynamodb-exports", bucket_owner=None, kms_key_arn=None, checkpoint_table=CHECKPOINTS
)
SEED_EXPORT_ARN = f"{TABLE_ARN}/export/01714521600000-00000000"
LAG = DynamoDbExportEmulator.LATEST_RESTORABLE_LAG


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


# ---------------------------------------------------------------- fixtures and helpers


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(START)


@pytest.fixture
def emu(aws: None, clock: VirtualClock) -> Iterator[DynamoDbExportEmulator]:
    emulator = DynamoDbExportEmulator(clock)
    with emulator.patched():
        yield emulator


@pytest.fixture(scope="module")
def clients() -> tuple[Any, Any]:
    """(dynamodb, s3) clients, made once: creating a client is the slow part, and each test's
    mock_aws() still intercepts them with fresh backends."""
    return boto3.client("dynamodb", region_name=REGION), boto3.client("s3", region_name=REGION)


@pytest.fixture
def s3_client(clients: tuple[Any, Any]) -> Any:
    return clients[1]


@pytest.fixture
def ddb(emu: DynamoDbExportEmulator, clients: tuple[Any, Any]) -> Any:
    """A DynamoDB client with the checkpoint table, the source table (PITR off) and the export bucket."""
    client, s3 = clients
    client.create_table(
        TableName=CHECKPOINTS,
        KeySchema=[{"AttributeName": "tableArn", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "tableArn", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for name in (TABLE, "Customers"):
        client.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    return client


@pytest.fixture
def pitr(ddb: Any) -> Any:
    """The same client, with PITR enabled on the source table at START."""
    set_pitr(ddb, True)
    return ddb


def set_pitr(ddb: Any, enabled: bool, table: str = TABLE) -> None:
    ddb.update_continuous_backups(TableName=table, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": enabled})


def restorable(ddb: Any) -> tuple[datetime, datetime]:
    """(earliest, latest) restorable times as DescribeContinuousBackups reports them."""
    pitr = ddb.describe_continuous_backups(TableName=TABLE)["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
    return pitr["EarliestRestorableDateTime"].astimezone(UTC), pitr["LatestRestorableDateTime"].astimezone(UTC)


def checkpoint_at(ddb: Any, when: datetime, table_arn: str = TABLE_ARN) -> Checkpoint:
    assert commit_checkpoint(ddb, CHECKPOINTS, table_arn, when, SEED_EXPORT_ARN, "FULL_EXPORT")
    loaded = load_checkpoint(ddb, CHECKPOINTS, table_arn)
    assert loaded is not None
    return loaded


def checkpoint_item(ddb: Any, table_arn: str = TABLE_ARN) -> dict[str, Any] | None:
    item = ddb.get_item(TableName=CHECKPOINTS, Key={"tableArn": {"S": table_arn}}, ConsistentRead=True).get("Item")
    return None if item is None else {name: value.get("S", value) for name, value in item.items()}


def described(ddb: Any, export_arn: str) -> dict[str, Any]:
    description: dict[str, Any] = ddb.describe_export(ExportArn=export_arn)["ExportDescription"]
    return description


def request_params(emu: DynamoDbExportEmulator, export_arn: str) -> dict[str, Any]:
    """The ExportTableToPointInTime parameters (without ClientToken) the emulator received."""
    params: dict[str, Any] = json.loads(emu.exports[export_arn].params)
    return params


def full_plan(when: datetime, table_arn: str = TABLE_ARN) -> ExportPlan:
    return ExportPlan(table_arn, "FULL_EXPORT", export_time=when)


def incremental_plan(start: datetime, end: datetime, table_arn: str = TABLE_ARN) -> ExportPlan:
    return ExportPlan(table_arn, "INCREMENTAL_EXPORT", window_from=start, window_to=end)


class RefusingDynamoDb:
    """Stands in for the DynamoDB client: every ExportTableToPointInTime fails with `code`."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        self.calls: list[dict[str, Any]] = []

    def list_exports(self, **params: Any) -> dict[str, Any]:
        return {"ExportSummaries": []}

    def export_table_to_point_in_time(self, **params: Any) -> dict[str, Any]:
        self.calls.append(params)
        raise ClientError({"Error": {"Code": self.code, "Message": self.message}}, "ExportTableToPointInTime")


# ---------------------------------------------------------------- parse_request


def test_parse_request_returns_the_table_arn_and_defaults_to_auto_mode() -> None:
    assert parse_request({"tableArn": TABLE_ARN}) == (TABLE_ARN, "auto")


@pytest.mark.parametrize("mode", ["auto", "full", "incremental"])
def test_parse_request_accepts_each_mode(mode: str) -> None:
    assert parse_request({"tableArn": TABLE_ARN, "mode": mode}) == (TABLE_ARN, mode)


@pytest.mark.parametrize(
    "table_arn",
    [
        "arn:aws-cn:dynamodb:cn-north-1:123456789012:table/Orders",
        "arn:aws-us-gov:dynamodb:us-gov-west-1:123456789012:table/orders.v2_prod-1",
    ],
)
def test_parse_request_accepts_table_arns_of_other_partitions(table_arn: str) -> None:
    assert parse_request({"tableArn": table_arn}) == (table_arn, "auto")


@pytest.mark.parametrize(
    "table_arn",
    [
        pytest.param("Orders", id="bare-table-name"),
        pytest.param("", id="empty"),
        pytest.param("arn:aws:s3:::snaplake-exports", id="s3-bucket-arn"),
        pytest.param(f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/", id="arn-without-table-name"),
        pytest.param(f"{TABLE_ARN}/stream/2024-05-01T00:00:00.000", id="stream-arn"),
        pytest.param(f"{TABLE_ARN}/index/ByCustomer", id="index-arn"),
        pytest.param(f"{TABLE_ARN}/export/01714521600000-a1b2c3d4", id="export-arn"),
        pytest.param(
            f"aws:dynamodb:{REGION}:{ACCOUNT}:table/Orders",
            id="missing-arn-prefix",
        ),
    ],
)
def test_parse_request_rejects_a_table_arn_that_is_not_a_dynamodb_table_arn(table_arn: str) -> None:
    with pytest.raises(InvalidEvent, match="tableArn"):
        parse_request({"tableArn": table_arn})


@pytest.mark.parametrize(
    "table_arn",
    [None, [TABLE_ARN], {"arn": TABLE_ARN}, 42, b"arn:aws:dynamodb:eu-west-1:123456789012:table/Orders"],
    ids=["null", "list", "object", "number", "bytes"],
)
def test_parse_request_rejects_a_table_arn_that_is_not_a_string(table_arn: Any) -> None:
    with pytest.raises(InvalidEvent, match="tableArn"):
        parse_request({"tableArn": table_arn})


def test_parse_request_rejects_a_missing_table_arn() -> None:
    with pytest.raises(InvalidEvent, match="tableArn"):
        parse_request({"mode": "full"})


@pytest.mark.parametrize("mode", ["FULL", "", "delta", None, ["auto"], {"mode": "auto"}, 1], ids=repr)
def test_parse_request_rejects_an_unknown_mode(mode: Any) -> None:
    with pytest.raises(InvalidEvent, match="mode"):
        parse_request({"tableArn": TABLE_ARN, "mode": mode})


@pytest.mark.parametrize("event", [None, [], [{"tableArn": TABLE_ARN}], "tableArn", 7], ids=repr)
def test_parse_request_rejects_an_event_that_is_not_an_object(event: Any) -> None:
    with pytest.raises(InvalidEvent, match="JSON object"):
        parse_request(event)


# ---------------------------------------------------------------- plan_next_export


def test_first_run_without_checkpoint_is_a_full_export_at_the_latest_restorable_second(pitr: Any, clock: VirtualClock) -> None:
    clock.advance(3600.75)  # latest restorable = 00:55:00.75
    _, latest = restorable(pitr)

    plan = plan_next_export(pitr, TABLE_ARN, "auto", None)

    assert latest == START + minutes(55) + timedelta(microseconds=750_000)
    assert plan == ExportPlan(TABLE_ARN, "FULL_EXPORT", export_time=START + minutes(55))
    assert plan.export_time is not None and plan.export_time.microsecond == 0
    assert plan.exported_to == START + minutes(55)


def test_full_mode_is_a_full_export_even_when_a_checkpoint_exists(pitr: Any, clock: VirtualClock) -> None:
    clock.advance(2 * 3600)
    checkpoint = checkpoint_at(pitr, START + minutes(10))

    plan = plan_next_export(pitr, TABLE_ARN, "full", checkpoint)

    assert plan == ExportPlan(TABLE_ARN, "FULL_EXPORT", export_time=START + minutes(115))


@pytest.mark.parametrize("mode", ["auto", "incremental"])
def test_incremental_window_starts_at_the_checkpoint_and_ends_at_the_last_whole_hour_restorable(
    pitr: Any, clock: VirtualClock, mode: Any
) -> None:
    clock.advance(2 * 3600 + 0.4)  # latest restorable: 01:55
    checkpoint = checkpoint_at(pitr, START + minutes(10))

    plan = plan_next_export(pitr, TABLE_ARN, mode, checkpoint)

    assert plan == incremental_plan(START + minutes(10), START + minutes(60))
    assert plan.exported_to == START + minutes(60)


def test_incremental_window_is_at_most_24_hours_and_ends_on_the_hour(pitr: Any, clock: VirtualClock) -> None:
    clock.advance(30 * 3600)
    checkpoint = checkpoint_at(pitr, START + minutes(10))

    plan = plan_next_export(pitr, TABLE_ARN, "auto", checkpoint)

    assert plan == incremental_plan(START + minutes(10), START + MAX_WINDOW)


def test_less_than_15_minutes_from_the_checkpoint_to_the_last_whole_hour_plans_nothing(pitr: Any, clock: VirtualClock) -> None:
    clock.advance(3600 + 20 * 60)
    _, latest = restorable(pitr)
    assert latest == START + minutes(75)
    checkpoint = checkpoint_at(pitr, START + minutes(45) + timedelta(seconds=1))

    assert plan_next_export(pitr, TABLE_ARN, "auto", checkpoint) is None
    assert plan_next_export(pitr, TABLE_ARN, "incremental", checkpoint) is None


def test_exactly_15_minutes_to_the_last_whole_hour_is_a_window_aws_accepts(pitr: Any, clock: VirtualClock) -> None:
    clock.advance(3600 + 20 * 60)
    checkpoint = checkpoint_at(pitr, START + minutes(45))

    plan = plan_next_export(pitr, TABLE_ARN, "auto", checkpoint)

    assert plan == incremental_plan(START + minutes(45), START + minutes(60))
    assert start_export(pitr, plan, SETTINGS)["status"] == "IN_PROGRESS"


def test_a_checkpoint_less_than_15_minutes_before_the_hour_waits_for_the_next_hour(pitr: Any, clock: VirtualClock) -> None:
    """The first window after a full export at 00:50 cannot end at 01:00 (10 minutes): it ends at 02:00."""
    checkpoint = checkpoint_at(pitr, START + minutes(50))
    clock.advance(2 * 3600 + 4 * 60)  # latest restorable 01:59
    assert plan_next_export(pitr, TABLE_ARN, "auto", checkpoint) is None
    clock.advance(60)  # 02:00

    assert plan_next_export(pitr, TABLE_ARN, "auto", checkpoint) == incremental_plan(START + minutes(50), START + minutes(120))


def test_a_three_day_backlog_is_exported_in_consecutive_24_hour_windows(pitr: Any, clock: VirtualClock) -> None:
    clock.advance(10 * 60)
    full = plan_next_export(pitr, TABLE_ARN, "auto", None)
    assert full is not None and full.export_type == "FULL_EXPORT"
    started = start_export(pitr, full, SETTINGS)
    assert commit_checkpoint(pitr, CHECKPOINTS, TABLE_ARN, full.exported_to, started["exportArn"], full.export_type)
    clock.advance(3 * 24 * 3600)

    windows: list[tuple[datetime | None, datetime | None]] = []
    export_arns: set[str] = set()
    for _ in range(10):
        plan = plan_next_export(pitr, TABLE_ARN, "auto", load_checkpoint(pitr, CHECKPOINTS, TABLE_ARN))
        if plan is None:
            break
        assert plan.export_type == "INCREMENTAL_EXPORT"
        started = start_export(pitr, plan, SETTINGS)  # the emulator checks each window against AWS's rules
        export_arns.add(started["exportArn"])
        windows.append((plan.window_from, plan.window_to))
        assert commit_checkpoint(pitr, CHECKPOINTS, TABLE_ARN, plan.exported_to, started["exportArn"], plan.export_type)

    assert windows == [(START + minutes(5), START + MAX_WINDOW)] + [(START + i * MAX_WINDOW, START + (i + 1) * MAX_WINDOW) for i in (1, 2)]
    assert len(export_arns) == 3
    assert checkpoint_item(pitr) is not None
    assert checkpoint_item(pitr)["exportedTo"] == "2024-05-04T00:00:00Z"  # type: ignore[index]


def test_checkpoint_before_the_earliest_restorable_time_asks_for_a_full_export(pitr: Any, clock: VirtualClock) -> None:
    clock.advance(3600)
    checkpoint = checkpoint_at(pitr, START + minutes(30))
    set_pitr(pitr, False)
    clock.advance(2 * 3600)
    set_pitr(pitr, True)  # PITR re-enabled at 03:00: the changes between 00:30 and 03:00 are gone
    clock.advance(3600)

    with pytest.raises(WindowOutsidePitr) as raised:
        plan_next_export(pitr, TABLE_ARN, "auto", checkpoint)

    message = str(raised.value)
    assert "2024-05-01T00:30:00Z" in message and "2024-05-01T03:00:00Z" in message
    assert "run a full export" in message and "'mode': 'full'" in message
    # ... and doing what it says works: a full export from the new PITR window.
    recovery = plan_next_export(pitr, TABLE_ARN, "full", checkpoint)
    assert recovery == full_plan(START + minutes(235))
    assert start_export(pitr, recovery, SETTINGS)["status"] == "IN_PROGRESS"


def test_checkpoint_exactly_at_the_earliest_restorable_time_is_inside_the_window(pitr: Any, clock: VirtualClock) -> None:
    clock.advance(2 * 3600)
    checkpoint = checkpoint_at(pitr, START)

    plan = plan_next_export(pitr, TABLE_ARN, "auto", checkpoint)

    assert plan == incremental_plan(START, START + minutes(60))
    assert start_export(pitr, plan, SETTINGS)["status"] == "IN_PROGRESS"


@pytest.mark.parametrize("mode", ["auto", "full", "incremental"])
@pytest.mark.parametrize("has_checkpoint", [False, True], ids=["no-checkpoint", "checkpoint"])
def test_pitr_disabled_raises_pitr_disabled_saying_how_to_enable_it(ddb: Any, clock: VirtualClock, mode: Any, has_checkpoint: bool) -> None:
    clock.advance(3600)
    checkpoint = checkpoint_at(ddb, START) if has_checkpoint else None

    with pytest.raises(PitrDisabled) as raised:
        plan_next_export(ddb, TABLE_ARN, mode, checkpoint)

    message = str(raised.value)
    assert TABLE in message
    assert "PointInTimeRecoveryEnabled=true" in message and "run a full export" in message


def test_pitr_turned_off_after_exports_raises_pitr_disabled(pitr: Any, clock: VirtualClock) -> None:
    clock.advance(3600)
    checkpoint = checkpoint_at(pitr, START + minutes(10))
    set_pitr(pitr, False)

    with pytest.raises(PitrDisabled, match="not enabled"):
        plan_next_export(pitr, TABLE_ARN, "auto", checkpoint)


def test_incremental_mode_without_a_checkpoint_asks_for_a_full_export(pitr: Any, clock: VirtualClock) -> None:
    clock.advance(3600)

    with pytest.raises(WindowOutsidePitr) as raised:
        plan_next_export(pitr, TABLE_ARN, "incremental", None)

    assert "no checkpoint" in str(raised.value) and "'mode': 'full'" in str(raised.value)


def test_full_export_planned_right_after_pitr_was_enabled_lies_inside_the_pitr_window(ddb: Any, clock: VirtualClock) -> None:
    clock.advance(0.5)
    set_pitr(ddb, True)  # earliest restorable 00:00:00.5
    clock.advance(60)  # latest restorable is still 00:00:00.5 (now - 5 min is earlier)
    earliest, latest = restorable(ddb)

    plan = plan_next_export(ddb, TABLE_ARN, "auto", None)

    assert plan is None or (plan.export_time is not None and earliest <= plan.export_time <= latest)


# ---------------------------------------------------------------- ExportPlan.client_token

TOKEN_PLANS = [
    full_plan(START),
    full_plan(START + timedelta(seconds=1)),
    full_plan(START, table_arn=OTHER_TABLE_ARN),
    incremental_plan(START, START + minutes(15)),
    incremental_plan(START, START + minutes(16)),
    incremental_plan(START + minutes(1), START + minutes(16)),
    incremental_plan(START, START + minutes(15), table_arn=OTHER_TABLE_ARN),
    incremental_plan(START, START + MAX_WINDOW, table_arn=f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{'t' * 255}"),
]


def test_client_token_is_the_same_for_the_same_table_and_window() -> None:
    for plan in TOKEN_PLANS:
        again = ExportPlan(plan.table_arn, plan.export_type, plan.export_time, plan.window_from, plan.window_to)
        assert again.client_token == plan.client_token


def test_client_token_differs_between_windows_tables_and_export_types() -> None:
    tokens = [plan.client_token for plan in TOKEN_PLANS]
    assert len(set(tokens)) == len(tokens)


@pytest.mark.parametrize("plan", TOKEN_PLANS, ids=lambda plan: f"{plan.export_type}-{plan.window_to or plan.export_time}")
def test_client_token_matches_the_client_token_pattern_and_length(plan: ExportPlan) -> None:
    token = plan.client_token
    assert re.fullmatch(r"[^$]+", token)
    assert 1 <= len(token) <= 64


def test_replanning_the_same_window_gives_the_same_client_token(pitr: Any, clock: VirtualClock) -> None:
    clock.advance(30 * 3600)
    checkpoint = checkpoint_at(pitr, START + minutes(10))

    first = plan_next_export(pitr, TABLE_ARN, "auto", checkpoint)
    again = plan_next_export(pitr, TABLE_ARN, "auto", load_checkpoint(pitr, CHECKPOINTS, TABLE_ARN))

    assert first is not None and again is not None
    assert first.client_token == again.client_token


# ---------------------------------------------------------------- start_export


def test_start_full_export_starts_it_and_returns_the_poll_state(pitr: Any, emu: DynamoDbExportEmulator, clock: VirtualClock) -> None:
    clock.advance(3600)
    plan = full_plan(START + minutes(55))

    state = start_export(pitr, plan, SETTINGS)

    assert state["exportArn"].startswith(f"{TABLE_ARN}/export/")
    assert state == {
        "tableArn": TABLE_ARN,
        "exportArn": state["exportArn"],
        "exportType": "FULL_EXPORT",
        "exportedTo": "2024-05-01T00:55:00Z",
        "windowFrom": None,
        "status": "IN_PROGRESS",
        "done": False,
        "waitSeconds": 60,
        "polls": 0,
    }
    export = described(pitr, state["exportArn"])
    assert export["ExportType"] == "FULL_EXPORT"
    assert export["ExportTime"].astimezone(UTC) == START + minutes(55)
    assert export["ExportFormat"] == "DYNAMODB_JSON"
    assert export["S3Bucket"] == BUCKET
    assert export["ClientToken"] == plan.client_token
    assert "S3SseAlgorithm" not in request_params(emu, state["exportArn"])


def test_start_incremental_export_exports_new_and_old_images_of_the_window(
    pitr: Any, emu: DynamoDbExportEmulator, clock: VirtualClock
) -> None:
    clock.advance(3600)
    plan = incremental_plan(START + minutes(10), START + minutes(55))

    state = start_export(pitr, plan, SETTINGS)

    assert state["exportType"] == "INCREMENTAL_EXPORT"
    assert state["windowFrom"] == "2024-05-01T00:10:00Z"
    assert state["exportedTo"] == "2024-05-01T00:55:00Z"
    assert state["status"] == "IN_PROGRESS" and state["done"] is False
    spec = described(pitr, state["exportArn"])["IncrementalExportSpecification"]
    assert spec["ExportFromTime"].astimezone(UTC) == START + minutes(10)
    assert spec["ExportToTime"].astimezone(UTC) == START + minutes(55)
    requested = request_params(emu, state["exportArn"])
    assert requested["ExportType"] == "INCREMENTAL_EXPORT"
    assert requested["IncrementalExportSpecification"]["ExportViewType"] == "NEW_AND_OLD_IMAGES"
    assert "ExportTime" not in requested


@pytest.mark.parametrize(
    "plan",
    [full_plan(START + minutes(55)), incremental_plan(START + minutes(10), START + minutes(55))],
    ids=["full", "incremental"],
)
def test_starting_the_same_plan_twice_returns_the_same_export(
    pitr: Any, emu: DynamoDbExportEmulator, clock: VirtualClock, plan: ExportPlan
) -> None:
    clock.advance(3600)

    first = start_export(pitr, plan, SETTINGS)
    clock.advance(30)
    second = start_export(pitr, plan, SETTINGS)

    assert second["exportArn"] == first["exportArn"]
    assert list(emu.exports) == [first["exportArn"]]


@pytest.mark.parametrize(
    ("env_prefix", "s3_prefix"),
    [(None, "dynamodb-exports/Orders"), ("/lake/raw/ddb/", "lake/raw/ddb/Orders"), ("", "Orders")],
    ids=["default", "nested", "empty"],
)
def test_s3_prefix_is_the_configured_prefix_then_the_table_name(
    pitr: Any, emu: DynamoDbExportEmulator, clock: VirtualClock, env_prefix: str | None, s3_prefix: str
) -> None:
    env = {"EXPORT_BUCKET": BUCKET, "CHECKPOINT_TABLE": CHECKPOINTS}
    if env_prefix is not None:
        env["DYNAMODB_EXPORT_PREFIX"] = env_prefix
    clock.advance(3600)

    state = start_export(pitr, full_plan(START + minutes(55)), DynamoDbExportSettings.from_env(env))

    assert described(pitr, state["exportArn"])["S3Prefix"] == s3_prefix
    assert request_params(emu, state["exportArn"])["S3Prefix"] == s3_prefix


def test_kms_key_and_bucket_owner_are_passed_to_the_export(pitr: Any, emu: DynamoDbExportEmulator, clock: VirtualClock) -> None:
    settings = DynamoDbExportSettings(BUCKET, "dynamodb-exports", bucket_owner=ACCOUNT, kms_key_arn=KMS_KEY, checkpoint_table=CHECKPOINTS)
    clock.advance(3600)

    state = start_export(pitr, incremental_plan(START + minutes(10), START + minutes(55)), settings)

    params = request_params(emu, state["exportArn"])
    assert params["S3SseAlgorithm"] == "KMS"
    assert params["S3SseKmsKeyId"] == KMS_KEY
    assert params["S3BucketOwner"] == ACCOUNT
    assert params["S3Bucket"] == BUCKET


def test_start_export_after_pitr_was_turned_off_raises_pitr_disabled(pitr: Any, clock: VirtualClock) -> None:
    clock.advance(3600)
    plan = plan_next_export(pitr, TABLE_ARN, "auto", None)
    assert plan is not None
    set_pitr(pitr, False)

    with pytest.raises(PitrDisabled, match="Point in time recovery is not enabled"):
        start_export(pitr, plan, SETTINGS)


@pytest.mark.parametrize(
    "plan",
    [
        incremental_plan(START + minutes(30), START + minutes(90)),  # starts before PITR was re-enabled at 01:00
        full_plan(START + minutes(50)),
        full_plan(START + minutes(179)),  # after the latest restorable time
    ],
    ids=["incremental-before-earliest", "full-before-earliest", "full-after-latest"],
)
def test_start_export_outside_the_pitr_window_raises_window_outside_pitr(pitr: Any, clock: VirtualClock, plan: ExportPlan) -> None:
    set_pitr(pitr, False)
    clock.advance(3600)
    set_pitr(pitr, True)
    clock.advance(2 * 3600)

    with pytest.raises(WindowOutsidePitr) as raised:
        start_export(pitr, plan, SETTINGS)

    assert TABLE_ARN in str(raised.value) and "full export" in str(raised.value)


def test_export_limit_exceeded_raises_dynamodb_exports_busy() -> None:
    refusing = RefusingDynamoDb("LimitExceededException", "Too many concurrent exports")

    with pytest.raises(DynamoDbExportsBusy, match="Too many concurrent exports"):
        start_export(refusing, full_plan(START), SETTINGS)

    assert refusing.calls[0]["ClientToken"] == full_plan(START).client_token


@pytest.mark.parametrize("code", ["InternalServerError", "AccessDeniedException", "ValidationException"])
def test_other_client_errors_from_start_propagate_unchanged(code: str) -> None:
    with pytest.raises(ClientError) as raised:
        start_export(RefusingDynamoDb(code, "no"), full_plan(START), SETTINGS)

    assert raised.value.response["Error"]["Code"] == code


def test_start_export_of_a_missing_table_propagates_table_not_found(pitr: Any, clock: VirtualClock) -> None:
    clock.advance(3600)
    missing = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/Missing"

    with pytest.raises(ClientError) as raised:
        start_export(pitr, full_plan(START + minutes(55), table_arn=missing), SETTINGS)

    assert raised.value.response["Error"]["Code"] == "TableNotFoundException"


def test_reusing_a_client_token_with_other_settings_propagates_export_conflict(pitr: Any, clock: VirtualClock) -> None:
    clock.advance(3600)
    plan = full_plan(START + minutes(55))
    start_export(pitr, plan, SETTINGS)
    clock.advance(3600)  # finished: a running export would be adopted instead
    moved = DynamoDbExportSettings(BUCKET, "other-prefix", None, None, CHECKPOINTS)

    with pytest.raises(ClientError) as raised:
        start_export(pitr, plan, moved)

    assert raised.value.response["Error"]["Code"] == "ExportConflictException"


# ---------------------------------------------------------------- poll_export


@pytest.fixture
def started(pitr: Any, clock: VirtualClock) -> dict[str, Any]:
    """A full export of three items, just started (IN_PROGRESS)."""
    clock.advance(60)
    for index in range(3):
        pitr.put_item(TableName=TABLE, Item={"pk": {"S": f"ORDER#{index}"}, "total": {"N": str(index)}})
    clock.advance(3600)
    plan = plan_next_export(pitr, TABLE_ARN, "auto", None)
    assert plan is not None
    return start_export(pitr, plan, SETTINGS)


def test_poll_of_a_running_export_is_not_done(pitr: Any, emu: DynamoDbExportEmulator, clock: VirtualClock, started: dict[str, Any]) -> None:
    clock.advance(emu.export_seconds - 1)

    state = poll_export(pitr, started)

    assert state["status"] == "IN_PROGRESS"
    assert state["done"] is False
    assert state["polls"] == 1
    assert state["waitSeconds"] == 60
    assert {k: state[k] for k in ("tableArn", "exportArn", "exportType", "exportedTo")} == {
        k: started[k] for k in ("tableArn", "exportArn", "exportType", "exportedTo")
    }


def test_poll_of_a_completed_export_is_done_with_bucket_and_manifest(
    pitr: Any, s3_client: Any, emu: DynamoDbExportEmulator, clock: VirtualClock, started: dict[str, Any]
) -> None:
    assert poll_export(pitr, started)["done"] is False
    clock.advance(emu.export_seconds)

    state = poll_export(pitr, started)

    assert state["status"] == "COMPLETED"
    assert state["done"] is True
    assert state["bucket"] == BUCKET
    assert state["itemCount"] == 3
    key = state["manifestSummaryKey"]
    assert key.startswith("dynamodb-exports/Orders/AWSDynamoDB/") and key.endswith("/manifest-summary.json")
    summary = json.loads(s3_client.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    assert summary["exportArn"] == started["exportArn"]
    assert summary["itemCount"] == 3


def test_poll_of_a_failed_export_raises_export_failed_with_code_and_message(
    pitr: Any, emu: DynamoDbExportEmulator, clock: VirtualClock
) -> None:
    emu.fail_next_export(TABLE, "S3AccessDenied", "Access denied to bucket snaplake-exports")
    clock.advance(3600)
    state = start_export(pitr, full_plan(START + minutes(55)), SETTINGS)
    assert poll_export(pitr, state)["status"] == "IN_PROGRESS"
    clock.advance(emu.export_seconds)

    with pytest.raises(ExportFailed) as raised:
        poll_export(pitr, state)

    message = str(raised.value)
    assert state["exportArn"] in message
    assert "S3AccessDenied" in message and "Access denied to bucket snaplake-exports" in message


def test_poll_of_an_unknown_export_raises_export_not_found(pitr: Any) -> None:
    unknown = f"{TABLE_ARN}/export/01714521600000-deadbeef"

    with pytest.raises(ExportNotFound, match="01714521600000-deadbeef"):
        poll_export(pitr, {"exportArn": unknown, "polls": 0})


@pytest.mark.parametrize(
    "state",
    [
        pytest.param({}, id="empty"),
        pytest.param({"exportArn": None}, id="null"),
        pytest.param({"exportArn": 17}, id="number"),
        pytest.param({"exportArn": [f"{TABLE_ARN}/export/01714521600000-deadbeef"]}, id="list"),
        pytest.param({"exportArn": TABLE_ARN}, id="table-arn"),
        pytest.param({"export": {"exportArn": f"{TABLE_ARN}/export/01714521600000-deadbeef"}}, id="nested"),
        pytest.param(
            {"exportArn": "oops/export/1"},
            id="short-non-arn-with-export",
        ),
    ],
)
def test_poll_with_malformed_input_raises_invalid_event(pitr: Any, state: dict[str, Any]) -> None:
    with pytest.raises(InvalidEvent):
        poll_export(pitr, state)


def test_poll_waits_a_minute_for_the_first_polls_then_five_minutes(pitr: Any, started: dict[str, Any]) -> None:
    state = started
    waits = []
    for _ in range(7):
        state = poll_export(pitr, state)
        waits.append(state["waitSeconds"])

    assert state["status"] == "IN_PROGRESS"
    assert state["polls"] == 7
    assert waits == [60, 60, 60, 60, 300, 300, 300]


# ---------------------------------------------------------------- commit_checkpoint / load_checkpoint


def test_load_checkpoint_returns_none_when_the_table_has_none(ddb: Any) -> None:
    checkpoint_at(ddb, START, table_arn=OTHER_TABLE_ARN)

    assert load_checkpoint(ddb, CHECKPOINTS, TABLE_ARN) is None


def test_first_commit_creates_the_checkpoint(ddb: Any) -> None:
    export_arn = f"{TABLE_ARN}/export/01714521900000-a1b2c3d4"

    assert commit_checkpoint(ddb, CHECKPOINTS, TABLE_ARN, START + minutes(5), export_arn, "FULL_EXPORT") is True

    assert load_checkpoint(ddb, CHECKPOINTS, TABLE_ARN) == Checkpoint(TABLE_ARN, START + minutes(5), export_arn)
    item = checkpoint_item(ddb)
    assert item is not None
    assert item["exportedTo"] == "2024-05-01T00:05:00Z"
    assert item["exportType"] == "FULL_EXPORT"
    assert item["exportArn"] == export_arn


def test_commit_of_a_later_time_moves_the_checkpoint_forward(ddb: Any) -> None:
    checkpoint_at(ddb, START + minutes(5))
    later_arn = f"{TABLE_ARN}/export/01714608300000-b1b2c3d4"

    assert commit_checkpoint(ddb, CHECKPOINTS, TABLE_ARN, START + minutes(5) + MAX_WINDOW, later_arn, "INCREMENTAL_EXPORT") is True

    assert load_checkpoint(ddb, CHECKPOINTS, TABLE_ARN) == Checkpoint(TABLE_ARN, START + minutes(5) + MAX_WINDOW, later_arn)
    assert checkpoint_item(ddb)["exportType"] == "INCREMENTAL_EXPORT"  # type: ignore[index]


@pytest.mark.parametrize("offset", [timedelta(0), -timedelta(seconds=1), -MAX_WINDOW], ids=["equal", "one-second-earlier", "a-day-earlier"])
def test_commit_of_an_earlier_or_equal_time_changes_nothing(ddb: Any, offset: timedelta) -> None:
    current = START + MAX_WINDOW
    commit_checkpoint(ddb, CHECKPOINTS, TABLE_ARN, current, SEED_EXPORT_ARN, "INCREMENTAL_EXPORT")
    before = checkpoint_item(ddb)

    committed = commit_checkpoint(ddb, CHECKPOINTS, TABLE_ARN, current + offset, f"{TABLE_ARN}/export/other", "FULL_EXPORT")

    assert committed is False
    assert checkpoint_item(ddb) == before


def test_overlapping_runs_cannot_move_the_checkpoint_backwards(pitr: Any, clock: VirtualClock) -> None:
    clock.advance(2 * 3600)
    base = checkpoint_at(pitr, START + minutes(10))
    # Run A and run B plan the same window from the same checkpoint: one export, thanks to the ClientToken.
    plan_a = plan_next_export(pitr, TABLE_ARN, "auto", base)
    plan_b = plan_next_export(pitr, TABLE_ARN, "auto", base)
    assert plan_a is not None and plan_b is not None
    export_a = start_export(pitr, plan_a, SETTINGS)["exportArn"]
    assert start_export(pitr, plan_b, SETTINGS)["exportArn"] == export_a
    # A forced full export from before A's window end finishes last.
    early_full = full_plan(START + minutes(50))

    assert commit_checkpoint(pitr, CHECKPOINTS, TABLE_ARN, plan_a.exported_to, export_a, plan_a.export_type) is True
    assert commit_checkpoint(pitr, CHECKPOINTS, TABLE_ARN, plan_b.exported_to, export_a, plan_b.export_type) is False
    assert commit_checkpoint(pitr, CHECKPOINTS, TABLE_ARN, early_full.exported_to, "late-full", "FULL_EXPORT") is False

    assert load_checkpoint(pitr, CHECKPOINTS, TABLE_ARN) == Checkpoint(TABLE_ARN, START + minutes(60), export_a)


def test_checkpoints_of_different_tables_are_independent(ddb: Any) -> None:
    checkpoint_at(ddb, START + MAX_WINDOW)

    assert commit_checkpoint(ddb, CHECKPOINTS, OTHER_TABLE_ARN, START, SEED_EXPORT_ARN, "FULL_EXPORT") is True

    assert load_checkpoint(ddb, CHECKPOINTS, OTHER_TABLE_ARN) == Checkpoint(OTHER_TABLE_ARN, START, SEED_EXPORT_ARN)
    assert load_checkpoint(ddb, CHECKPOINTS, TABLE_ARN) == Checkpoint(TABLE_ARN, START + MAX_WINDOW, SEED_EXPORT_ARN)


def test_commit_to_a_missing_checkpoint_table_propagates_the_client_error(ddb: Any) -> None:
    with pytest.raises(ClientError) as raised:
        commit_checkpoint(ddb, "no-such-table", TABLE_ARN, START, SEED_EXPORT_ARN, "FULL_EXPORT")

    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"


# ---------------------------------------------------------------- DynamoDbExportSettings.from_env


def test_settings_from_env_with_only_the_required_variables_use_defaults() -> None:
    settings = DynamoDbExportSettings.from_env({"EXPORT_BUCKET": BUCKET, "CHECKPOINT_TABLE": CHECKPOINTS})

    assert settings == DynamoDbExportSettings(BUCKET, "dynamodb-exports", None, None, CHECKPOINTS)


def test_settings_from_env_read_every_variable_trimmed() -> None:
    settings = DynamoDbExportSettings.from_env(
        {
            "EXPORT_BUCKET": f" {BUCKET} ",
            "CHECKPOINT_TABLE": f"{CHECKPOINTS}\n",
            "DYNAMODB_EXPORT_PREFIX": " /raw/dynamodb/ ",
            "EXPORT_BUCKET_OWNER": f" {ACCOUNT} ",
            "EXPORT_KMS_KEY_ARN": f" {KMS_KEY}",
        }
    )

    assert settings == DynamoDbExportSettings(BUCKET, "raw/dynamodb", ACCOUNT, KMS_KEY, CHECKPOINTS)


@pytest.mark.parametrize("missing", ["EXPORT_BUCKET", "CHECKPOINT_TABLE"])
@pytest.mark.parametrize("value", [None, "", "   "], ids=["unset", "empty", "blank"])
def test_settings_from_env_require_bucket_and_checkpoint_table(missing: str, value: str | None) -> None:
    env = {"EXPORT_BUCKET": BUCKET, "CHECKPOINT_TABLE": CHECKPOINTS}
    if value is None:
        del env[missing]
    else:
        env[missing] = value

    with pytest.raises(ConfigError, match=rf"\b{missing} is required"):
        DynamoDbExportSettings.from_env(env)


@pytest.mark.parametrize("prefix", ["exports:dynamodb", "arn:aws:s3:::x", "a/../b", ".."])
def test_settings_from_env_reject_a_prefix_with_colon_or_parent_segment(prefix: str) -> None:
    env = {"EXPORT_BUCKET": BUCKET, "CHECKPOINT_TABLE": CHECKPOINTS, "DYNAMODB_EXPORT_PREFIX": prefix}

    with pytest.raises(ConfigError, match="DYNAMODB_EXPORT_PREFIX"):
        DynamoDbExportSettings.from_env(env)


def test_retried_start_adopts_the_running_export_instead_of_starting_a_second(pitr: Any, clock: VirtualClock) -> None:
    clock.advance(3600)
    first = start_export(pitr, plan_next_export(pitr, TABLE_ARN, "auto", None), SETTINGS)  # type: ignore[arg-type]
    clock.advance(90)  # the retry plans again: "latest restorable" has moved on

    again = start_export(pitr, plan_next_export(pitr, TABLE_ARN, "auto", None), SETTINGS)  # type: ignore[arg-type]

    assert again["exportArn"] == first["exportArn"]
    assert again["exportedTo"] == first["exportedTo"]


# ---------------------------------------------------------------- export lease


def test_second_run_cannot_take_the_export_lease_while_the_first_holds_it(ddb: Any) -> None:
    assert claim_export_lease(ddb, CHECKPOINTS, TABLE_ARN, "execution-1", START) is None

    assert claim_export_lease(ddb, CHECKPOINTS, TABLE_ARN, "execution-2", START + minutes(5)) == "execution-1"
    assert claim_export_lease(ddb, CHECKPOINTS, TABLE_ARN, "execution-1", START + minutes(30)) is None  # its next window


def test_expired_lease_of_a_dead_run_can_be_taken_over(ddb: Any) -> None:
    claim_export_lease(ddb, CHECKPOINTS, TABLE_ARN, "dead-execution", START)

    assert claim_export_lease(ddb, CHECKPOINTS, TABLE_ARN, "execution-2", START + timedelta(seconds=LEASE_SECONDS + 1)) is None


def test_only_the_holder_releases_the_lease_and_a_commit_releases_it_too(ddb: Any) -> None:
    claim_export_lease(ddb, CHECKPOINTS, TABLE_ARN, "execution-1", START)

    assert release_export_lease(ddb, CHECKPOINTS, TABLE_ARN, "execution-2") is False
    assert release_export_lease(ddb, CHECKPOINTS, TABLE_ARN, "execution-1") is True
    assert claim_export_lease(ddb, CHECKPOINTS, TABLE_ARN, "execution-2", START) is None
    assert commit_checkpoint(ddb, CHECKPOINTS, TABLE_ARN, START, f"{TABLE_ARN}/export/01714521600000-a1b2c3d4", "FULL_EXPORT")
    assert claim_export_lease(ddb, CHECKPOINTS, TABLE_ARN, "execution-3", START) is None


def test_a_lease_without_a_checkpoint_does_not_count_as_one(ddb: Any) -> None:
    claim_export_lease(ddb, CHECKPOINTS, TABLE_ARN, "execution-1", START)

    assert load_checkpoint(ddb, CHECKPOINTS, TABLE_ARN) is None
    assert commit_checkpoint(ddb, CHECKPOINTS, TABLE_ARN, START, f"{TABLE_ARN}/export/01714521600000-a1b2c3d4", "FULL_EXPORT") is True


# ---------------------------------------------------------------- finishing what a failed run began to publish


def began_publishing(ddb: Any, clock: VirtualClock, holder: str = "execution-1") -> tuple[Checkpoint, PublishingExport]:
    """A run that exported the next window and recorded, before its first lake write, that it publishes it."""
    checkpoint = checkpoint_at(ddb, START + minutes(10))
    clock.advance(2 * 3600)
    assert claim_export_lease(ddb, CHECKPOINTS, TABLE_ARN, holder, clock.now()) is None
    plan = plan_next_export(ddb, TABLE_ARN, "auto", checkpoint)
    assert plan is not None
    publishing = PublishingExport(plan, start_export(ddb, plan, SETTINGS)["exportArn"])
    mark_publishing(ddb, CHECKPOINTS, holder, publishing)
    return checkpoint, publishing


def test_export_a_failed_run_began_to_publish_is_finished_by_the_next_run(pitr: Any, clock: VirtualClock) -> None:
    checkpoint, publishing = began_publishing(pitr, clock)
    assert release_export_lease(pitr, CHECKPOINTS, TABLE_ARN, "execution-1")  # the run failed after publishing some files
    clock.advance(3600)
    assert claim_export_lease(pitr, CHECKPOINTS, TABLE_ARN, "execution-2", clock.now()) is None

    loaded_checkpoint, loaded = load_export_state(pitr, CHECKPOINTS, TABLE_ARN)
    resumed, forgotten = resume_publishing_export(pitr, CHECKPOINTS, "execution-2", "auto", loaded_checkpoint, loaded)

    assert loaded == publishing and loaded_checkpoint == checkpoint
    assert forgotten is None
    assert resumed is not None and resumed["resumed"] is True
    assert resumed["exportArn"] == publishing.export_arn  # the same export: its lake keys are overwritten, not added to
    assert publishing.plan.window_from is not None
    assert (resumed["windowFrom"], resumed["exportedTo"]) == (iso_utc(publishing.plan.window_from), iso_utc(publishing.plan.exported_to))


def test_the_commit_of_the_finished_export_clears_the_record(pitr: Any, clock: VirtualClock) -> None:
    _, publishing = began_publishing(pitr, clock)

    assert commit_checkpoint(pitr, CHECKPOINTS, TABLE_ARN, publishing.plan.exported_to, publishing.export_arn, "INCREMENTAL_EXPORT")

    assert load_export_state(pitr, CHECKPOINTS, TABLE_ARN)[1] is None


def test_a_requested_full_export_starts_over_and_keeps_the_record_until_it_publishes(pitr: Any, clock: VirtualClock) -> None:
    checkpoint, publishing = began_publishing(pitr, clock)

    resumed, forgotten = resume_publishing_export(pitr, CHECKPOINTS, "execution-1", "full", checkpoint, publishing)

    assert (resumed, forgotten) == (None, None)
    # Should the full export fail before it publishes, the next run still finishes the recorded one.
    assert load_export_state(pitr, CHECKPOINTS, TABLE_ARN)[1] == publishing


def test_a_record_the_checkpoint_is_already_past_is_forgotten(pitr: Any, clock: VirtualClock) -> None:
    _, publishing = began_publishing(pitr, clock)
    past = Checkpoint(TABLE_ARN, publishing.plan.exported_to, publishing.export_arn)

    resumed, forgotten = resume_publishing_export(pitr, CHECKPOINTS, "execution-1", "auto", past, publishing)

    assert resumed is None and forgotten is not None and "the checkpoint is already at" in forgotten
    assert load_export_state(pitr, CHECKPOINTS, TABLE_ARN)[1] is None
    assert checkpoint_item(pitr)["leaseHolder"] == "execution-1"  # type: ignore[index]


def test_a_recorded_export_that_no_longer_exists_needs_a_full_export(pitr: Any, clock: VirtualClock) -> None:
    """Exporting its window again would publish its changes a second time next to the files it left."""
    checkpoint, publishing = began_publishing(pitr, clock)
    lost = PublishingExport(publishing.plan, f"{TABLE_ARN}/export/01714521600000-deadbeef")
    mark_publishing(pitr, CHECKPOINTS, "execution-1", lost)

    with pytest.raises(ExportNotFound, match=r"no longer exists.*start a full export"):
        resume_publishing_export(pitr, CHECKPOINTS, "execution-1", "auto", checkpoint, lost)

    assert load_export_state(pitr, CHECKPOINTS, TABLE_ARN)[1] == lost


def test_a_commit_that_moves_nothing_is_abandoned_releasing_lease_and_record(pitr: Any, clock: VirtualClock) -> None:
    _, publishing = began_publishing(pitr, clock)
    other_run = f"{TABLE_ARN}/export/01714521600000-a1b2c3d4"
    assert commit_checkpoint(pitr, CHECKPOINTS, TABLE_ARN, publishing.plan.exported_to, other_run, "FULL_EXPORT") is True
    claim_export_lease(pitr, CHECKPOINTS, TABLE_ARN, "execution-1", clock.now())
    mark_publishing(pitr, CHECKPOINTS, "execution-1", publishing)

    moved = commit_checkpoint(pitr, CHECKPOINTS, TABLE_ARN, publishing.plan.exported_to, publishing.export_arn, "INCREMENTAL_EXPORT")

    assert moved is False
    assert abandon_commit(pitr, CHECKPOINTS, TABLE_ARN, "execution-2") is False  # only the lease holder
    assert abandon_commit(pitr, CHECKPOINTS, TABLE_ARN, "execution-1") is True
    item = checkpoint_item(pitr)
    assert item is not None and not {"leaseHolder", "leaseUntil", "publishingExport"} & set(item)
    assert item["exportArn"] == other_run


def test_a_run_that_lost_its_lease_may_not_publish(pitr: Any, clock: VirtualClock) -> None:
    checkpoint = checkpoint_at(pitr, START + minutes(10))
    clock.advance(2 * 3600)
    claim_export_lease(pitr, CHECKPOINTS, TABLE_ARN, "execution-1", clock.now())
    plan = plan_next_export(pitr, TABLE_ARN, "auto", checkpoint)
    assert plan is not None
    claim_export_lease(pitr, CHECKPOINTS, TABLE_ARN, "execution-2", clock.now() + timedelta(seconds=LEASE_SECONDS + 1))

    with pytest.raises(ExportLeaseLost, match="execution-1"):
        mark_publishing(pitr, CHECKPOINTS, "execution-1", PublishingExport(plan, f"{TABLE_ARN}/export/01714521600000-a1b2c3d4"))

    assert load_export_state(pitr, CHECKPOINTS, TABLE_ARN)[1] is None


def test_a_commit_by_a_run_whose_lease_was_taken_over_is_refused_and_changes_nothing(pitr: Any, clock: VirtualClock) -> None:
    _, publishing = began_publishing(pitr, clock, holder="execution-1")
    claim_export_lease(pitr, CHECKPOINTS, TABLE_ARN, "execution-2", clock.now() + timedelta(seconds=LEASE_SECONDS + 1))
    mark_publishing(pitr, CHECKPOINTS, "execution-2", publishing)  # the new holder finishes the same export
    before = checkpoint_item(pitr)

    with pytest.raises(ExportLeaseLost, match=r"execution-1.*execution-2"):
        commit_checkpoint(
            pitr, CHECKPOINTS, TABLE_ARN, publishing.plan.exported_to, publishing.export_arn, "INCREMENTAL_EXPORT", "execution-1"
        )

    assert checkpoint_item(pitr) == before
    assert before is not None and before["leaseHolder"] == "execution-2"


def test_the_lease_holders_commit_moves_the_checkpoint_and_a_repeated_one_changes_nothing(pitr: Any, clock: VirtualClock) -> None:
    _, publishing = began_publishing(pitr, clock, holder="execution-1")
    commit = (pitr, CHECKPOINTS, TABLE_ARN, publishing.plan.exported_to, publishing.export_arn, "INCREMENTAL_EXPORT", "execution-1")

    assert commit_checkpoint(*commit) is True
    assert commit_checkpoint(*commit) is False  # a retried invocation whose first attempt committed: no error

    item = checkpoint_item(pitr)
    assert item is not None and item["exportArn"] == publishing.export_arn and "leaseHolder" not in item


# ---------------------------------------------------------------- the schedule's execution names


@pytest.mark.parametrize(
    "names",
    [("x" * 70 + "-emea-0001", "x" * 70 + "-apac-0001"), ("Orders", "orders"), ("a.b" + "c" * 252, "a_b" + "c" * 252)],
    ids=["long-shared-prefix", "case", "punctuation-255"],
)
def test_execution_names_are_unique_per_table_and_within_step_functions_limits(names: tuple[str, str]) -> None:
    made = {execution_name(f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}", "2024-05-02T04:00:00.123Z") for name in names}

    assert len(made) == 2
    assert all(len(name) <= 80 and re.fullmatch(r"[A-Za-z0-9_-]+", name) and name.endswith("-20240502T040000123Z") for name in made)
