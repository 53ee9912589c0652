"""Regenerate the per-function sample events in events/ from a real run.

`python -m snaplake_local.sample_events` runs events/rds_manual_cluster_snapshot.json and
events/dynamodb_export_request.json through their state machines on the emulator and saves the
input each step's handler received. The tests replay
these files through the handlers, so run this after changing a step's input or the plan naming.
"""

from __future__ import annotations

import json
from typing import Any

from snaplake_local.sources import EVENTS_DIR, create_orders_table, default_parameters, sample_event, seed_sample_sources
from snaplake_local.stack import EmulatedStack

STEP_EVENTS = {
    "StartExportFunction": "start_export.json",
    "PollExportFunction": "poll_export.json",
    "PlanCopyFunction": "plan_copy.json",
    "CopyBatchFunction": "copy_batch.json",
    "FinalizeCopyFunction": "finalize_copy.json",
    "DynamoDbStartExportFunction": "dynamodb_start_export.json",
    "DynamoDbPollExportFunction": "dynamodb_poll_export.json",
    "ConvertPlanFunction": "dynamodb_plan_conversion.json",
    "ConvertScanFunction": "dynamodb_scan_files.json",
    "ConvertMergeFunction": "dynamodb_merge_schema.json",
    "ConvertFilesFunction": "dynamodb_convert_files.json",
    "DynamoDbMarkPublishingFunction": "dynamodb_mark_publishing.json",
    "ConvertPublishFunction": "dynamodb_publish_files.json",
    "ConvertFinalizeFunction": "dynamodb_finalize_conversion.json",
    "DynamoDbCommitFunction": "dynamodb_commit_checkpoint.json",
    "RdsCatalogFunction": "catalog_rds.json",
    "DynamoDbCatalogFunction": "catalog_dynamodb.json",
}


def main() -> None:
    captured: dict[str, Any] = {}
    with EmulatedStack(default_parameters(), function_log_level="ERROR") as stack:
        seed_sample_sources(stack)
        logical = {stack.physical[name]["ref"]: name for name in stack.physical}
        stack.lambdas.after_invoke = lambda function, event, payload, errored: captured.setdefault(logical[function], event)
        execution = stack.run("RdsExportStateMachine", sample_event("rds_manual_cluster_snapshot.json"))
        if execution.status != "SUCCEEDED":
            raise SystemExit(f"sample run {execution.status}: {execution.cause}")
        create_orders_table(stack)
        stack.clock.advance(20 * 60)
        execution = stack.run("DynamoDbExportStateMachine", sample_event("dynamodb_export_request.json"))
        if execution.status != "SUCCEEDED":
            raise SystemExit(f"sample run {execution.status}: {execution.cause}")
    for function, name in STEP_EVENTS.items():
        (EVENTS_DIR / name).write_text(json.dumps(captured[function], indent=2) + "\n")
        print(f"wrote events/{name}")
    release = {
        "tableArn": captured["DynamoDbCommitFunction"]["tableArn"],
        "execution": captured["DynamoDbStartExportFunction"]["execution"],
    }
    (EVENTS_DIR / "dynamodb_release_lease.json").write_text(json.dumps(release, indent=2) + "\n")
    print("wrote events/dynamodb_release_lease.json")


if __name__ == "__main__":
    main()
