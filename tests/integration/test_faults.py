"""Fault injection: the real state machines on the emulator, with AWS errors, Lambda
timeouts and racing deliveries injected (see faults.py for how).

Each scenario's docstring says what is injected and what must survive. A run that
succeeds must leave exactly the lake the fault-free run leaves (same keys, every
row once, nothing outside the lake prefix); a run that fails must write nothing
to the lake, notify, and fail with an error named for what happened. Where a
scenario applies to both pipelines, both run on one stack.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from snaplake_local.emulator.account import DEFAULT_ACCOUNT
from snaplake_local.sources import (
    ORDERS_TABLE,
    ORDERS_TABLE_ARN,
    create_orders_table,
    default_parameters,
    sample_event,
    seed_sample_sources,
)
from snaplake_local.stack import EmulatedStack, Execution

from tests.integration.faults import (
    Call,
    FaultInjector,
    Gate,
    LakeContents,
    LambdaTimeout,
    Rule,
    die_at,
    dynamodb_throttling,
    is_s3_write,
    kms_access_denied,
    lake_problems,
    rds_throttling,
    s3_slow_down,
    set_clock,
    time_out_once,
    timeout_message,
)
from tests.snaplake_errors import snaplake_error_classes

RDS = "RdsExportStateMachine"
DDB = "DynamoDbExportStateMachine"
CLUSTER_EVENT = "rds_automated_cluster_snapshot.json"  # world-aurora: 4 tables, 8 Parquet files
PREFIX = "lake"
LAKE_PREFIXES = {"rds": f"{PREFIX}/rds/", "dynamodb": f"{PREFIX}/dynamodb/"}
OTHER_ACCOUNT = "999988887777"
# snaplake.aws configures max_attempts=10 retries: 11 attempts per call before botocore gives up.
BOTOCORE_ATTEMPTS = 11
# Every stack's virtual clock is moved to this instant before the DynamoDB table is
# written, so the full export's partition (export_time=...) is the same in every run.
CLOCK = (datetime.now(UTC) + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
# A failure "named for what happened" is one of snaplake's errors, not botocore's or boto3's.
SNAPLAKE_ERRORS = {cls.__name__ for cls in snaplake_error_classes()}


# --------------------------------------------------------------------------- stacks and runs


@contextmanager
def deployed(**parameters: str) -> Iterator[EmulatedStack]:
    with EmulatedStack(default_parameters(**{"LakePrefix": PREFIX, **parameters}), function_log_level="ERROR") as stack:
        seed_sample_sources(stack)
        set_clock(stack, CLOCK)
        yield stack


@pytest.fixture
def faults() -> Iterator[FaultInjector]:
    with FaultInjector(seed=7).installed() as injector:
        yield injector


@pytest.fixture
def stack() -> Iterator[EmulatedStack]:
    with deployed() as opened:
        yield opened


def start_rds(stack: EmulatedStack) -> str:
    return stack.start(RDS, sample_event(CLUSTER_EVENT))


def start_dynamodb(stack: EmulatedStack) -> str:
    """The orders table's first (full) export, 20 minutes after PITR was turned on."""
    create_orders_table(stack)
    stack.clock.advance(20 * 60)
    return stack.start(DDB, {"tableArn": ORDERS_TABLE_ARN})


STARTS: dict[str, Callable[[EmulatedStack], str]] = {"dynamodb": start_dynamodb, "rds": start_rds}


def run(stack: EmulatedStack, *pipelines: str) -> dict[str, Execution]:
    """Run the pipelines one after the other (DynamoDB first: its export time comes from
    the virtual clock, which the RDS run's waits move on)."""
    return {name: stack.wait(STARTS[name](stack)) for name in pipelines or STARTS}


def run_one(stack: EmulatedStack, pipeline: str) -> Execution:
    return run(stack, pipeline)[pipeline]


@pytest.fixture(scope="module")
def fault_free() -> LakeContents:
    """The lake both pipelines leave when nothing goes wrong."""
    with deployed() as clean:
        for execution in run(clean).values():
            assert execution.status == "SUCCEEDED", execution.cause
        lake = LakeContents.read(clean)
    for prefix in LAKE_PREFIXES.values():
        assert any(key.endswith(".parquet") for key in lake.under(prefix).keys)
    return lake


def assert_lake_is(stack: EmulatedStack, expected: LakeContents) -> None:
    problems = lake_problems(LakeContents.read(stack), expected, PREFIX)
    assert not problems, "\n".join(problems)


def assert_lake_empty(stack: EmulatedStack) -> None:
    assert LakeContents.read(stack).keys == ()


def assert_succeeded(executions: dict[str, Execution]) -> None:
    failed = {name: f"{e.error}: {e.cause}" for name, e in executions.items() if e.status != "SUCCEEDED"}
    assert not failed, failed


def assert_failed_and_notified(stack: EmulatedStack, executions: dict[str, Execution]) -> dict[str, dict[str, Any]]:
    """Every execution FAILED and published one notification; returns them by pipeline."""
    assert {name: e.status for name, e in executions.items()} == dict.fromkeys(executions, "FAILED")
    by_execution = {n["message"]["execution"]: n["message"] for n in stack.notifications()}
    assert set(by_execution) == {e.arn for e in executions.values()}
    return {name: by_execution[e.arn] for name, e in executions.items()}


def lambda_errors(execution: Execution, stack: EmulatedStack | None = None) -> list[str]:
    """The Lambda errors of an execution, those of its Distributed Map children included (their own histories)."""
    history = list(execution.history)
    if stack is not None:
        history += [event for run in stack.distributed_maps.of(execution.arn) for event in run.history]
    return [event["lambdaFunctionFailedEventDetails"].get("error", "") for event in history if event["type"] == "LambdaFunctionFailed"]


def lambda_statuses(execution: Execution) -> list[str]:
    """The `status` of every successful Lambda result (PollExport reports the export's)."""
    succeeded = [event for event in execution.history if event["type"] == "LambdaFunctionSucceeded"]
    outputs = [json.loads(event["lambdaFunctionSucceededEventDetails"]["output"]) for event in succeeded]
    return [output.get("status", "") for output in outputs if isinstance(output, dict)]


def checkpoint(stack: EmulatedStack) -> dict[str, str]:
    table = stack.environment("DynamoDbCommitFunction")["CHECKPOINT_TABLE"]
    item = stack.client("dynamodb").get_item(TableName=table, Key={"tableArn": {"S": ORDERS_TABLE_ARN}}).get("Item", {})
    return {name: value["S"] for name, value in item.items()}


def operations(calls: list[Call]) -> set[str]:
    return {call.operation for call in calls}


def one_object(matches: Callable[[Call], bool]) -> Callable[[Call], bool]:
    """Narrow `matches` to the object of the first call it matches (every later attempt at that key)."""
    chosen: list[str] = []

    def same_object(call: Call) -> bool:
        if not matches(call):
            return False
        if not chosen:
            chosen.append(call.key)
        return call.key == chosen[0]

    return same_object


def lake_write(stack: EmulatedStack) -> Callable[[Call], bool]:
    """A write of lake data (claims and column registries under _snaplake/ are bookkeeping, not data)."""
    return lambda call: is_s3_write(call) and call.bucket == stack.lake_bucket and "_snaplake/" not in call.key


# --------------------------------------------------------------------------- the checker itself


def _contents(objects: dict[str, list[dict[str, Any]]], markers: tuple[str, ...] = ()) -> LakeContents:
    rows = {key: tuple(json.dumps(row, sort_keys=True) for row in table) for key, table in objects.items()}
    return LakeContents(tuple(objects) + markers, rows)


CITY = "lake/rds/world/city/snapshot_time=20240502T024019Z"
EXPECTED = _contents({f"{CITY}/1/part-0.parquet": [{"id": 1}, {"id": 2}], f"{CITY}/1/part-1.parquet": [{"id": 3}]}, (f"{CITY}/_SUCCESS",))


def test_lake_check_accepts_the_fault_free_lake() -> None:
    assert lake_problems(EXPECTED, EXPECTED, PREFIX) == []


def test_lake_check_reports_an_object_duplicated_under_another_key() -> None:
    objects = {key: [json.loads(row) for row in rows] for key, rows in EXPECTED.rows.items()}
    objects[f"{CITY}/2/part-0.parquet"] = objects[f"{CITY}/1/part-0.parquet"]

    problems = lake_problems(_contents(objects, (f"{CITY}/_SUCCESS",)), EXPECTED, PREFIX)

    assert f"{CITY}/2/part-0.parquet: extra (the fault-free run does not write it)" in problems
    assert sum("appears 2 times" in problem for problem in problems) == 2


def test_lake_check_reports_keys_listed_twice_outside_the_prefix_and_lost_rows() -> None:
    part_0, part_1 = list(EXPECTED.rows)
    broken = LakeContents((part_0, part_0, "rds/stray.json"), {part_0: EXPECTED.rows[part_0]})

    problems = lake_problems(broken, EXPECTED, PREFIX)

    assert f"{part_0}: listed 2 times" in problems
    assert "rds/stray.json: outside the lake prefix 'lake/'" in problems
    assert f"{part_1}: missing (the fault-free run writes it)" in problems
    assert any(problem.endswith('row {"id": 3} lost (0 of 1)') for problem in problems)


# --------------------------------------------------------------------------- S3 SlowDown


def test_s3_slowdown_on_a_fifth_of_copies_and_puts_still_lands_both_lakes_exactly_once(
    faults: FaultInjector, stack: EmulatedStack, fault_free: LakeContents
) -> None:
    """Injected: 503 SlowDown on a seeded 20% of S3 PutObject/CopyObject/multipart calls (lake
    objects, plans, progress markers, staging) while both pipelines run. Must survive:
    botocore retries them; both runs succeed and the lake equals the fault-free run's."""
    faults.add(s3_slow_down(rate=0.2))

    executions = run(stack)

    assert_succeeded(executions)
    assert {"PutObject", "CopyObject"} <= operations(faults.fired())
    assert faults.backoff.retries >= len(faults.fired()) >= 5
    assert_lake_is(stack, fault_free)
    assert stack.notifications() == []


def test_s3_slowdown_outlasting_botocores_attempts_is_retried_by_the_copy(
    faults: FaultInjector, stack: EmulatedStack, fault_free: LakeContents
) -> None:
    """Injected: SlowDown on all 11 attempts botocore makes to copy one object into the lake,
    so it gives up and CopyBatch fails with TransientAwsError. Must survive: the CopyBatch Retry
    runs it again; the lake equals the fault-free run's."""
    faults.add(s3_slow_down(one_object(lake_write(stack)), rate=1.0, limit=BOTOCORE_ATTEMPTS))

    execution = run_one(stack, "rds")

    assert_succeeded({"rds": execution})
    assert len(faults.fired()) == BOTOCORE_ATTEMPTS
    assert lambda_errors(execution, stack) == ["TransientAwsError"]
    assert_lake_is(stack, fault_free.under(LAKE_PREFIXES["rds"]))


def test_s3_slowdown_outlasting_botocores_attempts_is_retried_by_the_conversion(
    faults: FaultInjector, stack: EmulatedStack, fault_free: LakeContents
) -> None:
    """Injected: SlowDown on all 11 attempts botocore makes to upload one converted file, so it
    gives up. Must survive: the ConvertBatch Retry runs it again; the lake equals the
    fault-free run's."""
    faults.add(s3_slow_down(one_object(lake_write(stack)), rate=1.0, limit=BOTOCORE_ATTEMPTS))

    execution = run_one(stack, "dynamodb")

    assert len(faults.fired()) == BOTOCORE_ATTEMPTS
    assert_succeeded({"dynamodb": execution})
    assert_lake_is(stack, fault_free.under(LAKE_PREFIXES["dynamodb"]))


# --------------------------------------------------------------------------- RDS / DynamoDB throttling


def test_throttled_start_and_describe_calls_still_start_one_export_each_and_land_both_lakes(
    faults: FaultInjector, stack: EmulatedStack, fault_free: LakeContents
) -> None:
    """Injected: throttling (RDS `Throttling`, DynamoDB `ThrottlingException`, 400) on the first
    attempt of every RDS and DynamoDB Start*/Describe*/ExportTableToPointInTime call and a
    seeded half of the later ones.
    Must survive: one RDS export task and one table export are started, both runs succeed,
    the checkpoint moves to the export and the lake equals the fault-free run's."""
    faults.add(rds_throttling(rate=0.5))
    faults.add(dynamodb_throttling(rate=0.5))

    executions = run(stack)

    assert_succeeded(executions)
    fired = operations(faults.fired())
    assert {"StartExportTask", "DescribeExportTasks", "ExportTableToPointInTime", "DescribeExport"} <= fired
    assert len(stack.rds_exports.started_exports) == 1
    assert len(stack.dynamodb_exports.exports) == 1
    assert checkpoint(stack)["exportedTo"] == executions["dynamodb"].output["export"]["exportedTo"]
    assert_lake_is(stack, fault_free)


def test_dynamodb_throttling_outlasting_botocores_attempts_is_retried_by_the_state_machine(
    faults: FaultInjector, stack: EmulatedStack, fault_free: LakeContents
) -> None:
    """Injected: ThrottlingException on all 11 attempts botocore makes at ExportTableToPointInTime,
    so it gives up. Must survive: StartExport's Retry starts the export; one export, the
    lake equals the fault-free run's."""
    throttled = dynamodb_throttling()
    faults.add(Rule(throttled.name, lambda call: call.operation == "ExportTableToPointInTime", throttled.action, limit=BOTOCORE_ATTEMPTS))

    execution = run_one(stack, "dynamodb")

    assert len(faults.fired()) == BOTOCORE_ATTEMPTS
    assert_succeeded({"dynamodb": execution})
    assert lambda_errors(execution) == ["TransientAwsError"]
    assert len(stack.dynamodb_exports.exports) == 1
    # A full export is taken at the latest restorable second when it starts; the retry started it seconds later.
    expected = fault_free.under(LAKE_PREFIXES["dynamodb"]).export_time_masked()
    problems = lake_problems(LakeContents.read(stack).export_time_masked(), expected, PREFIX)
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------- Lambda timeouts


def is_conversion_result(call: Call) -> bool:
    return call.operation == "PutObject" and re.search(r"/converted/\d{6}\.json$", call.key) is not None


def test_timeouts_mid_copy_batch_and_mid_conversion_are_retried_and_land_each_object_once(
    faults: FaultInjector, stack: EmulatedStack, fault_free: LakeContents
) -> None:
    """Injected: Sandbox.Timedout (a) in the first CopyBatch invocation when it checks its
    remaining time for the 4th time, with 4 copies under way; (b) in a ConvertFiles
    invocation after it uploaded a file's Parquet to staging, before it recorded the file
    as converted. Must survive: each Retry resumes (the copy skips what landed, the
    conversion overwrites its staging key); both runs succeed, no staging object is left
    and the lake equals the fault-free run's."""
    copy_timeout = time_out_once(stack, "CopyBatchFunction", checks=4)
    faults.add(die_at("conversion-timeout", is_conversion_result, LambdaTimeout(timeout_message(stack, "ConvertFilesFunction"))))

    executions = run(stack)

    assert_succeeded(executions)
    assert copy_timeout.fired and len(faults.fired()) == 1
    assert lambda_errors(executions["rds"], stack) == lambda_errors(executions["dynamodb"], stack) == ["Sandbox.Timedout"]
    [copy_map] = stack.distributed_maps.of(executions["rds"].arn, "CopyToLake")
    finished = [output for output in copy_map.step_outputs("CopyBatch") if output.get("done")]
    assert sum(output["skipped"] for output in finished) > 0
    assert sum(output["copied"] + output["skipped"] for output in finished) == 8
    assert_lake_is(stack, fault_free)


def is_second_publish(stack: EmulatedStack) -> Callable[[Call], bool]:
    """A PublishFiles child's copy of the second staged file to its lake key (all its attempts)."""
    published: list[str] = []

    def matches(call: Call) -> bool:
        if call.operation != "CopyObject" or call.bucket != stack.lake_bucket or "_snaplake_staging" in call.key:
            return False
        if call.key not in published:
            published.append(call.key)
        return published.index(call.key) == 1

    return matches


@pytest.mark.parametrize(
    "failure",
    ["slowdown", "timeout"],
)
def test_conversion_finalize_failing_mid_publish_is_retried_and_publishes_everything(
    failure: str, faults: FaultInjector, stack: EmulatedStack, fault_free: LakeContents
) -> None:
    """Injected: a PublishFiles child fails as it publishes the second converted file, the
    first already copied to its lake key: either S3 answers
    all 11 attempts of that copy with SlowDown (botocore gives up, TransientAwsError) or the
    function times out there (Sandbox.Timedout). Must survive: the child's Retry finishes
    publishing; the lake equals the fault-free run's."""
    if failure == "slowdown":
        faults.add(s3_slow_down(is_second_publish(stack), rate=1.0, limit=BOTOCORE_ATTEMPTS))
    else:
        faults.add(die_at("finalize-timeout", is_second_publish(stack), LambdaTimeout(timeout_message(stack, "ConvertPublishFunction"))))

    execution = run_one(stack, "dynamodb")

    assert faults.fired()
    assert_succeeded({"dynamodb": execution})
    assert_lake_is(stack, fault_free.under(LAKE_PREFIXES["dynamodb"]))


# --------------------------------------------------------------------------- duplicate delivery


def test_same_snapshot_event_delivered_three_times_concurrently_starts_one_export_and_lands_once(
    faults: FaultInjector, stack: EmulatedStack, fault_free: LakeContents
) -> None:
    """Injected: EventBridge delivers the snapshot-created event 3 times at once (the rule's
    target is the state machine: 3 executions, same input), held so that all three found
    no export task and call StartExportTask together. Must survive: one export task, all
    three executions succeed and the lake equals the fault-free run's."""
    race = Gate("start-race", lambda call: call.operation == "StartExportTask", parties=3)
    faults.add(race.rule)

    arns = [start_rds(stack) for _ in range(3)]
    executions = {f"delivery {n}": stack.wait(arn) for n, arn in enumerate(arns, 1)}

    assert_succeeded(executions)
    assert len(race.rule.fired) == 3 and not race.broken
    assert len(stack.rds_exports.started_exports) == 1
    assert sorted(e.output["export"]["reused"] for e in executions.values()) == [False, True, True]
    assert_lake_is(stack, fault_free.under(LAKE_PREFIXES["rds"]))


# --------------------------------------------------------------------------- exports that fail


def test_exports_failing_after_in_progress_fail_the_runs_notify_and_write_nothing(stack: EmulatedStack) -> None:
    """Injected: the RDS export task goes STARTING -> IN_PROGRESS -> FAILED (FailureCause), the
    table export IN_PROGRESS -> FAILED (S3AccessDenied). Must survive: both runs fail with
    ExportFailed carrying the cause, each notifies naming PollExport and the cause, no
    DynamoDB checkpoint, the export lease released, nothing written to the lake."""
    cause = "The IAM role snaplake-local-ExportRole is not authorized to call kms:GenerateDataKey"
    stack.rds_exports.fail_export(sample_event(CLUSTER_EVENT)["detail"]["SourceArn"], cause)
    stack.dynamodb_exports.fail_next_export(ORDERS_TABLE, "S3AccessDenied", "Access denied to the export bucket")

    executions = run(stack)

    notifications = assert_failed_and_notified(stack, executions)
    for name, failure in {"rds": cause, "dynamodb": "S3AccessDenied: Access denied to the export bucket"}.items():
        assert "IN_PROGRESS" in lambda_statuses(executions[name])
        assert executions[name].error == "ExportFailed"
        assert failure in (executions[name].cause or "")
        assert notifications[name]["step"] == "PollExport"
        assert failure in notifications[name]["cause"]
    assert checkpoint(stack) == {"tableArn": ORDERS_TABLE_ARN}  # no exportedTo, no leaseHolder
    assert_lake_empty(stack)


# --------------------------------------------------------------------------- KMS access denied


def test_kms_access_denied_on_the_lake_key_fails_both_runs_notifies_and_writes_nothing(faults: FaultInjector, stack: EmulatedStack) -> None:
    """Injected: S3 refuses every lake write encrypted with the lake key: 403 AccessDenied, the
    role lacks kms:GenerateDataKey on it. Must survive: both runs fail and notify, no
    checkpoint moves, nothing is written to the lake."""
    faults.add(kms_access_denied(stack.environment("CopyBatchFunction")["LAKE_KMS_KEY_ARN"], stack.account))

    executions = run(stack)

    assert_failed_and_notified(stack, executions)
    assert {call.bucket for call in faults.fired()} == {stack.lake_bucket}
    assert "exportedTo" not in checkpoint(stack)
    assert_lake_empty(stack)


def test_kms_access_denied_fails_with_a_named_error_naming_the_key_and_the_permission(faults: FaultInjector, stack: EmulatedStack) -> None:
    """Injected: S3 answers every lake write encrypted with the lake key with a bare 403
    "Access Denied" (as when the key policy denies). Must survive: each run fails with a
    snaplake error named for it, whose cause (and notification) names the key ARN and
    kms:GenerateDataKey."""
    key_arn = stack.environment("CopyBatchFunction")["LAKE_KMS_KEY_ARN"]
    faults.add(kms_access_denied(key_arn, stack.account, detailed=False))

    executions = run(stack)

    notifications = assert_failed_and_notified(stack, executions)
    for name, execution in executions.items():
        assert execution.error in SNAPLAKE_ERRORS, f"{name}: {execution.error}"
        assert key_arn in (execution.cause or "")
        assert "kms:GenerateDataKey" in (execution.cause or "")
        assert "kms:GenerateDataKey" in notifications[name]["cause"]


# --------------------------------------------------------------------------- lake bucket owned by another account


@pytest.fixture
def foreign_lake_stack() -> Iterator[EmulatedStack]:
    # As a source account's stack would be deployed (its own accounts/<id> folder), so the functions start and S3
    # itself refuses the ExpectedBucketOwner mismatch.
    with deployed(LakeBucketOwner=OTHER_ACCOUNT, LakePrefix=f"{PREFIX}/accounts/{DEFAULT_ACCOUNT}") as opened:
        yield opened


def test_lake_bucket_owned_by_another_account_is_refused_and_nothing_is_written(foreign_lake_stack: EmulatedStack) -> None:
    """Injected: LakeBucketOwner names another account than the lake bucket's; S3 answers the
    ExpectedBucketOwner mismatch with 403. Must survive: both runs fail and notify, no
    checkpoint moves, nothing is written to the lake."""
    stack = foreign_lake_stack
    assert stack.environment("CopyBatchFunction")["LAKE_BUCKET_OWNER"] == OTHER_ACCOUNT

    executions = run(stack)

    assert_failed_and_notified(stack, executions)
    assert "exportedTo" not in checkpoint(stack)
    assert_lake_empty(stack)


def test_lake_bucket_owner_mismatch_fails_with_a_named_error_naming_the_bucket_and_owner(foreign_lake_stack: EmulatedStack) -> None:
    """Injected: LakeBucketOwner names another account than the lake bucket's. Must survive:
    each run fails with a snaplake error named for it, whose cause names the bucket and
    the expected owner (LakeBucketOwner)."""
    stack = foreign_lake_stack

    executions = run(stack)

    for name, execution in executions.items():
        assert execution.error in SNAPLAKE_ERRORS, f"{name}: {execution.error}"
        assert stack.lake_bucket in (execution.cause or "")
        assert OTHER_ACCOUNT in (execution.cause or "")
