"""Regenerate the per-function sample events in events/ from a real run.

`python -m snaplake_local.sample_events` runs events/rds_manual_cluster_snapshot.json through the
state machine on the emulator and saves the input each step's handler received. The tests replay
these files through the handlers, so run this after changing a step's input or the plan naming.
"""

from __future__ import annotations

import json
from typing import Any

from snaplake_local.sources import EVENTS_DIR, default_parameters, sample_event, seed_sample_sources
from snaplake_local.stack import LocalStack

STEP_EVENTS = {
    "StartExportFunction": "start_export.json",
    "PollExportFunction": "poll_export.json",
    "PlanCopyFunction": "plan_copy.json",
    "CopyBatchFunction": "copy_batch.json",
    "FinalizeCopyFunction": "finalize_copy.json",
}


def main() -> None:
    captured: dict[str, Any] = {}
    with LocalStack(default_parameters(), function_log_level="ERROR") as stack:
        seed_sample_sources(stack)
        logical = {stack.physical[name]["ref"]: name for name in stack.physical}
        stack.lambdas.after_invoke = lambda function, event, payload, errored: captured.setdefault(logical[function], event)
        execution = stack.run("RdsExportStateMachine", sample_event("rds_manual_cluster_snapshot.json"))
        if execution.status != "SUCCEEDED":
            raise SystemExit(f"sample run {execution.status}: {execution.cause}")
    for function, name in STEP_EVENTS.items():
        (EVENTS_DIR / name).write_text(json.dumps(captured[function], indent=2) + "\n")
        print(f"wrote events/{name}")


if __name__ == "__main__":
    main()
