"""Figures for the RDS pipeline, printed (never asserted):

- Step Functions state transitions per 1,000 exported objects (from execution history)
- S3 requests per copied object (every S3 call the handlers make, for objects < 5 GB)
- `snaplake local demo` wall time on a warm virtual environment
- import time of each handler module, boto3 itself excluded

Run: `make bench` or `python benchmarks/rds_copy.py [--objects N] [--smoke]`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HANDLERS = {
    "SnapshotFilterFunction": "functions/snapshot_filter/app.py",
    "StartExportFunction": "functions/start_export/app.py",
    "PollExportFunction": "functions/poll_export/app.py",
    "CopyObjectsFunctions": "functions/copy_objects/app.py",
}
HANDLER_ENV = {
    "AWS_DEFAULT_REGION": "eu-west-1",
    "SOURCE_IDENTIFIERS": "*",
    "EXPORT_BUCKET": "export-bucket",
    "EXPORT_ROLE_ARN": "arn:aws:iam::123456789012:role/export",
    "EXPORT_KMS_KEY_ARN": "arn:aws:kms:eu-west-1:123456789012:key/x",
    "LAKE_BUCKET": "lake-bucket",
}


@contextmanager
def count_s3_calls() -> Iterator[Counter[str]]:
    """Count every S3 API call made through botocore in this process."""
    from botocore.client import BaseClient
    from snaplake_local.emulator import patched_attribute

    counts: Counter[str] = Counter()
    lock = threading.Lock()
    original = getattr(BaseClient, "_make_api_call")  # noqa: B009 - private botocore method

    def counting(self: Any, operation_name: str, api_params: Any) -> Any:
        if self.meta.service_model.service_name == "s3":
            with lock:
                counts[operation_name] += 1
        return original(self, operation_name, api_params)

    with patched_attribute(BaseClient, "_make_api_call", counting):
        yield counts


def pipeline_figures(objects: int) -> dict[str, Any]:
    from snaplake_local.emulator import ManyFilesSource, capture_metrics
    from snaplake_local.sources import cluster_snapshot, create_cluster
    from snaplake_local.stack import EmulatedStack

    # The handlers' metrics (EMF on stdout) are taken off stdout, which carries the figures.
    with capture_metrics(), EmulatedStack({"SourceIdentifiers": "*"}, function_log_level="ERROR") as stack:
        create_cluster(stack, "bench-aurora")
        source = ManyFilesSource(database="bench", tables=20, file_count=objects, batches=2)
        arn = cluster_snapshot(stack, "bench-aurora", "bench-aurora-manual", source)
        started = time.perf_counter()
        with count_s3_calls() as calls:
            execution = stack.run("RdsExportStateMachine", {"snapshotArn": arn}, timeout_seconds=3600)
        elapsed = time.perf_counter() - started
        if execution.status != "SUCCEEDED":
            raise SystemExit(f"benchmark execution {execution.status}: {execution.error}: {execution.cause}")
        copied = execution.output["landed"]["objects"]
        entered = Counter(e["stateEnteredEventDetails"]["name"] for e in execution.history if e["type"].endswith("StateEntered"))
        polling = sum(entered[s] for s in ("WaitForExport", "PollExport", "ExportComplete"))
        transitions = execution.state_transitions
        return {
            "objects": copied,
            "state_transitions": transitions,
            "state_transitions_per_1000_objects": round(transitions / copied * 1000, 1),
            "state_transitions_per_1000_objects_excluding_export_polling": round((transitions - polling) / copied * 1000, 1),
            "export_polling_transitions": polling,
            "s3_requests": sum(calls.values()),
            "s3_requests_per_copied_object": round(sum(calls.values()) / copied, 4),
            "s3_requests_by_operation": dict(calls.most_common()),
            "emulated_wall_seconds": round(elapsed, 1),
        }


def demo_wall_seconds() -> float:
    command = [str(Path(sys.executable).parent / "snaplake"), "local", "demo"]
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return round(time.perf_counter() - started, 1)


_IMPORT_PROBE = """
import importlib.util, json, sys, time
import boto3, botocore.session  # boto3 itself is excluded from the figure
path = sys.argv[1]
started = time.perf_counter()
spec = importlib.util.spec_from_file_location("handler_under_test", path)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps({"ms": (time.perf_counter() - started) * 1000}))
"""


def handler_import_ms(repeats: int) -> dict[str, float]:
    env = {**os.environ, **HANDLER_ENV}
    env.pop("AWS_ENDPOINT_URL", None)
    figures = {}
    for name, path in HANDLERS.items():
        samples = []
        for _ in range(repeats):
            out = subprocess.run(
                [sys.executable, "-c", _IMPORT_PROBE, str(ROOT / path)], env=env, check=True, capture_output=True, text=True
            )
            samples.append(json.loads(out.stdout.strip().splitlines()[-1])["ms"])
        figures[name] = round(statistics.median(samples), 1)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=10_000, help="objects in the emulated export (default 10000)")
    parser.add_argument("--smoke", action="store_true", help="small sizes, no demo timing: proves the script runs")
    args = parser.parse_args(argv)
    objects = 300 if args.smoke else args.objects
    figures: dict[str, Any] = {"pipeline": pipeline_figures(objects)}
    figures["handler_import_ms_median_excluding_boto3"] = handler_import_ms(1 if args.smoke else 5)
    if not args.smoke:
        figures["make_demo_wall_seconds_warm"] = demo_wall_seconds()
    print(json.dumps(figures, indent=2))
    targets = {
        "state transitions per 1,000 objects <= 50": figures["pipeline"]["state_transitions_per_1000_objects"] <= 50,
        "S3 requests per copied object <= 1.05": figures["pipeline"]["s3_requests_per_copied_object"] <= 1.05,
        "handler import <= 150 ms": max(figures["handler_import_ms_median_excluding_boto3"].values()) <= 150,
    }
    if "make_demo_wall_seconds_warm" in figures:
        targets["make demo <= 30 s"] = figures["make_demo_wall_seconds_warm"] <= 30
    for target, met in targets.items():
        print(f"{'met    ' if met else 'MISSED '} {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
