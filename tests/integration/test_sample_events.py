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
    def invoke(logical_id: str, event_file: str, plan: object = None) -> dict[str, object]:
        event = sample_event(event_file)
        if plan is not None:
            # The plan folder's name hashes the lake's KMS key ARN, which is random per emulator run.
            assert event["plan"]["prefix"].rsplit("/plan-", 1)[0] == plan["prefix"].rsplit("/plan-", 1)[0]  # type: ignore[index]
            event["plan"] = plan
        payload, errored = stack.function(logical_id).invoke(event)
        assert not errored, f"{logical_id} refused events/{event_file}: {json.dumps(payload)[:500]}"
        return dict(payload)

    started = invoke("StartExportFunction", "start_export.json")
    assert started["exportTaskIdentifier"] == sample_event("poll_export.json")["exportTaskIdentifier"]
    assert invoke("PollExportFunction", "poll_export.json")["status"] == "STARTING"
    stack.clock.advance(2 * 3600)
    assert invoke("PollExportFunction", "poll_export.json")["done"] is True
    planned = invoke("PlanCopyFunction", "plan_copy.json")
    assert set(planned["workers"][0]) == set(sample_event("copy_batch.json")["share"])  # type: ignore[index]
    assert invoke("CopyBatchFunction", "copy_batch.json", plan=planned["plan"])["done"] is True
    landed = invoke("FinalizeCopyFunction", "finalize_copy.json", plan=planned["plan"])
    assert landed["tables"] == 4
    assert len([k for k in stack.lake_objects() if k.endswith(".parquet")]) == landed["objects"] == 8
