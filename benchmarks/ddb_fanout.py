"""Figures for the DynamoDB conversion's fan-out at scale, printed (never asserted):

- library level, an emulated export of `--files` data files (default 100,000) in moto S3, every conversion step
  run with the real library code the handlers call (PlanConversion, each ScanFiles / ConvertFiles / PublishFiles
  share as its Map child would run it, MergeSchema, FinalizeConversion): per step, S3 requests by operation, wall
  and CPU time in moto, and what one invocation reads and writes: the per-export steps must not grow with the file
  count beyond one object per share (at most MAX_SHARES), and the plan's response must stay far below 256 KB
- moto's own cost of one small S3 GET and PUT (to tell the handlers' CPU from the emulator's)
- state machine level, the real statemachine/dynamodb_export.asl.json on the emulated stack at `--sm-files` data
  files (default 2,000) and at 3: the largest state payload of the parent execution, state transitions (parent
  and every Map child) and transitions per 1,000 data files

Run: `python benchmarks/ddb_fanout.py [--files 100000] [--sm-files 2000] [--max-shares N] [--smoke]`.
`--max-shares` lowers MAX_SHARES (default: the library's, 1,000) so that shares saturate at a small size.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Final

ROOT = Path(__file__).resolve().parents[1]
REGION: Final = "eu-west-1"
ACCOUNT = "123456789012"
EXPORTS, LAKE = "bench-exports", "bench-lake"
TABLE_ARN = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/orders"
EXPORT_ID = "01700000000000-abcdef01"
STEP_FUNCTIONS_PAYLOAD_MAX_BYTES = 256 * 1024


@contextmanager
def max_shares(value: int | None) -> Iterator[int]:
    """MAX_SHARES as given (the library's own when None), restored afterwards."""
    from snaplake.dynamodb import conversion

    original = conversion.MAX_SHARES
    conversion.MAX_SHARES = original if value is None else value
    try:
        yield conversion.MAX_SHARES
    finally:
        conversion.MAX_SHARES = original


def _line(index: int) -> bytes:
    return (
        f'{{"Item":{{"pk":{{"S":"order#{index:09d}"}},"qty":{{"N":"{index % 97}"}},'
        f'"address":{{"M":{{"city":{{"S":"c{index % 13}"}}}}}},"paid":{{"BOOL":{"true" if index % 2 else "false"}}}}}}}\n'
    ).encode()


def write_export(files: int, items_per_file: int) -> tuple[str, int]:
    """An export in DynamoDB's layout, written straight into moto's S3 backend (fast): every 10th data file empty,
    like an empty table partition. Returns (manifest-summary key, items)."""
    from moto.s3.models import s3_backends

    backend = s3_backends[ACCOUNT]["aws"]
    root = f"AWSDynamoDB/{EXPORT_ID}"
    manifest, total = [], 0
    for index in range(files):
        count = 0 if index % 10 == 9 else items_per_file
        body = gzip.compress(b"".join(_line(index * items_per_file + n) for n in range(count)), compresslevel=1)
        key = f"{root}/data/{index:07d}.json.gz"
        backend.put_object(EXPORTS, key, body)
        manifest.append(json.dumps({"itemCount": count, "md5Checksum": "x", "etag": "y", "dataFileS3Key": key}))
        total += count
    backend.put_object(EXPORTS, f"{root}/manifest-files.json", ("\n".join(manifest) + "\n").encode())
    summary = {"manifestFilesS3Key": f"{root}/manifest-files.json", "itemCount": total, "exportTime": "2026-01-14T10:00:00.000Z"}
    backend.put_object(EXPORTS, f"{root}/manifest-summary.json", json.dumps(summary).encode())
    return f"{root}/manifest-summary.json", total


def counted() -> AbstractContextManager[Counter[str]]:
    """Count every S3 API call made through botocore in this process: benchmarks/rds_copy.py's counter."""
    if str(ROOT) not in sys.path:  # run as a script
        sys.path.insert(0, str(ROOT))
    from benchmarks.rds_copy import count_s3_calls

    return count_s3_calls()


class Steps:
    """Each step's S3 requests, wall and CPU seconds; for the Map stages also the largest single child."""

    def __init__(self) -> None:
        self.figures: dict[str, dict[str, Any]] = {}

    def once(self, name: str, action: Callable[[], Any]) -> Any:
        with counted() as calls:
            wall, cpu = time.perf_counter(), time.process_time()
            result = action()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        self.figures[name] = {
            "invocations": 1,
            "s3_requests": sum(calls.values()),
            "s3_requests_by_operation": dict(calls.most_common()),
            "wall_seconds": round(wall, 2),
            "cpu_seconds": round(cpu, 2),
        }
        return result

    def per_share(self, name: str, shares: list[dict[str, Any]], child: Callable[[dict[str, Any]], int]) -> None:
        """Run every share as its Map child would (`child` returns the invocations it took); keep the totals and the
        largest child."""
        totals: Counter[str] = Counter()
        largest: dict[str, Any] = {"s3_requests": 0}
        wall, cpu, invocations = time.perf_counter(), time.process_time(), 0
        for share in shares:
            with counted() as calls:
                child_wall = time.perf_counter()
                invocations += child(share)
                child_wall = time.perf_counter() - child_wall
            totals.update(calls)
            if sum(calls.values()) > largest["s3_requests"]:
                largest = {"worker": share["worker"], "s3_requests": sum(calls.values()), "wall_seconds": round(child_wall, 3)}
        self.figures[name] = {
            "invocations": invocations,
            "children": len(shares),
            "s3_requests": sum(totals.values()),
            "s3_requests_by_operation": dict(totals.most_common()),
            "largest_child": largest,
            "wall_seconds": round(time.perf_counter() - wall, 2),
            "cpu_seconds": round(time.process_time() - cpu, 2),
        }


def moto_request_seconds(s3: Any, requests: int = 500) -> dict[str, float]:
    """moto's CPU per small GET and PUT in this process (botocore included): what the handlers' figures carry."""
    body = b"x" * 200
    started = time.process_time()
    for index in range(requests):
        s3.put_object(Bucket=EXPORTS, Key=f"calibrate/{index}", Body=body)
    put = (time.process_time() - started) / requests
    started = time.process_time()
    for index in range(requests):
        s3.get_object(Bucket=EXPORTS, Key=f"calibrate/{index}")["Body"].read()
    get = (time.process_time() - started) / requests
    s3.delete_objects(Bucket=EXPORTS, Delete={"Objects": [{"Key": f"calibrate/{i}"} for i in range(requests)]})
    return {"put_ms": round(put * 1000, 3), "get_ms": round(get * 1000, 3)}


def library_figures(files: int, items_per_file: int = 2, shares_bound: int | None = None) -> dict[str, Any]:
    """Every conversion step on an emulated export of `files` data files, at the library level against moto S3."""
    import boto3
    from moto import mock_aws
    from snaplake.dynamodb.conversion import convert_files, merge_schemas, plan_conversion, scan_files
    from snaplake.dynamodb.publish import finalize_conversion, publish_share
    from snaplake.dynamodb.settings import ConversionSettings

    settings = ConversionSettings(
        bucket=LAKE, prefix="lake", bucket_owner=None, kms_key_arn=None, export_bucket_owner=None, workers=8, plan_prefix="plans"
    )
    with mock_aws(), max_shares(shares_bound) as bound:
        s3 = boto3.client("s3", region_name=REGION)
        for name in (EXPORTS, LAKE):
            s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
        started = time.perf_counter()
        summary_key, items = write_export(files, items_per_file)
        written = time.perf_counter() - started
        calibration = moto_request_seconds(s3)
        steps = Steps()
        export_arn = f"{TABLE_ARN}/export/{EXPORT_ID}"
        request = {"tableArn": TABLE_ARN, "exportArn": export_arn, "bucket": EXPORTS, "manifestSummaryKey": summary_key}
        planned = steps.once("PlanConversion", lambda: plan_conversion(s3, request, settings))
        tracemalloc.start()  # again (it rewrites the same plan), for its peak memory: moto's copy of what it writes included
        plan_conversion(s3, request, settings)
        plan_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        carried = {key: planned[key] for key in ("plan", "kind", "table", "exportedTo", "exportId")}
        totals = {key: planned[key] for key in ("files", "expectedItems")}
        shares = planned["workers"]

        def looping(step: Callable[..., dict[str, Any]]) -> Callable[[dict[str, Any]], int]:
            def child(share: dict[str, Any]) -> int:
                event: dict[str, Any] = {**carried, "share": share}
                invocations = 0
                while True:
                    invocations += 1
                    result = step(s3, event, settings, lambda: 10**9)
                    if result["done"]:
                        return invocations
                    event = result

            return child

        steps.per_share("ScanFiles", shares, looping(scan_files))
        steps.once("MergeSchema", lambda: merge_schemas(s3, {"plan": planned["plan"], **totals}, settings))
        steps.per_share("ConvertFiles", shares, looping(convert_files))
        steps.per_share("PublishFiles", shares, looping(publish_share))
        finalize = {**carried, **totals, "shares": planned["shares"]}
        landed = steps.once("FinalizeConversion", lambda: finalize_conversion(s3, finalize, settings))
        items_json = s3.head_object(Bucket=EXPORTS, Key=planned["items"]["key"])["ContentLength"]
        share_list = s3.head_object(Bucket=EXPORTS, Key=f"{planned['plan']['prefix']}shares/000000.json")["ContentLength"]
        staged_left = s3.list_objects_v2(Bucket=LAKE, Prefix="lake/_snaplake_staging/").get("KeyCount", 0)
    response = len(json.dumps(planned).encode())
    return {
        "files": files,
        "items": items,
        "max_shares": bound,
        "shares": planned["shares"],
        "files_per_share": -(-files // planned["shares"]),
        "emulated_export_written_seconds": round(written, 1),
        "moto_cpu_per_small_request": calibration,
        "plan_peak_python_mb": round(plan_peak / 1024**2, 1),
        "plan_response_bytes": response,
        "plan_response_without_workers_bytes": len(json.dumps({k: v for k, v in planned.items() if k != "workers"}).encode()),
        "items_json_bytes": items_json,
        "share_list_bytes": share_list,
        "landed": {key: landed[key] for key in ("rows", "files", "partitions")},
        "staged_copies_left": staged_left,
        "steps": {name: _less_moto(step, calibration) for name, step in steps.figures.items()},
    }


def _less_moto(step: dict[str, Any], calibration: dict[str, float]) -> dict[str, Any]:
    """The step's CPU less what moto spent serving its requests (at the calibrated small-request cost): the handler's."""
    moto = step["s3_requests"] * (calibration["get_ms"] + calibration["put_ms"]) / 2 / 1000
    return {**step, "cpu_seconds_less_moto": round(max(0.0, step["cpu_seconds"] - moto), 2)}


def state_machine_figures(files: int) -> dict[str, Any]:
    """The real DynamoDB export state machine on the emulated stack, with `files` data files in the export."""
    from snaplake_local.emulator import capture_metrics
    from snaplake_local.sources import ORDERS_TABLE_ARN, create_orders_table, default_parameters, seed_sample_sources
    from snaplake_local.stack import EmulatedStack

    # The handlers' metrics (EMF on stdout) are taken off stdout, which carries the figures.
    with capture_metrics(), EmulatedStack(default_parameters(), function_log_level="ERROR") as stack:
        seed_sample_sources(stack)
        stack.dynamodb_exports.files_per_export = files
        create_orders_table(stack)
        stack.clock.advance(20 * 60)
        started = time.perf_counter()
        execution = stack.run("DynamoDbExportStateMachine", {"tableArn": ORDERS_TABLE_ARN}, timeout_seconds=7200)
        elapsed = time.perf_counter() - started
        if execution.status != "SUCCEEDED":
            raise SystemExit(f"benchmark execution {execution.status}: {execution.error}: {execution.cause}")
        runs = stack.distributed_maps.of(execution.arn)
        children = {run.state: run.items for run in runs}
        child_transitions = sum(1 for run in runs for event in run.history if event["type"].endswith("StateEntered"))
    payloads = [0]
    for event in execution.history:
        for details, field in (("stateEnteredEventDetails", "input"), ("stateExitedEventDetails", "output")):
            if details in event:
                payloads.append(len(str(event[details].get(field, "")).encode()))
    transitions = execution.state_transitions + child_transitions
    return {
        "files": files,
        "shares": execution.output["conversion"]["shares"],
        "map_children": children,
        "largest_state_payload_bytes": max(payloads),
        "parent_state_transitions": execution.state_transitions,
        "child_state_transitions": child_transitions,
        "state_transitions_per_1000_files": round(transitions / files * 1000, 1),
        "emulated_wall_seconds": round(elapsed, 1),
    }


def main(argv: list[str] | None = None) -> int:
    from snaplake_local.emulator import capture_metrics

    with capture_metrics():  # the handlers' metrics (EMF on stdout) stay off stdout, which carries the figures
        return _main(argv)


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=100_000, help="data files of the library-level export (default 100000)")
    parser.add_argument("--items-per-file", type=int, default=2, help="items per data file (default 2)")
    parser.add_argument("--sm-files", type=int, default=2_000, help="data files of the state machine run (default 2000)")
    parser.add_argument("--max-shares", type=int, default=None, help="lower MAX_SHARES to this (default: the library's)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, MAX_SHARES 4: proves the script runs")
    args = parser.parse_args(argv)
    files, sm_files, bound = (120, 40, 4) if args.smoke else (args.files, args.sm_files, args.max_shares)
    figures: dict[str, Any] = {"library": library_figures(files, args.items_per_file, bound)}
    with max_shares(bound):
        figures["state_machine"] = [state_machine_figures(size) for size in sorted({3, sm_files})]
    library, small, large = figures["library"], figures["state_machine"][0], figures["state_machine"][-1]
    # The state machine at the library run's size: the parent's transitions do not depend on the export, the
    # children's are a fixed number per share (each child needs one invocation for these small files).
    at_size = large["parent_state_transitions"] + large["child_state_transitions"] / large["shares"] * library["shares"]
    figures["state_transitions_per_1000_files_at_library_size"] = round(at_size / library["files"] * 1000, 1)
    print(json.dumps(figures, indent=2))
    steps = library["steps"]
    per_export = {name: steps[name]["s3_requests"] for name in ("PlanConversion", "MergeSchema", "FinalizeConversion")}
    targets = {
        f"shares bounded: {library['shares']} <= MAX_SHARES {library['max_shares']}": library["shares"] <= library["max_shares"],
        "plan response < 64 KB (Step Functions: 256 KB)": library["plan_response_bytes"] < 64 * 1024,
        "MergeSchema and FinalizeConversion read one object per share, not per file": all(
            per_export[name] <= library["shares"] + 10 for name in ("MergeSchema", "FinalizeConversion")
        ),
        "state payload constant (largest at most 64 bytes over the 3-file run's)": large["largest_state_payload_bytes"]
        <= small["largest_state_payload_bytes"] + 64,
        "no staged copy left behind": library["staged_copies_left"] == 0,
    }
    for target, met in targets.items():
        print(f"{'met    ' if met else 'MISSED '} {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
