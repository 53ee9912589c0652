"""FinalizeConversion: publish a converted DynamoDB export into the lake, all of it or nothing visible.

Converted files wait under `_snaplake_staging/<export id>/` in the lake bucket.
Nothing of the export is visible in the lake until every file converted and
the row counts add up to the manifest; then every file is copied into place,
the partitions get their `_SUCCESS` markers, and only then are the staged
copies dropped, so a retry after a failure anywhere in between finds
everything it needs.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from snaplake.core.aws import error_code, is_not_found
from snaplake.core.limits import S3_DELETE_OBJECTS_MAX_KEYS
from snaplake.core.names import SUCCESS_MARKER
from snaplake.core.s3 import Bucket
from snaplake.core.times import iso_utc
from snaplake.dynamodb.conversion import Plan, conversion_of, plan_files, staging_key, totals
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
    """Delete staged copies once everything is published; best effort (deleting a missing key is not an error).

    By now the export is in the lake with its `_SUCCESS` markers: failing the run here would make the next
    run export the window again and count its changes twice. Leftovers expire with the lake bucket's
    lifecycle rule for `_snaplake_staging/`.
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


def finalize_conversion(s3: Any, request: dict[str, Any], settings: ConversionSettings) -> dict[str, Any]:
    """Every file converted and the rows add up to the manifest: then `_SUCCESS` in each partition, last."""
    plan = Plan.from_request(request)
    count, expected = totals(request)
    export_id = conversion_of(request)[3]
    export, lake = settings.export(s3, plan.bucket), settings.lake(s3)
    plan_files(export, plan, count)
    converted = {obj["Key"] for obj in export.objects_under(f"{plan.prefix}converted/")}
    missing = [i for i in range(count) if plan.file_result("converted", i) not in converted]
    if missing:
        raise ConversionIncomplete(f"{len(missing)} of {count} data files are not converted (first: {missing[0]})")
    with ThreadPoolExecutor(max_workers=PUBLISH_THREADS, thread_name_prefix="snaplake-publish") as pool:
        results = list(pool.map(lambda i: export.read_plan(plan.file_result("converted", i)), range(count)))
        rows = sum(int(r["rows"]) for r in results)
        if rows != expected:
            raise CountMismatch(f"wrote {rows} rows in all, manifest-summary.json says {expected} items")
        # Nothing of this export is visible in the lake until every file converted and the counts add up.
        # Publishing copies every file, then marks the partitions, and only then drops the staged copies,
        # so a retry after a failure anywhere in between finds everything it needs.
        keys = [key for result in results for key in result["keys"]]
        list(pool.map(lambda key: publish(lake, staging_key(settings, export_id, key), key), keys))
    # An export without items lands nothing: no empty Parquet object, no partition, nothing to register.
    partitions = sorted({key.rsplit("/", 1)[0] for key in keys})
    for partition in partitions:
        lake.write_bytes(f"{partition}/{SUCCESS_MARKER}", b"")
    drop_staged(lake, [staging_key(settings, export_id, key) for key in keys])
    return {
        "rows": rows,
        "files": count,
        "partitions": len(partitions),
        "partitionPrefixes": [p + "/" for p in partitions],
        "lakeBucket": settings.bucket,
        "finishedAt": iso_utc(datetime.now(UTC)),
    }
