"""Where a job run is, small enough for the state payload whatever the plan's size, and the run's identity."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from snaplake.athena.errors import InvalidJob


def run_id_for(execution: str | None, start_time: str | None, index: int) -> str:
    """`<yyyymmdd>t<hhmmss>_<hash>`: the same for every call of one job in one execution (retries
    included), so staging tables, folders and query tokens are stable; new per execution."""
    started = datetime.now(UTC)
    if start_time:
        try:
            started = datetime.fromisoformat(start_time.replace("Z", "+00:00")).astimezone(UTC)
        except ValueError:
            raise InvalidJob(f"startTime {start_time!r} is not an ISO 8601 timestamp") from None
    seed = f"{execution}#{index}" if execution else uuid.uuid4().hex
    return f"{started:%Y%m%dt%H%M%S}_{hashlib.sha256(seed.encode()).hexdigest()[:8]}"


@dataclass
class Cursor:
    """Where a job is: small enough for the state payload whatever the plan's size."""

    run_id: str
    phase: str = "start"  # start -> (partitions) -> steps -> done
    plan: dict[str, str] | None = None  # {"bucket", "key"} of the stored plan
    step: int = 0
    steps: int = 0
    query_execution_id: str | None = None
    wait_seconds: int = 0
    queries: int = 0
    output_location: str | None = None
    skipped: bool = False
    reason: str = ""

    @property
    def done(self) -> bool:
        return self.phase == "done"

    @classmethod
    def parse(cls, raw: Any, run_id: str) -> Cursor:
        if raw in (None, {}):
            return cls(run_id)
        if not isinstance(raw, dict) or raw.get("runId") != run_id or raw.get("phase") not in ("start", "partitions", "steps", "done"):
            raise InvalidJob("'cursor' must be {} or the cursor the previous step returned for this job and execution")
        return cls(
            run_id=run_id,
            phase=raw["phase"],
            plan=raw.get("plan"),
            step=int(raw.get("step", 0)),
            steps=int(raw.get("steps", 0)),
            query_execution_id=raw.get("queryExecutionId"),
            wait_seconds=int(raw.get("waitSeconds", 0)),
            queries=int(raw.get("queries", 0)),
            output_location=raw.get("outputLocation"),
            skipped=bool(raw.get("skipped", False)),
            reason=str(raw.get("reason", "")),
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "runId": self.run_id,
            "phase": self.phase,
            "plan": self.plan,
            "step": self.step,
            "steps": self.steps,
            "queryExecutionId": self.query_execution_id,
            "waitSeconds": self.wait_seconds,
            "queries": self.queries,
            "outputLocation": self.output_location,
            "skipped": self.skipped,
            "reason": self.reason,
            "done": self.done,
        }
