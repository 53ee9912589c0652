"""The S3 side of one Athena job run: its stored plan, the folders it must find empty, the old data it deletes.

Everything goes through snaplake.core.s3: the lake with its owner check and key
(a refused request names what to check), another bucket (e.g. for results) as is.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from snaplake.athena.cursor import Cursor
from snaplake.athena.errors import DataDeletionFailed, LocationNotEmpty
from snaplake.athena.jobs import Job
from snaplake.athena.plans import Plan, Step
from snaplake.athena.settings import AthenaSettings
from snaplake.athena.sql import validate_location
from snaplake.core.limits import S3_DELETE_OBJECTS_MAX_KEYS
from snaplake.core.s3 import Bucket

RESERVE_MS = 30_000  # time a step needs that is not started near the end of an invocation


def split_location(location: str) -> tuple[str, str]:
    bucket, _, prefix = validate_location(location)[len("s3://") :].partition("/")
    return bucket, prefix


@dataclass
class JobStorage:
    """S3 for one job of one execution."""

    s3: Any
    settings: AthenaSettings
    job: Job
    remaining_ms: Callable[[], int]
    _steps: list[Step] | None = field(default=None, repr=False)

    def _bucket(self, location: str) -> Bucket:
        return self.settings.bucket(self.s3, split_location(location)[0])

    def keys(self, location: str) -> list[str]:
        bucket = self._bucket(location)
        return [obj["Key"] for obj in bucket.objects_under(split_location(location)[1])]

    def require_empty(self, location: str) -> None:
        bucket = self._bucket(location)
        found = [obj["Key"] for obj in bucket.first_objects_under(split_location(location)[1], max_keys=1)]
        if found:
            raise LocationNotEmpty(
                f"job {self.job.name}: {location} already holds objects (e.g. {found[0]}); Athena writes a new table's data "
                "only into an empty folder: delete them or choose another externalLocation"
            )

    def delete_location(self, location: str, keep: str | None) -> bool:
        """Delete every object under `location` except those under `keep`; False when out of time (call again)."""
        bucket = self._bucket(location)
        kept = split_location(keep)[1] if keep else None
        doomed = [key for key in self.keys(location) if not (kept and key.startswith(kept))]
        for start in range(0, len(doomed), S3_DELETE_OBJECTS_MAX_KEYS):
            if start and self.remaining_ms() < RESERVE_MS:
                return False
            errors = bucket.delete_keys(doomed[start : start + S3_DELETE_OBJECTS_MAX_KEYS])
            if errors:
                first = errors[0]
                raise DataDeletionFailed(
                    f"job {self.job.name}: {len(errors)} objects under {location} were not deleted, "
                    f"e.g. {first.get('Key')}: {first.get('Code')} {first.get('Message', '')}"
                )
        return True

    def store_plan(self, cursor: Cursor, plan: Plan) -> None:
        bucket = self._bucket(self.settings.work_location)
        key = f"{split_location(self.settings.work_location)[1]}plans/{self.job.name}/{cursor.run_id}.json"
        body = {"job": self.job.as_json(), "runId": cursor.run_id, "createdAt": datetime.now(UTC).isoformat(), **plan.as_json()}
        bucket.write_bytes(key, json.dumps(body, indent=1).encode(), content_type="application/json")
        cursor.plan = {"bucket": bucket.name, "key": key}
        cursor.steps, cursor.step = len(plan.steps), 0
        cursor.phase = "done" if plan.skipped or not plan.steps else "steps"
        cursor.skipped, cursor.reason = plan.skipped, plan.reason
        self._steps = list(plan.steps)

    def load_steps(self, cursor: Cursor) -> list[Step]:
        if self._steps is None:
            assert cursor.plan is not None
            bucket = self.settings.bucket(self.s3, cursor.plan["bucket"])
            self._steps = [Step(**step) for step in bucket.read_json(cursor.plan["key"])["steps"]]
        return self._steps
