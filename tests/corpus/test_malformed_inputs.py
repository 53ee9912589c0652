"""Every handler refuses malformed input by name and writes nothing (issue 6: the malformed-input corpus).

The cases are data, in cases.py. Each runs the real handler in-process on one
emulated deployment of template.yaml (module-scoped: deploying takes seconds,
a case milliseconds). The deployment is seeded once with real pipeline state
(an RDS export with its copy plan, a DynamoDB export converted into the lake,
a few hand-made landed manifests), so a case can name real plans and
partitions and reach past the first checks. Around each case everything that
can be written is compared: every bucket's objects, the writes to every
DynamoDB table, the Glue catalog, Step Functions executions, RDS and DynamoDB
export tasks.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from snaplake.core.errors import SnaplakeError
from snaplake_local.emulator import LocalFunction
from snaplake_local.sources import create_orders_table, default_parameters, sample_event, seed_sample_sources
from snaplake_local.stack import PROJECT_ROOT, EmulatedStack
from snaplake_local.streams import create_stream_table

from tests.corpus.cases import CASES, STREAM, BatchItemFailures, Case, ProcessingFailed, Raises, Seeded

# What a handler must never let escape: Lambda would report these with a stack trace of library internals.
UNNAMED = (KeyError, TypeError, AttributeError, ValueError, IndexError, UnicodeError, RecursionError, AssertionError)


def _seed(stack: EmulatedStack) -> Seeded:
    """Real state for the cases to point at: nothing of it is written by a case."""
    seed_sample_sources(stack)

    def invoke(logical_id: str, event: Any) -> dict[str, Any]:
        payload, errored = stack.function(logical_id).invoke(event)
        assert not errored, f"seeding {logical_id}: {json.dumps(payload)[:1000]}"
        return dict(payload)

    # RDS: an export of the sample cluster snapshot, COMPLETE, with its copy plan (nothing copied yet).
    invoke("StartExportFunction", sample_event("start_export.json"))
    stack.clock.advance(2 * 3600)
    invoke("PollExportFunction", sample_event("poll_export.json"))
    rds_planned = invoke("PlanCopyFunction", sample_event("plan_copy.json"))

    # DynamoDB: a full export converted into the lake (one published partition, not yet in Glue).
    create_orders_table(stack)
    stack.clock.advance(20 * 60)
    started = invoke("DynamoDbStartExportFunction", sample_event("dynamodb_start_export.json"))
    stack.clock.advance(3600)
    polled = invoke("DynamoDbPollExportFunction", {**sample_event("dynamodb_poll_export.json"), "exportArn": started["exportArn"]})
    ddb_planned = invoke(
        "ConvertPlanFunction",
        {
            **sample_event("dynamodb_plan_conversion.json"),
            "exportArn": started["exportArn"],
            "manifestSummaryKey": polled["manifestSummaryKey"],
            "exportedTo": started["exportedTo"],
        },
    )
    carried = {key: ddb_planned[key] for key in ("plan", "kind", "table", "exportId", "exportedTo")}
    for share in ddb_planned["workers"]:
        invoke("ConvertScanFunction", {**carried, "share": share})
    invoke(
        "ConvertMergeFunction", {"plan": ddb_planned["plan"], "files": ddb_planned["files"], "expectedItems": ddb_planned["expectedItems"]}
    )
    for share in ddb_planned["workers"]:
        invoke("ConvertFilesFunction", {**carried, "share": share})
    for share in ddb_planned["workers"]:
        invoke("ConvertPublishFunction", {**carried, "share": share})
    landed = invoke("ConvertFinalizeFunction", {**carried, **{k: ddb_planned[k] for k in ("files", "expectedItems", "shares")}})

    seeded = Seeded(
        lake_bucket=stack.lake_bucket,
        export_bucket=stack.export_bucket,
        rds_plan=rds_planned["plan"],
        rds_share=rds_planned["workers"][0],
        rds_batches=rds_planned["batches"],
        ddb_export_arn=started["exportArn"],
        ddb_manifest_summary_key=polled["manifestSummaryKey"],
        ddb_planned=ddb_planned,
        ddb_partition=landed["partitionPrefixes"][0],
    )
    s3 = stack.client("s3")
    for key, body in seeded.manifests().items():
        s3.put_object(Bucket=seeded.export_bucket, Key=key, Body=body)
    return seeded


@pytest.fixture(scope="module")
def corpus() -> Iterator[tuple[EmulatedStack, Seeded]]:
    with EmulatedStack(default_parameters(), function_log_level="ERROR") as stack:
        seeded = _seed(stack)
        STREAM_ARNS[SAMPLE_STREAM_ARN] = create_stream_table(stack, "orders")
        yield stack, seeded


# The sample batch's stream, as the emulator named it (the function checks the stream's view type with DescribeStream).
SAMPLE_STREAM_ARN = sample_event("dynamodb_stream_batch.json")["Records"][0]["eventSourceARN"]
STREAM_ARNS: dict[str, str] = {}


def _on_emulated_stream(event: Any) -> Any:
    """A stream event whose records name the sample's stream, naming the emulated one instead."""
    if not isinstance(event, dict) or not isinstance(event.get("Records"), list):
        return event
    records = [
        {**r, "eventSourceARN": STREAM_ARNS.get(r["eventSourceARN"], r["eventSourceARN"])}
        if isinstance(r, dict) and isinstance(r.get("eventSourceARN"), str)
        else r
        for r in event["Records"]
    ]
    return {**event, "Records": records}


def _function(stack: EmulatedStack, handler: str) -> LocalFunction:
    """The deployed function whose code file and entry point are `functions/<dir>/<module>.py:<name>`."""
    path, _, name = handler.partition(":")
    for function in stack.lambdas.functions.values():
        module, _, entry = function.handler.rpartition(".")
        if (function.code_dir / f"{module}.py").resolve() == (PROJECT_ROOT / path).resolve() and entry == name:
            return function
    raise LookupError(f"template.yaml deploys no function with handler {handler}")


def _invoke(function: LocalFunction, event: Any) -> tuple[Any, BaseException | None]:
    try:
        return function.call(event, remaining_ms=lambda: 600_000), None
    except Exception as error:
        return None, error


def _chain(error: BaseException) -> list[BaseException]:
    """The exceptions Lambda's stack trace would show: the error and what it was raised from or during."""
    found = [error]
    while True:
        cause = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
        if cause is None or cause in found:
            return found
        found.append(cause)
        error = cause


def _stream_bookkeeping(change: str) -> bool:
    """A write the stream function makes for the well-formed records of a batch."""
    return change.startswith("glue:") or any(
        part in change for part in ("/dynamodb_stream_changes/", "/_snaplake/claims/", "/_snaplake/columns/")
    )


def _assert_stream_wrote_only_good_records(stack: EmulatedStack, case_id: str, event: Any, written: list[str]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    s3 = stack.client("s3")
    for change in written:
        if "/dynamodb_stream_changes/" in change and change.endswith(".parquet"):
            key = change.split(f"s3://{stack.lake_bucket}/", 1)[1]
            rows = pq.read_table(pa.BufferReader(s3.get_object(Bucket=stack.lake_bucket, Key=key)["Body"].read())).to_pylist()
            bad = event["Records"][0]["dynamodb"]["SequenceNumber"]
            assert all(row["sequence_number"] != bad for row in rows), f"{case_id}: the malformed record landed in {key}"
            s3.delete_object(Bucket=stack.lake_bucket, Key=key)  # the next case's batch starts from an empty change log


def written_state(stack: EmulatedStack) -> dict[str, Any]:
    """Everything a handler could have written, in comparable form.

    Read from the emulator's own records rather than through the API: listing
    buckets and scanning tables twice per case would cost more than the cases.
    """
    from moto.dynamodb.models import dynamodb_backends
    from moto.glue.models import glue_backends
    from moto.s3.models import s3_backends
    from moto.stepfunctions.models import stepfunctions_backends

    state: dict[str, Any] = {}
    for name, bucket in s3_backends[stack.account]["aws"].buckets.items():
        state[f"s3://{name}"] = {key: (obj.etag, obj.last_modified) for key, obj in bucket.keys.items()}
    tables = dynamodb_backends[stack.account][stack.region].tables
    state["dynamodb"] = {name: len(stack.dynamodb_exports.history.get(name, [])) for name in tables}
    state["dynamodb-exports"] = sorted(stack.dynamodb_exports.exports)
    for database in glue_backends[stack.account][stack.region].databases.values():
        for table in database.tables.values():
            state[f"glue:{database.name}.{table.name}"] = (table.updated_time, sorted(table.partitions))
        state[f"glue:{database.name}"] = True
    for machine in stepfunctions_backends[stack.account][stack.region].state_machines:
        state[f"states:{machine.name}"] = sorted(e.execution_arn for e in machine.executions)
    state["rds-exports"] = list(stack.rds_exports.started_exports)
    return state


def _diff(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    changes = []
    for where in sorted(set(before) | set(after)):
        old, new = before.get(where), after.get(where)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            changes += [f"{where}/{key}" for key in sorted(set(old) ^ set(new) | {k for k in old if k in new and old[k] != new[k]})]
        else:
            changes.append(f"{where}: {str(old)[:200]} -> {str(new)[:200]}")
    return changes


def _params() -> list[Any]:
    """One test per case; a case with `xfail` must fail (strict), so it is noticed once its owner fixes it."""
    return [
        pytest.param(case, id=case.id, marks=[pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else []) for case in CASES
    ]


@pytest.mark.parametrize("case", _params())
def test_malformed_input_is_refused_by_name_and_writes_nothing(corpus: tuple[EmulatedStack, Seeded], case: Case) -> None:
    stack, seeded = corpus
    function = _function(stack, case.handler)
    event = case.event(seeded) if callable(case.event) else case.event
    if case.handler == STREAM:
        event = _on_emulated_stream(event)
    before = written_state(stack)

    payload, error = _invoke(function, event)

    written = _diff(before, written_state(stack))
    if case.handler == STREAM:
        # The well-formed records of the batch land (a redelivery skips them: docs/streams.md), with their change
        # log's bookkeeping and Glue table; the malformed one, always the first, never does.
        _assert_stream_wrote_only_good_records(stack, case.id, event, written)
        written = [w for w in written if not _stream_bookkeeping(w)]
    assert not written, f"{case.id} wrote {written[:20]} ({type(error).__name__ if error else 'no error'})"
    unnamed = [e for e in _chain(error) if isinstance(e, UNNAMED)] if error else []
    assert not unnamed, f"{case.id}: {type(unnamed[0]).__name__} in the stack trace: {unnamed[0]!r}"[:2000]
    if isinstance(case.expect, Raises):
        assert error is not None, f"{case.id} was accepted: {json.dumps(payload, default=str)[:1000]}"
        assert isinstance(error, SnaplakeError), f"{case.id}: unnamed {type(error).__name__}: {error}"[:2000]
        assert type(error).__name__ == case.expect.error, f"{case.id}: {type(error).__name__}: {error}"[:2000]
        return
    assert error is None, f"{case.id} failed the whole batch: {type(error).__name__}: {error}"[:2000]
    if isinstance(case.expect, BatchItemFailures):
        assert payload == {"batchItemFailures": [{"itemIdentifier": s} for s in case.expect.sequence_numbers]}
    elif isinstance(case.expect, ProcessingFailed):
        records = payload["records"]
        assert [r["recordId"] for r in records] == case.expect.record_ids(event)
        failed = [r["recordId"] for r in records if r["result"] == "ProcessingFailed"]
        assert failed == list(case.expect.failed or case.expect.record_ids(event))


def test_corpus_covers_every_handler_with_at_least_50_inputs() -> None:
    from snaplake_local.stack import load_template

    resources = load_template()["Resources"]
    deployed = {
        f"{props['CodeUri'].rstrip('/')}/{props['Handler'].rpartition('.')[0]}.py:{props['Handler'].rpartition('.')[2]}"
        for props in (r["Properties"] for r in resources.values() if r["Type"] == "AWS::Serverless::Function")
    }
    covered = {case.handler for case in CASES}
    assert deployed <= covered, f"handlers without malformed inputs: {sorted(deployed - covered)}"
    assert covered <= deployed, f"cases name handlers template.yaml does not deploy: {sorted(covered - deployed)}"
    assert len(CASES) >= 50
    assert len({case.id for case in CASES}) == len(CASES), "case ids must be unique"
