"""A scale model of the two pipelines' fan-out, printed (never asserted): wall-time estimates from the measured
per-worker rates, the configured concurrency and Lambda sizes (template.yaml), the code's batching constants, and
stated assumptions for what cannot be measured here (S3 request latency, server-side copy throughput, Lambda and
Step Functions overheads). It also checks that no single invocation exceeds its Lambda timeout and that nothing
reaches a Step Functions or S3 limit.

Scenarios: RDS 2 TB in 20,000 files (target <= 2 min); DynamoDB 1 TB uncompressed (target <= 15 min) and 10 TB
(target: completes, no step over its timeout). Times run from the export's COMPLETE (RDS's or DynamoDB's own export
time is AWS's, not the pipeline's) to the lake complete with its `_SUCCESS` markers; RegisterCatalog and the
checkpoint steps (per table, not per file) are left out.

Every input is printed with where it comes from: measured (benchmarks in this folder), configured (template.yaml
defaults), code (the library's constants), documented (AWS documentation) or assumed.

Run: `python benchmarks/scale_model.py [--measure-mb 20] [--fanout-json FILE] [--smoke]`.
`--measure-mb` re-measures the scan and convert rates on this machine (one generated file of that many MB);
`--fanout-json` takes the per-file and per-share costs from a saved `benchmarks/ddb_fanout.py` output.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MB, MIB, GIB, TB = 1000**2, 1024**2, 1024**3, 1000**4


@dataclass
class Input:
    value: float
    unit: str
    kind: str  # measured | configured | code | documented | assumed
    source: str


@dataclass
class Step:
    name: str
    seconds: float  # the step's contribution to the wall time
    invocation_seconds: float  # its longest single Lambda invocation (0: not a Lambda)
    timeout: float  # that Lambda's timeout (0: none)
    note: str = ""

    @property
    def fits(self) -> bool:
        return self.timeout == 0 or self.invocation_seconds <= self.timeout


@dataclass
class Scenario:
    name: str
    target_seconds: float | None
    steps: list[Step]
    facts: dict[str, Any] = field(default_factory=dict)
    checks: dict[str, bool] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return sum(step.seconds for step in self.steps)


# ---------------------------------------------------------------------------------------------------- inputs

# benchmarks/README.md, DynamoDB conversion, `ddb_convert.py --vs-duckdb` of 2026-12-04 (2-core AMD EPYC machine):
# MB of uncompressed DynamoDB JSON per CPU second, one thread.
MEASURED_SCAN_MB_PER_CPU_S = 59.7
MEASURED_CONVERT_MB_PER_CPU_S = 50.4
# benchmarks/ddb_fanout.py --files 100000 (benchmarks/README.md, 2026-12-04): the handlers' CPU less moto's
# per-request share (calibrated in the same run); the plan's peak Python memory (tracemalloc, moto's copies of the
# manifest it serves and of what the plan writes included, so an upper bound: 450 B/file there, 550-600 B/file with
# real-length manifest lines at 100,000 and 300,000 lines, PlanConversion alone).
MEASURED_PLAN_CPU_S_PER_FILE = 6.6e-6
MEASURED_PLAN_BYTES_PER_FILE = 600.0
# What a child spends per data file besides the data (opening the stream, the per-file result, a Parquet writer, the
# copy's HEAD): ScanFiles 169 s, ConvertFiles 364 s, PublishFiles 312 s of CPU for 100,000 tiny files.
MEASURED_SCAN_CPU_S_PER_FILE = 1.7e-3
MEASURED_CONVERT_CPU_S_PER_FILE = 3.6e-3
MEASURED_PUBLISH_CPU_S_PER_FILE = 3.1e-3
# 1,000 merges of the schema of ddb_convert.py's nested, typed items (scale_model.py --measure-mb measures it again).
MEASURED_MERGE_CPU_S_PER_SHARE = 0.1e-3
MEASURED_ITEMS_JSON_BYTES_PER_SHARE = 262.0
MEASURED_PLAN_RESPONSE_BYTES_PER_SHARE = 51.3
MEASURED_DDB_PARENT_TRANSITIONS = 44  # the whole parent execution (StartExport to CommitCheckpoint, polling included)
MEASURED_DDB_CHILD_TRANSITIONS = 9  # per share over the three Maps, one invocation per child (3 + 3 + 3)


def configured() -> dict[str, Input]:
    """The template's defaults: Map concurrency, and each function's memory and timeout."""
    from snaplake_local.template import load_template

    template = load_template()
    params = template["Parameters"]
    defaults = template["Globals"]["Function"]
    found: dict[str, Input] = {}
    for name in ("CopyMaxConcurrency", "ConvertMaxConcurrency"):
        found[name] = Input(float(params[name]["Default"]), "children", "configured", f"template.yaml {name} default")
    for function in (
        "PlanCopyFunction",
        "CopyBatchFunction",
        "FinalizeCopyFunction",
        "ConvertPlanFunction",
        "ConvertScanFunction",
        "ConvertMergeFunction",
        "ConvertFilesFunction",
        "ConvertPublishFunction",
        "ConvertFinalizeFunction",
    ):
        properties = template["Resources"][function]["Properties"]
        for key, unit in (("MemorySize", "MB"), ("Timeout", "s")):
            value = float(properties.get(key, defaults[key]))
            found[f"{function}.{key}"] = Input(value, unit, "configured", f"template.yaml {function} {key}")
    return found


def code_constants() -> dict[str, Input]:
    import inspect

    from snaplake.core import s3 as core_s3
    from snaplake.core.limits import S3_COPY_OBJECT_MAX_BYTES
    from snaplake.dynamodb import conversion, publish
    from snaplake.dynamodb.checkpoint import LEASE_SECONDS
    from snaplake.rds import copy_batch, copy_plan
    from snaplake.rds.settings import COPY_BATCH_SIZE, COPY_THREADS

    def reserve(function: Any) -> float:
        return float(inspect.signature(function).parameters["reserve_ms"].default) / 1000

    return {
        "COPY_BATCH_SIZE": Input(float(COPY_BATCH_SIZE.default or 0), "objects", "code", "snaplake.rds.settings default"),
        "BATCH_BYTES": Input(float(copy_plan.BATCH_BYTES), "bytes", "code", "snaplake.rds.copy_plan"),
        "COPY_THREADS": Input(float(COPY_THREADS.default or 0), "copies in flight", "code", "snaplake.rds.settings default"),
        "CopyBatch reserve": Input(reserve(copy_batch.copy_batches), "s", "code", "copy_batches(reserve_ms)"),
        "multipart copy above": Input(float(S3_COPY_OBJECT_MAX_BYTES), "bytes", "code", "CopyObject's 5 GiB"),
        "MULTIPART_COPY_THREADS": Input(float(core_s3.MULTIPART_COPY_THREADS), "parts in flight", "code", "snaplake.core.s3"),
        "FILES_PER_SHARE": Input(float(conversion.FILES_PER_SHARE), "files", "code", "snaplake.dynamodb.conversion"),
        "MAX_SHARES": Input(float(conversion.MAX_SHARES), "shares", "code", "snaplake.dynamodb.conversion"),
        "COPY_WORKERS": Input(8.0, "shares at least", "code", "snaplake.core.settings COPY_WORKERS default"),
        "PLAN_THREADS": Input(float(conversion.PLAN_THREADS), "requests in flight", "code", "snaplake.dynamodb.conversion"),
        "PUBLISH_THREADS": Input(float(publish.PUBLISH_THREADS), "copies in flight", "code", "snaplake.dynamodb.publish"),
        "ScanFiles reserve": Input(reserve(conversion.scan_files), "s", "code", "scan_files(reserve_ms)"),
        "ConvertFiles reserve": Input(reserve(conversion.convert_files), "s", "code", "convert_files(reserve_ms)"),
        "PublishFiles reserve": Input(reserve(publish.publish_share), "s", "code", "publish_share(reserve_ms)"),
        "export lease": Input(float(LEASE_SECONDS), "s", "code", "snaplake.dynamodb.checkpoint.LEASE_SECONDS"),
        "RDS parent steps": Input(3, "transitions", "code", "rds_export.asl.json: PlanCopy, CopyToLake, FinalizeCopy"),
        "DynamoDB parent steps": Input(7, "transitions", "code", "dynamodb_export.asl.json: PlanConversion to FinalizeConversion"),
    }


def measured(fanout: dict[str, Any] | None) -> dict[str, Input]:
    readme = "benchmarks/README.md (ddb_convert.py --vs-duckdb, 2026-12-04, 2-core AMD EPYC)"
    fan = "benchmarks/ddb_fanout.py --files 100000 (benchmarks/README.md)"
    found = {
        "scan rate": Input(MEASURED_SCAN_MB_PER_CPU_S, "MB/CPU-s", "measured", readme),
        "convert rate": Input(MEASURED_CONVERT_MB_PER_CPU_S, "MB/CPU-s", "measured", readme),
        "plan CPU per file": Input(MEASURED_PLAN_CPU_S_PER_FILE, "s", "measured", fan),
        "plan memory per file": Input(MEASURED_PLAN_BYTES_PER_FILE, "bytes", "measured", fan + ", tracemalloc peak"),
        "scan CPU per file (fixed)": Input(MEASURED_SCAN_CPU_S_PER_FILE, "s", "measured", fan),
        "convert CPU per file (fixed)": Input(MEASURED_CONVERT_CPU_S_PER_FILE, "s", "measured", fan),
        "publish CPU per file": Input(MEASURED_PUBLISH_CPU_S_PER_FILE, "s", "measured", fan),
        "merge CPU per share": Input(MEASURED_MERGE_CPU_S_PER_SHARE, "s", "measured", "1,000 merges of ddb_convert.py's item schema"),
        "items.json per share": Input(MEASURED_ITEMS_JSON_BYTES_PER_SHARE, "bytes", "measured", fan),
        "plan response per share": Input(MEASURED_PLAN_RESPONSE_BYTES_PER_SHARE, "bytes", "measured", fan),
        "DynamoDB parent transitions": Input(
            MEASURED_DDB_PARENT_TRANSITIONS, "transitions", "measured", "ddb_fanout.py state machine run, the whole parent"
        ),
        "DynamoDB child transitions per share": Input(
            MEASURED_DDB_CHILD_TRANSITIONS, "transitions", "measured", "ddb_fanout.py (the model's count at one invocation each)"
        ),
    }
    if fanout:
        library = fanout["library"]
        steps, files, shares = library["steps"], library["files"], library["shares"]
        source = f"--fanout-json ({files} files, {shares} shares)"
        found["plan CPU per file"] = Input(steps["PlanConversion"]["cpu_seconds_less_moto"] / files, "s", "measured", source)
        found["plan memory per file"] = Input(library["plan_peak_python_mb"] * MIB / files, "bytes", "measured", source)
        for name, step in (("scan", "ScanFiles"), ("convert", "ConvertFiles")):
            found[f"{name} CPU per file (fixed)"] = Input(steps[step]["cpu_seconds_less_moto"] / files, "s", "measured", source)
        found["publish CPU per file"] = Input(steps["PublishFiles"]["cpu_seconds_less_moto"] / files, "s", "measured", source)
        found["items.json per share"] = Input(library["items_json_bytes"] / shares, "bytes", "measured", source)
        found["plan response per share"] = Input(library["plan_response_bytes"] / shares, "bytes", "measured", source)
    return found


def measure_rates(mb: float) -> dict[str, Input]:
    """Scan and convert MB per CPU second on this machine, one generated gzip file of `mb` MB (ddb_convert's items)."""
    from snaplake.dynamodb.parquet import ConvertOptions, ExportSchema, convert_file, scan_file

    if str(ROOT) not in sys.path:  # run as a script
        sys.path.insert(0, str(ROOT))
    from benchmarks.ddb_convert import generate_lines

    options = ConvertOptions()
    lines = generate_lines(int(mb * MB), seed=11)
    size_mb = len(lines) / MB
    with tempfile.TemporaryDirectory() as scratch:
        path, out = Path(scratch) / "data.json.gz", Path(scratch) / "out.parquet"
        path.write_bytes(gzip.compress(lines, compresslevel=1))
        started = time.process_time()
        with gzip.open(path, "rb") as stream:
            schema, _ = scan_file(stream, "full", options)
        scanned = time.process_time() - started
        started = time.process_time()
        with gzip.open(path, "rb") as stream:
            convert_file(stream, schema, "full", options, out)
        converted = time.process_time() - started
        ratio = out.stat().st_size / len(lines)
    raw = json.dumps(schema.to_json())
    started = time.process_time()
    merged = ExportSchema()
    for _ in range(1000):  # MergeSchema: one share's schema read and merged
        merged = merged.merge(ExportSchema.from_json(json.loads(raw)))
    merge = (time.process_time() - started) / 1000
    source = f"--measure-mb {mb:g}: this machine, one {size_mb:.0f} MB file"
    return {
        "scan rate": Input(round(size_mb / scanned, 1), "MB/CPU-s", "measured", source),
        "convert rate": Input(round(size_mb / converted, 1), "MB/CPU-s", "measured", source),
        "Parquet / JSON bytes": Input(round(ratio, 3), "ratio", "measured", source),
        "merge CPU per share": Input(merge, "s", "measured", source + ", 1,000 merges of its schema"),
    }


def assumptions() -> dict[str, Input]:
    whitepaper = "AWS whitepaper 'Best Practices Design Patterns: Optimizing Amazon S3 Performance'"
    return {
        "S3 small request": Input(
            0.050, "s", "assumed", f"{whitepaper}: small requests' median latency is 'in the tens of milliseconds'; 50 ms taken"
        ),
        "S3 list page (1,000 keys)": Input(0.200, "s", "assumed", "a larger response than a small GET: 4x the small request"),
        "S3 DeleteObjects (1,000 keys)": Input(0.500, "s", "assumed", "10x the small request"),
        "S3 copy throughput per stream": Input(
            50 * MIB, "bytes/s", "assumed", "the copy's own planning figure (snaplake.rds.copy_batch.COPY_BYTES_PER_SECOND)"
        ),
        "S3 GET/PUT throughput per stream": Input(80 * MB, "bytes/s", "assumed", "one Lambda stream, not published by AWS"),
        "S3 PUT/COPY/POST/DELETE per prefix": Input(
            3500, "requests/s", "documented", "Amazon S3 User Guide, 'Optimizing performance': per partitioned prefix"
        ),
        "S3 GET/HEAD per prefix": Input(5500, "requests/s", "documented", "same page"),
        "Lambda vCPU per MB": Input(1 / 1769, "vCPU/MB", "documented", "Lambda: 1,769 MB has the equivalent of one vCPU"),
        "Lambda core vs benchmark core": Input(
            0.7, "x", "assumed", "arm64 (Graviton2) per core against the 2-core EPYC the rates were measured on"
        ),
        "Lambda cold start": Input(3.0, "s", "assumed", "pyarrow layer and handler import (import alone measured ~0.1 s)"),
        "Lambda scaling": Input(
            1000 / 10, "new environments/s", "documented", "Lambda: each function scales by 1,000 environments every 10 s"
        ),
        "Lambda account concurrency": Input(1000, "executions", "documented", "Lambda default quota per Region"),
        "Distributed Map run overhead": Input(
            10.0, "s", "assumed", "re:Post 'Why is Step Function's Distributed Map slow?': 7+ s from MapRunStarted to its end"
        ),
        "state transition": Input(0.1, "s", "assumed", "Step Functions does not publish one; 100 ms taken"),
        "Step Functions payload": Input(256 * 1024, "bytes", "documented", "Step Functions quota: a state's input or output"),
        "Distributed Map concurrency": Input(10_000, "children", "documented", "Step Functions: Distributed Map MaxConcurrency"),
        "execution history": Input(25_000, "events", "documented", "Step Functions quota: events in one execution's history"),
        "StateTransition refill": Input(
            800, "transitions/s", "documented", "Step Functions quota, smallest Regions (5,000 in the largest)"
        ),
        "gzip / JSON bytes": Input(0.25, "ratio", "assumed", "DynamoDB JSON compresses 4x or better"),
        "Parquet / JSON bytes": Input(0.15, "ratio", "assumed", "zstd Parquet of typed columns against DynamoDB JSON"),
        "DynamoDB data file": Input(128 * MIB, "bytes", "assumed", "uncompressed size of one export data file (AWS publishes none)"),
        "RDS tables": Input(20, "tables", "assumed", "as in benchmarks/rds_copy.py"),
        "RDS plan CPU per object": Input(100e-6, "s", "assumed", "listing entry to lake key and batch entry"),
        "incremental objects per data file": Input(25, "hour partitions", "code", "a 24 h window spans at most 25 hours"),
    }


# ---------------------------------------------------------------------------------------------------- models


def _rounds(count: float, parallel: float) -> float:
    return math.ceil(count / max(1.0, parallel)) if count > 0 else 0


def rds_model(p: dict[str, Input], total_bytes: float, files: int, name: str, target: float | None) -> Scenario:
    from snaplake.rds.copy_plan import CopyItem, batch_size_for

    v = {key: value.value for key, value in p.items()}
    lat, page = v["S3 small request"], v["S3 list page (1,000 keys)"]
    threads, concurrency = v["COPY_THREADS"], v["CopyMaxConcurrency"]
    tables = v["RDS tables"]
    size = total_bytes / files
    batch = batch_size_for([CopyItem("s", "d", int(size), "e")] * files, int(v["COPY_BATCH_SIZE"]))
    batches = math.ceil(files / batch)
    parallel_parts = v["MULTIPART_COPY_THREADS"] if size > v["multipart copy above"] else 1
    copy_seconds = lat + size / (v["S3 copy throughput per stream"] * parallel_parts)
    cold = v["Lambda cold start"]

    plan = (
        cold
        + _rounds(files, 1000) * page  # one listing of the export
        + files * v["RDS plan CPU per object"]
        + _rounds(tables, threads) * (3 * lat + page + 2 * lat)  # a footer per table, the partition listing, the claims
        + _rounds(batches, threads) * lat  # batch files
        + 3 * lat  # markers.json, items.json, the progress listing
    )
    per_batch = 5 * lat + _rounds(batch, threads) * copy_seconds  # markers, progress, batch file, claim, done
    invocations = math.ceil(per_batch / (v["CopyBatchFunction.Timeout"] - v["CopyBatch reserve"]))
    children_at_once = min(batches, concurrency)
    waves = math.ceil(batches / concurrency)
    ramp = children_at_once / v["Lambda scaling"]
    copy = v["Distributed Map run overhead"] + ramp + cold + waves * (per_batch + 3 * v["state transition"])
    objects_per_table = files / tables
    markers = tables * 2 + tables  # the export's batch markers (2 per table assumed) and one per partition
    finalize = (
        cold
        + _rounds(batches, 1000) * page
        + _rounds(batches, threads) * lat  # every batch file
        + _rounds(objects_per_table, 1000) * page * _rounds(tables, threads)  # one listing per partition
        + _rounds(markers, threads) * lat
        + lat
    )
    transitions = v["RDS parent steps"] * v["state transition"]
    steps = [
        Step("PlanCopy", plan, plan, v["PlanCopyFunction.Timeout"], f"{files} objects listed, {batches} batches written"),
        Step(
            "CopyToLake (Distributed Map)",
            copy,
            per_batch / invocations,
            v["CopyBatchFunction.Timeout"],
            f"{batches} children of {batch} objects, {waves} wave(s) at {concurrency:g}; {per_batch:.0f} s per batch",
        ),
        Step(
            "FinalizeCopy",
            finalize,
            finalize,
            v["FinalizeCopyFunction.Timeout"],
            f"{batches} batch files read, {tables:g} partitions listed",
        ),
        Step("state transitions (parent)", transitions, 0, 0, f"{v['RDS parent steps']:g} x {v['state transition']:g} s"),
    ]
    copies_per_second = children_at_once * threads / copy_seconds
    child_transitions = batches * (2 * invocations + 1)
    scenario = Scenario(name, target, steps)
    scenario.facts = {
        "object size": f"{size / MB:.0f} MB",
        "objects per batch": batch,
        "batches (children)": batches,
        "copies in flight": int(children_at_once * threads),
        "peak copies per second": round(copies_per_second),
        "state transitions per 1,000 objects, PlanCopy on": round((v["RDS parent steps"] + child_transitions) / files * 1000, 1),
    }
    scenario.checks = {
        f"copies/s into one prefix <= {v['S3 PUT/COPY/POST/DELETE per prefix']:g} (worst case: one table)": copies_per_second
        <= v["S3 PUT/COPY/POST/DELETE per prefix"],
        f"source GETs/s <= {v['S3 GET/HEAD per prefix']:g}": copies_per_second <= v["S3 GET/HEAD per prefix"],
        "Map result (3 bytes per child) <= 256 KiB": batches * 3 <= v["Step Functions payload"],
        "MaxConcurrency <= Distributed Map's 10,000": concurrency <= v["Distributed Map concurrency"],
        "children at once <= Lambda account concurrency": children_at_once <= v["Lambda account concurrency"],
    }
    return scenario


def ddb_model(
    p: dict[str, Input], total_bytes: float, name: str, target: float | None, file_bytes: float | None = None, kind: str = "full"
) -> Scenario:
    from snaplake.dynamodb import conversion

    v = {key: value.value for key, value in p.items()}
    lat, page, delete = v["S3 small request"], v["S3 list page (1,000 keys)"], v["S3 DeleteObjects (1,000 keys)"]
    net, copy_rate = v["S3 GET/PUT throughput per stream"], v["S3 copy throughput per stream"]
    cold, concurrency = v["Lambda cold start"], v["ConvertMaxConcurrency"]
    file_bytes = file_bytes or v["DynamoDB data file"]
    files = math.ceil(total_bytes / file_bytes)
    shares = min(int(v["MAX_SHARES"]), max(1, min(int(v["COPY_WORKERS"]), files), math.ceil(files / v["FILES_PER_SHARE"])))
    assert shares == _library_shares(conversion, files), "the model's share count must be the library's"
    per_share = math.ceil(files / shares)
    waves = math.ceil(shares / concurrency)
    children_at_once = min(shares, concurrency)
    ramp = children_at_once / v["Lambda scaling"]
    file_mb = file_bytes / MB
    plan_threads, publish_threads = v["PLAN_THREADS"], v["PUBLISH_THREADS"]

    def cores(function: str) -> float:
        return min(1.0, v[f"{function}.MemorySize"] * v["Lambda vCPU per MB"]) * v["Lambda core vs benchmark core"]

    # PlanConversion: the manifest streamed once, one file list per share, plan.json and items.json.
    manifest_bytes = files * 230
    plan = cold + 2 * lat + manifest_bytes / net + files * v["plan CPU per file"] + _rounds(shares, plan_threads) * lat + 2 * lat
    plan_memory = files * v["plan memory per file"] / MIB

    def child(seconds_per_file: float, fixed: float, reserve: float, timeout: float) -> tuple[float, float, int]:
        """(child wall time, longest invocation, invocations) for a share that loops on its time-budget cursor."""
        work = per_share * seconds_per_file
        budget = timeout - reserve
        invocations = max(1, math.ceil(work / budget))
        longest = min(work, budget + seconds_per_file) + fixed
        return work + invocations * (fixed + 3 * v["state transition"]), longest, invocations

    scan_rate = v["scan rate"] * cores("ConvertScanFunction")
    scan_cores, convert_cores, publish_cores = cores("ConvertScanFunction"), cores("ConvertFilesFunction"), cores("ConvertPublishFunction")
    scan_file = (  # GET, scan
        lat + file_bytes * v["gzip / JSON bytes"] / net + file_mb / scan_rate + v["scan CPU per file (fixed)"] / scan_cores
    )
    scan_fixed = 2 * lat  # per invocation: the share's file list, one merged schema written
    scan_child, scan_longest, scan_invocations = child(scan_file, scan_fixed, v["ScanFiles reserve"], v["ConvertScanFunction.Timeout"])
    scan = v["Distributed Map run overhead"] + ramp + cold + waves * scan_child

    # plan.json; each share's merged schemas (one per ScanFiles invocation), 16 shares at a time; the column registry.
    merge = cold + 2 * lat + _rounds(shares, plan_threads) * scan_invocations * lat + shares * scan_invocations * v["merge CPU per share"]
    merge += 3 * lat

    objects_per_file = 1 if kind == "full" else v["incremental objects per data file"]
    out_bytes = file_bytes * v["Parquet / JSON bytes"]
    convert_rate = v["convert rate"] * cores("ConvertFilesFunction")
    convert_file = (  # GET, convert, upload, the file's result
        lat + file_mb / convert_rate + v["convert CPU per file (fixed)"] / convert_cores + objects_per_file * lat + out_bytes / net + lat
    )
    convert_fixed = 3 * lat  # share list, schema.json, plan
    convert_child, convert_longest, convert_invocations = child(
        convert_file, convert_fixed, v["ConvertFiles reserve"], v["ConvertFilesFunction.Timeout"]
    )
    convert = v["Distributed Map run overhead"] + ramp + cold + waves * convert_child

    copies = per_share * objects_per_file
    publish_file = (  # its converted/<n>.json, then HEAD + copy of each object, PUBLISH_THREADS files per round
        (lat + objects_per_file * (2 * lat + out_bytes / objects_per_file / copy_rate)) / publish_threads
        + v["publish CPU per file"] / publish_cores
    )
    publish_fixed = 2 * lat + _rounds(copies, 1000) * delete + lat  # share list and plan; staged copies dropped; record
    publish_child, publish_longest, publish_invocations = child(
        publish_file, publish_fixed, v["PublishFiles reserve"], v["ConvertPublishFunction.Timeout"]
    )
    publish_round = publish_file * publish_threads
    publish = v["Distributed Map run overhead"] + ramp + cold + waves * publish_child

    partitions = 1 if kind == "full" else v["incremental objects per data file"]
    finalize = cold + _rounds(shares, plan_threads) * lat + partitions * lat + page + delete

    transitions = v["DynamoDB parent steps"] * v["state transition"]
    steps = [
        Step("PlanConversion", plan, plan, v["ConvertPlanFunction.Timeout"], f"{files} manifest lines, {shares} share lists"),
        Step(
            "ScanFiles (Distributed Map)",
            scan,
            scan_longest,
            v["ConvertScanFunction.Timeout"],
            f"{shares} children x {per_share} files, {waves} wave(s); {scan_invocations} invocation(s) per child",
        ),
        Step("MergeSchema", merge, merge, v["ConvertMergeFunction.Timeout"], f"{shares} share schemas read"),
        Step(
            "ConvertFiles (Distributed Map)",
            convert,
            convert_longest,
            v["ConvertFilesFunction.Timeout"],
            f"{convert_invocations} invocation(s) per child",
        ),
        Step("MarkPublishing", cold + 2 * lat, cold + 2 * lat, 60, "one conditional DynamoDB write"),
        Step(
            "PublishFiles (Distributed Map)",
            publish,
            publish_longest,
            v["ConvertPublishFunction.Timeout"],
            f"{int(copies)} copies per child; {publish_invocations} invocation(s) per child",
        ),
        Step("FinalizeConversion", finalize, finalize, v["ConvertFinalizeFunction.Timeout"], f"{shares} share summaries read"),
        Step("state transitions (parent)", transitions, 0, 0, f"{v['DynamoDB parent steps']:g} x {v['state transition']:g} s"),
    ]
    scenario = Scenario(name, target, steps)
    # A looping child enters its Task and Choice once per invocation and its last Pass once.
    child_transitions = shares * sum(2 * invocations + 1 for invocations in (scan_invocations, convert_invocations, publish_invocations))
    scenario.facts = {
        "data files": files,
        "data file (uncompressed)": f"{file_bytes / MIB:.0f} MiB",
        "shares (children per Map)": shares,
        "files per share": per_share,
        "waves per Map": waves,
        "scan / convert MB/s per child": f"{scan_rate:.1f} / {convert_rate:.1f}",
        "PlanConversion memory (measured per file)": f"{plan_memory:.0f} MB of {v['ConvertPlanFunction.MemorySize']:g}",
        "state transitions per 1,000 data files": round((v["DynamoDB parent transitions"] + child_transitions) / files * 1000, 1),
    }
    payloads = {
        "PlanConversion response": shares * v["plan response per share"] + 400,
        "items.json item": 400,
        "Map result (3 bytes per child)": shares * 3,
    }
    gets_per_second = children_at_once / scan_file
    scenario.checks = {f"{what} ({size / 1024:.0f} KiB) <= 256 KiB": size <= v["Step Functions payload"] for what, size in payloads.items()}
    scenario.checks.update(
        {
            f"one data file's scan ({file_mb / scan_rate:.0f} s) fits the ScanFiles reserve": file_mb / scan_rate < v["ScanFiles reserve"],
            f"one data file's convert ({file_mb / convert_rate:.0f} s) fits the ConvertFiles reserve": file_mb / convert_rate
            < v["ConvertFiles reserve"],
            f"one round of {publish_threads:g} files' copies ({publish_round:.0f} s) fits the PublishFiles reserve": publish_round
            < v["PublishFiles reserve"],
            "PlanConversion memory fits its Lambda": plan_memory < v["ConvertPlanFunction.MemorySize"] * 0.8,
            f"data-file GETs/s ({gets_per_second:.0f}) <= {v['S3 GET/HEAD per prefix']:g}": gets_per_second <= v["S3 GET/HEAD per prefix"],
            "parent history well under 25,000 events": v["DynamoDB parent transitions"] * 5 < v["execution history"],
            "children at once <= Lambda account concurrency": children_at_once <= v["Lambda account concurrency"],
        }
    )
    scenario.facts["items.json"] = f"{shares * v['items.json per share'] / 1024:.0f} KiB"
    return scenario


def _library_shares(conversion: Any, files: int) -> int:
    return int(min(conversion.MAX_SHARES, max(1, min(8, files), -(-files // conversion.FILES_PER_SHARE))))


# ---------------------------------------------------------------------------------------------------- report


def run(inputs: dict[str, Input]) -> list[Scenario]:
    v = {key: value.value for key, value in inputs.items()}
    lease = v["export lease"]
    scenarios = [
        rds_model(inputs, 2 * TB, 20_000, "RDS 2 TB in 20,000 files", 120),
        ddb_model(inputs, 1 * TB, "DynamoDB 1 TB (full export)", 15 * 60),
        ddb_model(inputs, 10 * TB, "DynamoDB 10 TB (full export)", None),
        # Sensitivity: what the assumptions would have to be wrong by.
        rds_model(
            {**inputs, "S3 copy throughput per stream": _half(inputs["S3 copy throughput per stream"])},
            2 * TB,
            20_000,
            "RDS 2 TB, copy throughput halved (25 MiB/s)",
            120,
        ),
        ddb_model(
            {**inputs, "Lambda core vs benchmark core": _half(inputs["Lambda core vs benchmark core"])},
            1 * TB,
            "DynamoDB 1 TB, Lambda cores half as fast (0.35x)",
            15 * 60,
        ),
        ddb_model(inputs, 10 * TB, "DynamoDB 10 TB in 16 MiB files (~600,000 files)", None, file_bytes=16 * MIB),
        ddb_model(inputs, 1 * TB, "DynamoDB 1 TB incremental (25 hour partitions per file)", 15 * 60, kind="incremental"),
    ]
    for scenario in scenarios:
        if scenario.name.startswith("DynamoDB"):
            scenario.checks[f"conversion ({scenario.seconds / 3600:.1f} h) well inside the 36 h export lease"] = (
                scenario.seconds < lease / 2
            )
    return scenarios


def _half(value: Input) -> Input:
    return Input(value.value / 2, value.unit, "assumed", f"half of: {value.source}")


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def report(inputs: dict[str, Input], scenarios: list[Scenario]) -> dict[str, Any]:
    print("INPUTS")
    for kind in ("measured", "configured", "code", "documented", "assumed"):
        for name, item in inputs.items():
            if item.kind == kind:
                value = f"{item.value:,.6g}" if item.value < 1e6 else f"{item.value:,.0f}"
                print(f"  {kind:<10} {name:<40} {value:>14} {item.unit:<18} {item.source}")
    summary: dict[str, Any] = {}
    for scenario in scenarios:
        print(
            f"\n{scenario.name}: {_duration(scenario.seconds)}"
            + (f" (target <= {_duration(scenario.target_seconds)})" if scenario.target_seconds else "")
        )
        for key, value in scenario.facts.items():
            print(f"    {key}: {value}")
        for step in scenario.steps:
            limit = f"longest invocation {step.invocation_seconds:6.0f} s of {step.timeout:4.0f} s" if step.timeout else ""
            flag = "" if step.fits else "  OVER ITS TIMEOUT"
            print(f"  {step.name:<32} {_duration(step.seconds):>9}   {limit}{flag}   {step.note}")
        for check, ok in scenario.checks.items():
            print(f"  {'ok     ' if ok else 'FAILED '} {check}")
        met = all(step.fits for step in scenario.steps) and all(scenario.checks.values())
        if scenario.target_seconds is not None:
            met = met and scenario.seconds <= scenario.target_seconds
        summary[scenario.name] = {"seconds": round(scenario.seconds), "met": met}
    print()
    for name, result in summary.items():
        print(f"{'met    ' if result['met'] else 'MISSED '} {name}: {_duration(result['seconds'])}")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--measure-mb", type=float, default=0, help="re-measure scan and convert rates on a file of this many MB")
    parser.add_argument("--fanout-json", type=Path, help="a saved benchmarks/ddb_fanout.py output (its JSON part)")
    parser.add_argument("--json", action="store_true", help="also print the summary as JSON (last line)")
    parser.add_argument("--smoke", action="store_true", help="measure on a 1 MB file: proves the script runs")
    args = parser.parse_args(argv)
    fanout = None
    if args.fanout_json:
        text = args.fanout_json.read_text()
        fanout = json.loads(text[: text.rindex("}") + 1])
    inputs = {**configured(), **code_constants(), **measured(fanout), **assumptions()}
    if args.measure_mb or args.smoke:
        inputs.update(measure_rates(1.0 if args.smoke else args.measure_mb))
    summary = report(inputs, run(inputs))
    if args.json:
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
