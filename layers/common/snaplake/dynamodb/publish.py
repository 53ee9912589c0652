"""FinalizeConversion: publish a converted DynamoDB export into the lake, all of it or nothing visible.

Converted files wait under `_snaplake_staging/<export id>/` in the lake bucket.
Nothing of the export is visible in the lake until every file converted and
the row counts add up to the manifest; then each PublishFiles child copies its
share's files into place and drops its share's staged copies (a retry whose
staged copy is gone finds the object already in place), and once every child
finished, FinalizeConversion checks the counts and writes the partitions'
`_SUCCESS` markers. No step handles every file of the export in one invocation:
a child handles its share, looping on a time-budget cursor like ScanFiles and
ConvertFiles, and FinalizeConversion reads one record per share (one per
invocation of a share that needed more than one).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from snaplake.core import metrics
from snaplake.core.aws import error_code, is_not_found
from snaplake.core.errors import InvalidEvent, PlanMissing
from snaplake.core.handler_input import integer
from snaplake.core.limits import S3_DELETE_OBJECTS_MAX_KEYS
from snaplake.core.names import SUCCESS_MARKER, join_key
from snaplake.core.s3 import Bucket
from snaplake.core.times import iso_utc, parse_iso_utc
from snaplake.dynamodb.conversion import (
    MAX_SHARES,
    PLAN_THREADS,
    PUBLISHED,
    Plan,
    carry,
    conversion_of,
    plan_files,
    share_chain,
    share_of,
    staging_key,
    totals,
)
from snaplake.dynamodb.errors import ConversionIncomplete, CountMismatch
from snaplake.dynamodb.settings import ConversionSettings

log = logging.getLogger(__name__)

# Server-side copies run in parallel, so exports of thousands of files publish well inside the
# function's timeout (one copy takes about 50-500 ms, mostly waiting on S3).
PUBLISH_THREADS = 16


def publish(lake: Bucket, staged: str, key: str) -> None:
    """Copy a staged object to its place in the lake (multipart when large); the staged copy stays (see drop_staged).

    Repeatable: when a retry finds the staged copy gone, the object must already be in its place.
    """
    try:
        lake.copy_within(staged, key)
    except Exception as error:
        if not is_not_found(error) or lake.metadata(key) is None:
            raise
        # published by an earlier attempt, which also dropped the staged copy


def drop_staged(lake: Bucket, keys: list[str]) -> None:
    """Delete staged copies once they are published; best effort (deleting a missing key is not an error).

    By now the files are in their lake keys: failing the run here would make the next run export the
    window again and count its changes twice. Leftovers expire with the lake bucket's lifecycle rule for
    `_snaplake_staging/`.
    """
    for start in range(0, len(keys), S3_DELETE_OBJECTS_MAX_KEYS):
        chunk = keys[start : start + S3_DELETE_OBJECTS_MAX_KEYS]
        try:
            errors = lake.delete_keys(chunk)
        except ClientError as error:
            errors = [{"Key": chunk[0], "Code": error_code(error), "Message": str(error)}]
        for failed in errors[:5]:
            log.warning(
                "staged copy not deleted (its lifecycle rule will): %s: %s %s", failed.get("Key"), failed.get("Code"), failed.get("Message")
            )


def publish_share(
    s3: Any, request: dict[str, Any], settings: ConversionSettings, remaining_ms: Callable[[], int], reserve_ms: int = 120_000
) -> dict[str, Any]:
    """PublishFiles child: copy the share's converted files to their lake keys from its cursor on, PUBLISH_THREADS files
    at a time, until done or out of time; drop their staged copies; then record what this invocation published
    (`published/share-<n>-from-<first file>.json`: files, rows, partitions, and the cursor it hands on as `next`), so
    FinalizeConversion follows each share's chain (`share_chain`), one object per invocation, not one per file.

    Repeatable from any cursor: a retry (the invocation died, or its result was lost) copies the same files again to
    the same keys or finds them in place (`publish`), and overwrites the record; if it stops at another file, the
    chain follows the new record and never reads what the earlier attempt wrote further on.
    """
    plan, worker, workers, count, start = share_of(request)
    export_id = conversion_of(request)[3]
    export, lake = settings.export(s3, plan.bucket), settings.lake(s3)
    pending = sorted(index for index in plan_files(export, plan, worker, workers, count) if index >= start)
    results: list[dict[str, Any]] = []
    with ThreadPoolExecutor(max_workers=PUBLISH_THREADS, thread_name_prefix="snaplake-publish") as pool:
        while pending and not (results and remaining_ms() < reserve_ms):  # each invocation publishes at least one round
            batch, pending = pending[:PUBLISH_THREADS], pending[PUBLISH_THREADS:]
            converted = list(pool.map(lambda i: _converted(export, plan, i), batch))
            batch_keys = [key for result in converted for key in result["keys"]]
            list(pool.map(lambda key: publish(lake, staging_key(settings, export_id, key), key), batch_keys))
            results.extend(converted)
    keys = [key for result in results for key in result["keys"]]
    drop_staged(lake, [staging_key(settings, export_id, key) for key in keys])
    following = pending[0] if pending else None
    summary = {
        "share": {"worker": worker, "workers": workers, "files": count},  # the plan's, as plan_files checked them
        "files": len(results),
        "rows": sum(int(r["rows"]) for r in results),
        "partitions": sorted({k.rsplit("/", 1)[0] for k in keys}),
        "partitionTotals": _partition_totals(results),
        "objects": len(keys),
        "bytes": sum(int(r.get("bytes", 0)) for r in results),
        "next": following,
    }
    export.write_bytes(plan.share_result(PUBLISHED, worker, start), json.dumps(summary).encode())
    return {**carry(request), "cursor": following, "done": following is None}


def _partition_totals(results: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Rows, files and bytes per partition (`<prefix>/`) of converted files, as ConvertFiles recorded them."""
    totals: dict[str, dict[str, int]] = {}
    for result in results:
        if "landed" not in result:
            raise ConversionIncomplete("a data file was converted before per-partition totals were kept; the next run converts it again")
        for key, landed in result["landed"].items():
            _add_totals(totals, key.rsplit("/", 1)[0] + "/", {**landed, "files": 1})
    return totals


def _add_totals(totals: dict[str, dict[str, int]], prefix: str, counted: dict[str, Any]) -> None:
    total = totals.setdefault(prefix, {"rows": 0, "files": 0, "bytes": 0})
    for name in total:
        total[name] += int(counted[name])


def _converted(export: Bucket, plan: Plan, index: int) -> dict[str, Any]:
    try:
        return dict(export.read_json(plan.file_result("converted", index)))
    except Exception as error:
        if is_not_found(error):
            raise ConversionIncomplete(f"data file {index} is not converted") from None
        raise


def finalize_conversion(s3: Any, request: dict[str, Any], settings: ConversionSettings) -> dict[str, Any]:
    """Every share published and the rows add up to the manifest: then `_SUCCESS` in each partition, last.

    Reads each share's records (one per PublishFiles invocation, usually one; at most MAX_SHARES shares, in
    parallel) and writes one marker per partition (a full export has one, an incremental one at most the hours of
    its 24 h window, plus one); the children dropped their staged copies, and whatever one of them could not drop
    is swept here, one listing page at most.
    """
    plan = Plan.from_request(request)
    count, expected = totals(request)
    shares = integer(request.get("shares"), "shares", 1, MAX_SHARES)
    export_id = conversion_of(request)[3]
    export, lake = settings.export(s3, plan.bucket), settings.lake(s3)
    with ThreadPoolExecutor(max_workers=PLAN_THREADS, thread_name_prefix="snaplake-finalize") as pool:
        chains = list(pool.map(lambda w: _published(export, plan, w, shares), range(shares)))
    for worker, chain in enumerate(chains):  # each record names the plan's share: the request must agree
        for recorded in (r.get("share") for r in chain or []):
            if isinstance(recorded, dict) and recorded != {"worker": worker, "workers": shares, "files": count}:
                raise InvalidEvent(
                    f"the request counts {count} data files in {shares} shares, the plan {recorded['files']} in {recorded['workers']}"
                )
    missing = [w for w, chain in enumerate(chains) if chain is None]
    if missing:
        raise ConversionIncomplete(f"{len(missing)} of {shares} shares are not published (first: {missing[0]})")
    published = [record for chain in chains for record in chain or []]
    files, rows = sum(int(r["files"]) for r in published), sum(int(r["rows"]) for r in published)
    if files != count:
        raise ConversionIncomplete(f"{files} of {count} data files are published")
    if rows != expected:
        raise CountMismatch(f"wrote {rows} rows in all, manifest-summary.json says {expected} items")
    # An export without items lands nothing: no empty Parquet object, no partition, nothing to register.
    partitions = sorted({p for r in published for p in r["partitions"]})
    if any("partitionTotals" not in r for r in published):
        raise ConversionIncomplete("a share was published before its per-partition totals were recorded; the next run publishes it again")
    partition_totals: dict[str, dict[str, int]] = {}
    for result in published:
        for prefix, counted in result["partitionTotals"].items():
            _add_totals(partition_totals, prefix, counted)
    for partition in partitions:
        lake.write_bytes(f"{partition}/{SUCCESS_MARKER}", b"")
    staging = join_key(settings.prefix, "_snaplake_staging", export_id) + "/"
    drop_staged(lake, [obj["Key"] for obj in lake.first_objects_under(staging)])
    kind, table, exported_to = conversion_of(request)[:3]
    landed = {
        "RowsLanded": rows,
        "FilesLanded": sum(int(r.get("objects", 0)) for r in published),
        "BytesLanded": sum(int(r.get("bytes", 0)) for r in published),
        "LandingLag": (datetime.now(UTC) - parse_iso_utc(exported_to)).total_seconds(),
    }
    source = export.read_json(plan.summary_key).get("source", table)  # the DynamoDB table's own name, as in its ARN
    metrics.publish(metrics.DYNAMODB, source, table if kind == "full" else f"{table}_changes", **landed)
    return {
        "rows": rows,
        "files": count,
        "partitions": len(partitions),
        "partitionPrefixes": [p + "/" for p in partitions],
        "partitionTotals": partition_totals,  # rows, files and bytes per prefix, for the landing events
        "lakeBucket": settings.bucket,
        "finishedAt": iso_utc(datetime.now(UTC)),
    }


def _published(export: Bucket, plan: Plan, worker: int, shares: int) -> list[dict[str, Any]] | None:
    """What the share's PublishFiles invocations recorded, or None while the share is not all published."""
    try:
        return share_chain(export, plan, PUBLISHED, worker, shares)
    except PlanMissing:
        return None
