"""Every function's sample event in events/ is accepted by its handler (what `sam local invoke -e` would send)."""

import json

import pytest
from snaplake_local.sources import EVENTS_DIR, sample_event
from snaplake_local.stack import LocalStack

TRIGGERS = sorted(p.name for p in EVENTS_DIR.glob("rds_*.json"))


@pytest.mark.parametrize("event_file", TRIGGERS)
def test_snapshot_filter_accepts_every_trigger_sample(stack: LocalStack, event_file: str) -> None:
    payload, errored = stack.function("SnapshotFilterFunction").invoke(sample_event(event_file))

    assert not errored, payload
    assert isinstance(payload["export"], bool) and payload["reason"]


def test_each_step_accepts_its_sample_event_in_pipeline_order(stack: LocalStack) -> None:
    def invoke(logical_id: str, event_file: str) -> dict[str, object]:
        payload, errored = stack.function(logical_id).invoke(sample_event(event_file))
        assert not errored, f"{logical_id} refused events/{event_file}: {json.dumps(payload)[:500]}"
        return dict(payload)

    started = invoke("StartExportFunction", "start_export.json")
    assert started["exportTaskIdentifier"] == sample_event("poll_export.json")["exportTaskIdentifier"]
    assert invoke("PollExportFunction", "poll_export.json")["status"] == "STARTING"
    stack.clock.advance(2 * 3600)
    assert invoke("PollExportFunction", "poll_export.json")["done"] is True
    planned = invoke("PlanCopyFunction", "plan_copy.json")
    assert planned["plan"] == sample_event("copy_batch.json")["plan"] == sample_event("finalize_copy.json")["plan"]
    assert invoke("CopyBatchFunction", "copy_batch.json")["done"] is True
    landed = invoke("FinalizeCopyFunction", "finalize_copy.json")
    assert landed["tables"] == 4
    assert len([k for k in stack.lake_objects() if k.endswith(".parquet")]) == landed["objects"] == 8
