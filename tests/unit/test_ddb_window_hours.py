"""Every dt=/hour= partition of `<table>_changes` is written by one incremental export (issue 16 item 8, the former
defect D1): windows end on whole UTC hours, so an attribute whose type changes between windows changes between
partitions, where a table version can take it, and never inside one, where no table definition reads both."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from snaplake.dynamodb.export import MAX_WINDOW, MIN_WINDOW, Checkpoint, ExportPlan, plan_next_export

from tests.unit.helpers import ACCOUNT, REGION
from tests.unit.test_ddb_real_export import REAL_EXPORT

TABLE_ARN = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/Orders"

REAL_EXPORTS = REAL_EXPORT / "AWSDynamoDB" if REAL_EXPORT else Path("/nonexistent")
HOUR = timedelta(hours=1)


class Pitr:
    """DescribeContinuousBackups of a table whose latest restorable time the test sets."""

    def __init__(self, earliest: datetime) -> None:
        self.earliest = earliest
        self.latest = earliest

    def describe_continuous_backups(self, TableName: str) -> dict[str, Any]:
        description = {
            "PointInTimeRecoveryStatus": "ENABLED",
            "EarliestRestorableDateTime": self.earliest,
            "LatestRestorableDateTime": self.latest,
        }
        return {"ContinuousBackupsDescription": {"PointInTimeRecoveryDescription": description}}


def change_hours(plan: ExportPlan) -> set[datetime]:
    """The write hours (partitions) a window's change rows can land in: write times lie in [from, to)."""
    assert plan.window_from is not None and plan.window_to is not None
    hour = plan.window_from.replace(minute=0, second=0, microsecond=0)
    hours = set()
    while hour < plan.window_to:
        hours.add(hour)
        hour += HOUR
    return hours


def windows_of_a_schedule(rng: random.Random) -> list[ExportPlan]:
    """Runs at random times (a schedule of minutes to days, a stopped schedule, a backlog) after a full export."""
    full_export = datetime(2024, 5, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(86_400))
    pitr = Pitr(full_export - timedelta(days=1))
    checkpoint = Checkpoint(TABLE_ARN, full_export, "full")
    windows: list[ExportPlan] = []
    now = full_export
    for _ in range(40):
        now += timedelta(seconds=rng.choice([rng.randrange(60, 1_800), rng.randrange(3_600, 7_200), rng.randrange(86_400, 3 * 86_400)]))
        pitr.latest = now - timedelta(minutes=5)
        while (plan := plan_next_export(pitr, TABLE_ARN, "auto", checkpoint)) is not None:  # the execution's NextWindow loop
            windows.append(plan)
            checkpoint = Checkpoint(TABLE_ARN, plan.exported_to, f"export-{len(windows)}")
    return windows


@pytest.mark.parametrize("seed", range(25))
def test_no_two_windows_of_a_table_write_the_same_change_hour(seed: int) -> None:
    windows = windows_of_a_schedule(random.Random(seed))

    assert len(windows) > 10
    seen: dict[datetime, int] = {}
    for number, plan in enumerate(windows):
        assert plan.window_from is not None and plan.window_to is not None
        assert MIN_WINDOW <= plan.window_to - plan.window_from <= MAX_WINDOW  # what AWS accepts
        assert plan.window_to == plan.window_to.replace(minute=0, second=0, microsecond=0)
        if number:
            assert plan.window_from == windows[number - 1].window_to  # every change once: no gap, no overlap
        for hour in change_hours(plan):
            assert hour not in seen, f"hour {hour:%Y-%m-%d %H}:00 written by windows {seen[hour]} and {number}"
            seen[hour] = number


@pytest.mark.skipif(REAL_EXPORT is None, reason="../shared/real-data is not next to this checkout")
def test_the_real_exports_two_windows_in_one_hour_are_one_window_here() -> None:
    """The real sample (../shared/real-data/ddb-pitr-export): a full export at 10:18:50.622, then windows 10:20-10:35 and
    10:35-10:50 taken by hand, whose change rows (written 10:21-10:26 and 10:47) both land in hour 10. From the same full
    export snaplake exports nothing before 11:00 and then one window to 11:00, the only one writing hour 10."""
    summaries = [json.loads((folder / "manifest-summary.json").read_text()) for folder in sorted(REAL_EXPORTS.glob("0*"))]
    full = next(summary for summary in summaries if "exportFromTime" not in summary)
    real_windows = [(s["exportFromTime"], s["exportToTime"]) for s in summaries if "exportFromTime" in s]
    assert real_windows == [
        ("2026-01-14T10:20:00.000Z", "2026-01-14T10:35:00.000Z"),
        ("2026-01-14T10:35:00.000Z", "2026-01-14T10:50:00.000Z"),
    ]
    export_time = datetime.fromisoformat(full["exportTime"]).replace(microsecond=0)  # as plan_next_export sets it
    pitr = Pitr(export_time - timedelta(hours=1))
    checkpoint = Checkpoint(TABLE_ARN, export_time, "full")

    pitr.latest = datetime(2026, 1, 14, 10, 50, tzinfo=UTC)
    assert plan_next_export(pitr, TABLE_ARN, "auto", checkpoint) is None
    pitr.latest = datetime(2026, 1, 14, 11, 3, tzinfo=UTC)
    plan = plan_next_export(pitr, TABLE_ARN, "auto", checkpoint)

    assert plan is not None
    assert (plan.window_from, plan.window_to) == (datetime(2026, 1, 14, 10, 18, 50, tzinfo=UTC), datetime(2026, 1, 14, 11, tzinfo=UTC))
    assert change_hours(plan) == {datetime(2026, 1, 14, 10, tzinfo=UTC)}
