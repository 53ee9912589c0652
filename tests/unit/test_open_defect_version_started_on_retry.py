"""D3: `tableVersionStarted` (what the docs tell people to put an EventBridge rule on) is computed from "did this
invocation create the version table". When the step fails after creating `<table>__v2` (PutEvents failing,
LandingEventsNotPut, whose documented recovery is "the step's retry puts every event again"), the retry's landing
event says tableVersionStarted=false: the only event ever put about the new version does not announce it."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from snaplake.catalog import rds_landings, register_landed
from snaplake_local.emulator import enforce_table_version_ids

from tests.unit.helpers import REGION
from tests.unit.test_catalog_versions import FIRST, INT_ZIP, LAKE, SECOND, TEXT_ZIP, land

# Fails until the defect is fixed; then it passes and strict xfail fails the suite: remove this mark.
pytestmark = pytest.mark.xfail(
    strict=True,
    reason="open defect D3 of issue 16 item 8, docs/catalog.md#known-defects",
)


def attempt(glue: Any, s3: Any, landed: dict[str, Any]) -> dict[str, Any]:
    """What rds_handler does up to PutEvents: register, then build the landing events."""
    registered = [r.as_json() for r in register_landed(glue, s3, landed)]
    request = {"exportTaskIdentifier": "export-2", "snapshotTime": "2024-05-02T00:00:00Z"}
    return rds_landings(request, landed, registered)[0].detail("2024-05-02T01:00:00Z")


def test_the_retry_after_landing_events_not_put_still_announces_the_new_version(s3: Any) -> None:
    with enforce_table_version_ids():
        glue = boto3.client("glue", region_name=REGION)
        s3.create_bucket(Bucket=LAKE, CreateBucketConfiguration={"LocationConstraint": REGION})
        register_landed(glue, s3, land(s3, FIRST, INT_ZIP))
        landed = land(s3, SECOND, TEXT_ZIP)
        landed["tables"][0].update(rows=1, objects=1, bytes=10)

        first = attempt(glue, s3, landed)  # PutEvents then fails: LandingEventsNotPut, the step is retried
        assert first["tableVersionStarted"] is True
        retried = attempt(glue, s3, landed)  # the retry: the only landing event that reaches EventBridge

        assert retried["table"] == "customers__v2"
        assert retried["tableVersionStarted"] is True, "the retried step's event no longer says a version started"
