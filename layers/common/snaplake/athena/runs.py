"""One run of the Athena SQL jobs (ValidateJobs): its job list, inline or from a definitions file in the lake, its
run time and time zone, the landing that started it; variables applied and every job validated before any runs.

The state machine's input, all fields optional but one of `jobs` / `jobsFile`:

- `jobs`: the job documents; or `jobsFile`: `<name>.json` under the definitions folder
  (`<jobs folder>_definitions/`), holding a list of jobs or `{"timeZone": ..., "jobs": [...]}`;
- a job's `queryFile` (instead of `query`): a `.sql` file under the definitions folder;
- `scheduledTime`: the run time (the schedule passes its scheduled time; set it by hand to re-run a past day),
  else the landing's `landedAt`, else the execution's start time;
- `timeZone`: an IANA zone for the time variables (else the file's, else ATHENA_JOBS_TIME_ZONE);
- `landed`: a `Lake Partition Landed` event's detail (the landing rule passes it); a landing is run once, whatever
  the number of deliveries: the first execution to claim its `landingId` runs it, a later one runs no job.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from snaplake.athena.errors import InvalidJob
from snaplake.athena.jobs import _partition_values, validate_jobs
from snaplake.athena.lake import split_location
from snaplake.athena.settings import AthenaSettings
from snaplake.athena.sql import validate_identifier, validate_location
from snaplake.athena.variables import RunVariables
from snaplake.core.claims import is_conflict
from snaplake.core.times import parse_iso_utc

RUN_FIELDS = frozenset({"jobs", "jobsFile", "scheduledTime", "timeZone", "landed"})
_FILE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.=-]*(?:/[A-Za-z0-9_][A-Za-z0-9_.=-]*)*")
MAX_DEFINITION_BYTES = 256 * 1024
# The validated jobs travel in the execution's state (256 KB per payload): leave room for results and cursors.
MAX_RUN_BYTES = 128 * 1024


def _definition(settings: AthenaSettings, s3: Any, name: Any, suffix: str, where: str) -> bytes:
    if not isinstance(name, str) or not name.endswith(suffix) or not _FILE.fullmatch(name) or ".." in name.split("/"):
        raise InvalidJob(f"{where}: {name!r} is not a {suffix} file name under the definitions folder (letters, digits, _ . = - and /)")
    bucket_name, prefix = split_location(settings.definitions_location)
    bucket = settings.bucket(s3, bucket_name)
    found = bucket.metadata(prefix + name)
    if found is None:
        raise InvalidJob(f"{where}: {settings.definitions_location}{name} does not exist")
    if int(found.get("ContentLength", 0)) > MAX_DEFINITION_BYTES:
        raise InvalidJob(f"{where}: {settings.definitions_location}{name} is larger than {MAX_DEFINITION_BYTES} bytes")
    return bucket.read_bytes(prefix + name)


def _zone(name: Any, where: str) -> ZoneInfo:
    if not isinstance(name, str) or not name or name.startswith(("/", ".")):
        raise InvalidJob(f"{where}: 'timeZone' must be an IANA time zone name such as Europe/Berlin, got {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidJob(f"{where}: 'timeZone' {name!r} is not an IANA time zone name") from None


def _time(value: Any, what: str) -> datetime:
    problem = f"'{what}' must be an ISO 8601 time with its zone, e.g. 2026-12-04T05:00:00Z, got {value!r}"
    if not isinstance(value, str):
        raise InvalidJob(problem)
    try:
        return parse_iso_utc(value)
    except ValueError:
        raise InvalidJob(problem) from None


def checked_landing(raw: Any) -> dict[str, Any]:
    """A landing event's detail, held to the event schema before any value of it reaches SQL (docs/events.md)."""
    where = "'landed'"
    if not isinstance(raw, dict) or raw.get("version") != 1:
        raise InvalidJob(f"{where} must be the detail of a snaplake 'Lake Partition Landed' event (version 1)")
    landing_id = raw.get("landingId")
    if not isinstance(landing_id, str) or not re.fullmatch(r"[0-9a-f]{16,64}", landing_id):
        raise InvalidJob(f"{where}: 'landingId' must be the event's hex landing id")
    for key in ("database", "table"):
        validate_identifier(raw.get(key), f"landed {key}")
    partition = raw.get("partition", {})
    if partition != {}:  # an unpartitioned table lands with {}
        _partition_values(partition, where, names_folder=True)  # the same rules as a job's partition values
    validate_location(raw.get("location"))
    rows = raw.get("rows")
    if rows is not None and (isinstance(rows, bool) or not isinstance(rows, int)):
        raise InvalidJob(f"{where}: 'rows' must be an integer")
    pipeline = raw.get("pipeline")
    if not isinstance(pipeline, str) or not re.fullmatch(r"[a-z_]{1,32}", pipeline):
        raise InvalidJob(f"{where}: 'pipeline' must be a pipeline name such as rds")
    snapshot = raw.get("snapshotTime")
    landed = {
        "landingId": landing_id,
        "database": raw["database"],
        "table": raw["table"],
        "partition": dict(partition),
        "location": raw["location"],
        "rows": rows,
        "pipeline": pipeline,
        "snapshot_time": _time(snapshot, "landed.snapshotTime").strftime("%Y-%m-%dT%H:%M:%SZ") if snapshot is not None else None,
    }
    if raw.get("landedAt") is not None:
        landed["landedAt"] = _time(raw["landedAt"], "landed.landedAt")
    return landed


def _with_query_files(jobs: Any, settings: AthenaSettings, s3: Any) -> Any:
    if not isinstance(jobs, list):
        return jobs
    loaded = []
    for index, job in enumerate(jobs):
        if isinstance(job, dict) and "queryFile" in job:
            where = f"job #{index + 1}"
            if "query" in job:
                raise InvalidJob(f"{where}: give 'query' or 'queryFile', not both")
            text = _definition(settings, s3, job["queryFile"], ".sql", where)
            try:
                query = text.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidJob(f"{where}: {job['queryFile']} is not UTF-8 text") from None
            job = {key: value for key, value in job.items() if key != "queryFile"} | {"query": query}
        loaded.append(job)
    return loaded


def load_run(
    raw: Any,
    settings: AthenaSettings,
    s3: Any,
    states: Any,
    *,
    execution: Any = None,
    start_time: Any = None,
) -> dict[str, Any]:
    """The run's validated jobs (variables applied), its variables, and whether it is a repeated landing delivery."""
    if not isinstance(execution, str | None) or not isinstance(start_time, str | None):
        raise InvalidJob("'execution' and 'startTime' must be strings (the execution's id and start time)")
    if not isinstance(raw, dict):
        raise InvalidJob('the run\'s input must be a JSON object such as {"jobs": [...]} or {"jobsFile": "daily.json"}')
    unknown = sorted(set(raw) - RUN_FIELDS)
    if unknown:
        raise InvalidJob(f"the run's input has fields {unknown} it does not use (it takes {sorted(RUN_FIELDS)})")
    if ("jobs" in raw) == ("jobsFile" in raw):
        raise InvalidJob("the run's input needs 'jobs' (a list of job documents) or 'jobsFile' (a definitions file), one of them")
    zone_name: Any = settings.time_zone
    jobs = raw.get("jobs")
    if "jobsFile" in raw:
        try:
            document = json.loads(_definition(settings, s3, raw["jobsFile"], ".json", "'jobsFile'"))
        except ValueError as error:
            raise InvalidJob(f"'jobsFile' {raw['jobsFile']} is not JSON: {error}") from None
        if isinstance(document, dict) and set(document) <= {"jobs", "timeZone"} and "jobs" in document:
            zone_name = document.get("timeZone", zone_name)
            jobs = document["jobs"]
        else:
            jobs = document
    zone = _zone(raw.get("timeZone", zone_name), "the run")
    landed = checked_landing(raw["landed"]) if "landed" in raw else None
    if "scheduledTime" in raw:
        run_time = _time(raw["scheduledTime"], "scheduledTime")
    elif landed is not None and "landedAt" in landed:
        run_time = landed["landedAt"]
    elif start_time is not None:
        run_time = _time(start_time, "startTime")
    else:
        run_time = datetime.now(UTC).replace(microsecond=0)
    variables = RunVariables(run_time, zone, landed)
    jobs = _with_query_files(jobs, settings, s3)
    if isinstance(jobs, list):
        jobs = [variables.apply(job, f"job #{index + 1}") for index, job in enumerate(jobs)]
    run: dict[str, Any] = {"jobs": validate_jobs(jobs, settings), "variables": variables.as_json()}
    if landed is not None:
        other = _landing_taken(settings, s3, states, landed["landingId"], execution)
        if other is not None:
            run["jobs"] = []
            run["skipped"] = f"landing {landed['landingId']} is run by execution {other} (a repeated event delivery)"
    if len(json.dumps(run)) > MAX_RUN_BYTES:
        raise InvalidJob(f"the run's jobs take more than {MAX_RUN_BYTES} bytes of JSON: split them over several runs")
    return run


def _landing_taken(settings: AthenaSettings, s3: Any, states: Any, landing_id: str, execution: str | None) -> str | None:
    """Claim the landing's jobs for this execution (S3 conditional writes). Another execution keeps them while it runs
    or once it succeeded (its id is returned); one that failed, was aborted or timed out hands them over, so a new
    run repairs what it left."""
    bucket_name, prefix = split_location(settings.work_location)
    bucket, key = settings.bucket(s3, bucket_name), f"{prefix}landings/{landing_id}.json"
    mine = {"execution": execution or "local"}
    body = json.dumps(mine).encode()
    for _ in range(5):
        found = bucket.read_json_with_etag(key)
        try:
            if found is None:
                bucket.write_bytes(key, body, "application/json", if_none_match=True)
                return None
            recorded, etag = found
            holder = recorded.get("execution") if isinstance(recorded, dict) else None
            if holder == mine["execution"]:
                return None
            if not isinstance(holder, str) or not holder.startswith("arn:"):
                return str(holder)
            if states.describe_execution(executionArn=holder)["status"] in ("RUNNING", "SUCCEEDED", "PENDING_REDRIVE"):
                return holder
            bucket.write_bytes(key, body, "application/json", if_match=etag)
            return None
        except Exception as error:
            if not is_conflict(error):
                raise
    raise InvalidJob(f"landing {landing_id}: its claim {bucket.uri(key)} kept changing hands; start the run again")
