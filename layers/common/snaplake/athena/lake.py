"""The S3 side of one Athena job run: its stored plan, the folders it must find empty, the old data it deletes.

Everything goes through snaplake.core.s3: the lake with its owner check and key
(a refused request names what to check), another bucket (e.g. for results) as is.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from snaplake.athena.cursor import Cursor
from snaplake.athena.errors import DataDeletionFailed, LocationNotEmpty, PlanTampered
from snaplake.athena.guard import check_step
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

    def _first_key(self, location: str) -> list[str]:
        return [obj["Key"] for obj in self._bucket(location).first_objects_under(split_location(location)[1], max_keys=1)]

    def is_empty(self, location: str) -> bool:
        return not self._first_key(location)

    def require_empty(self, location: str) -> None:
        found = self._first_key(location)
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

    def plan_key(self, run_id: str) -> tuple[str, str]:
        """(bucket, key) of the run's plan: `<work location>plans/<job>/<run id>.json`."""
        bucket, prefix = split_location(self.settings.work_location)
        return bucket, f"{prefix}plans/{self.job.name}/{run_id}.json"

    def store_plan(self, cursor: Cursor, plan: Plan) -> None:
        """Store the plan (every step checked against the job rules first) and put its SHA-256 in the cursor.

        The lake is writable by every pipeline function and LakeWriterAccounts; the cursor lives in the execution's
        state, which only the state machine writes. `load_steps` runs nothing but the exact bytes stored here."""
        for step in plan.steps:
            check_step(self.job, step, self.settings)
        bucket_name, key = self.plan_key(cursor.run_id)
        body = {"job": self.job.as_json(), "runId": cursor.run_id, "createdAt": datetime.now(UTC).isoformat(), **plan.as_json()}
        data = json.dumps(body, indent=1).encode()
        self.settings.bucket(self.s3, bucket_name).write_bytes(key, data, content_type="application/json")
        cursor.plan = {"bucket": bucket_name, "key": key, "sha256": hashlib.sha256(data).hexdigest()}
        cursor.steps, cursor.step = len(plan.steps), 0
        cursor.phase = "done" if plan.skipped or not plan.steps else "steps"
        cursor.skipped, cursor.reason = plan.skipped, plan.reason
        self._steps = list(plan.steps)

    def load_steps(self, cursor: Cursor) -> list[Step]:
        """The stored plan's steps, refused with `PlanTampered` unless the object holds exactly the bytes this run stored
        for this job (a plan changed, replaced or copied from another run or job is never run)."""
        if self._steps is None:
            where = f"job {self.job.name}: the stored plan"
            expected = self.plan_key(cursor.run_id)
            plan = cursor.plan or {}
            if (plan.get("bucket"), plan.get("key")) != expected or not isinstance(plan.get("sha256"), str):
                raise PlanTampered(f"{where}: the cursor does not name this run's plan s3://{expected[0]}/{expected[1]} and its digest")
            data = self.settings.bucket(self.s3, expected[0]).read_bytes(expected[1])
            if not hmac.compare_digest(hashlib.sha256(data).hexdigest(), plan["sha256"]):
                raise PlanTampered(
                    f"{where} s3://{expected[0]}/{expected[1]} is not the one this run wrote (its SHA-256 differs): it was changed "
                    "or replaced after planning; nothing of it runs. Find who wrote it (S3 server access logs), then start a new run"
                )
            body = json.loads(data)
            if body.get("job") != self.job.as_json() or body.get("runId") != cursor.run_id:
                raise PlanTampered(f"{where} belongs to another job or run")
            self._steps = [Step(**step) for step in body["steps"]]
        return self._steps
