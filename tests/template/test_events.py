"""events/: a sample event for every trigger (rds_*.json) and every function (named after its step)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ._support import EVENTS_DIR

EVENT_FILES = sorted(path for path in EVENTS_DIR.iterdir() if path.is_file()) if EVENTS_DIR.is_dir() else []
FUNCTION_EVENTS = {
    "start_export.json",
    "poll_export.json",
    "plan_copy.json",
    "copy_batch.json",
    "finalize_copy.json",
    "catalog_rds.json",
    "catalog_dynamodb.json",
    "athena_etl_jobs.json",  # the athena_etl state machine's input (also ValidateJobs' event)
    "athena_query_step.json",  # RunJobStep: one job, its position and the cursor
}


def test_there_are_sample_events_for_every_step() -> None:
    names = {path.name for path in EVENT_FILES}
    assert names >= FUNCTION_EVENTS
    assert {"rds_automated_cluster_snapshot.json", "rds_manual_cluster_snapshot.json"} <= names
    assert {"rds_automated_instance_snapshot.json", "rds_manual_instance_snapshot.json"} <= names
    assert {"rds_export_request.json", "rds_latest_snapshot_request.json"} <= names


@pytest.mark.parametrize("path", EVENT_FILES, ids=lambda path: path.name)
def test_event_is_a_json_object_with_a_known_kind_of_name(path: Path) -> None:
    known = re.fullmatch(r"(rds|dynamodb)_[a-z0-9_]+\.json", path.name) or path.name in FUNCTION_EVENTS
    assert known, f"{path.name}: unexpected sample event"
    assert isinstance(json.loads(path.read_text()), dict), f"{path.name}: not a JSON object"
