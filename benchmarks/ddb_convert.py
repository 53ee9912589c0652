"""Figures for the DynamoDB export conversion (snaplake.ddb_parquet), printed (never asserted):

- throughput on one DynamoDB-JSON data file of nested, typed items (default 100 MB uncompressed), in MB/s of
  uncompressed JSON, for: snaplake (scan pass, convert pass to Parquet, both; from the gzip file and from the
  decompressed file), a pure-Python baseline (gzip + json + boto3 TypeDeserializer + pa.Table.from_pylist, no
  Parquet), and raw pyarrow.json.read_json of the decompressed file (parse only, whole file at once)
- peak RSS of scan + convert of 0.5 / 1 / 2 GB (uncompressed) files, each in a fresh subprocess (the scan staging its
  conversion in a file, the convert carrying it over, as the pipeline runs them)

- with `--vs-duckdb` only: per-core throughput (MB of uncompressed JSON per CPU second, every thread counted) of
  snaplake's scan + convert as the pipeline runs them (the scan stages its conversion, the convert carries it
  over; and, for reference, the convert that parses the JSON again) and of DuckDB (one thread) unwrapping the same
  gzip file's type descriptors by hand-written SQL into the same types and writing Parquet, alternating runs, best
  of each, and the ratios

Run: `python benchmarks/ddb_convert.py [--mb 100] [--rss-sizes 0.5,1,2] [--smoke] [--vs-duckdb]`.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MB = 1024**2
_CITIES = ["Berlin", "Lisbon", "Osaka", "Denver", "Nairobi", "Québec", "São Paulo", "Zürich"]
_STATUSES = ["NEW", "PAID", "SHIPPED", "DELIVERED", "RETURNED"]
_TAGS = ["gift", "express", "fragile", "bulk", "promo", "eu", "vip"]
_AUTHORS = ["system", "alice", "bob", "carol"]


def item_line(index: int, rng: random.Random) -> str:
    """One realistic export line: S, integral and decimal N, BOOL, a 2-level M, SS, L, NULL, some optional attributes."""
    tags = ",".join(f'"{tag}"' for tag in rng.sample(_TAGS, rng.randint(1, 3)))
    optional = ""
    if index % 3 == 0:
        optional += f',"comment":{{"S":"please ring twice \\"{index}\\"\\nthanks"}}'
    if index % 7 == 0:
        optional += f',"discount":{{"N":"{rng.randint(1, 50)}"}}'
    return (
        f'{{"Item":{{"pk":{{"S":"customer#{rng.randint(1, 10**6)}"}},"sk":{{"S":"order#{index:09d}"}},'
        f'"status":{{"S":"{rng.choice(_STATUSES)}"}},'
        f'"created_at":{{"S":"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}'
        f'T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00Z"}},'
        f'"qty":{{"N":"{rng.randint(1, 500)}"}},"price":{{"N":"{rng.randint(0, 9999)}.{rng.randint(0, 99):02d}"}},'
        f'"weight_kg":{{"N":"{rng.randint(0, 99)}.{rng.randint(0, 999999):06d}"}},"active":{{"BOOL":{"true" if index % 2 else "false"}}},'
        f'"address":{{"M":{{"city":{{"S":"{rng.choice(_CITIES)}"}},"zip":{{"S":"{rng.randint(0, 99999):05d}"}},'
        f'"geo":{{"M":{{"lat":{{"N":"{rng.uniform(-90, 90):.6f}"}},"lon":{{"N":"{rng.uniform(-180, 180):.6f}"}}}}}}}}}},'
        f'"tags":{{"SS":[{tags}]}},'
        f'"history":{{"L":[{{"S":"created"}},{{"N":"{1700000000 + index}"}},'
        f'{{"M":{{"by":{{"S":"{rng.choice(_AUTHORS)}"}},"ok":{{"BOOL":true}}}}}}]}},'
        f'"note":{{"NULL":true}}{optional}}}}}\n'
    )


def generate_lines(target_bytes: int, seed: int) -> bytes:
    rng = random.Random(seed)
    parts: list[str] = []
    size = 0
    index = 0
    while size < target_bytes:
        line = item_line(index, rng)
        parts.append(line)
        size += len(line)
        index += 1
    return "".join(parts).encode()


def write_gzip_file(path: Path, uncompressed_bytes: int, segment_bytes: int = 32 * MB) -> int:
    """A gzip data file of about `uncompressed_bytes`: distinct items up to segment_bytes, then that segment
    repeated as further gzip members (valid gzip, fast to produce at any size). Returns uncompressed size."""
    segment = generate_lines(min(uncompressed_bytes, segment_bytes), seed=7)
    member = gzip.compress(segment, compresslevel=1)
    written = 0
    with path.open("wb") as out:
        while written < uncompressed_bytes:
            out.write(member)
            written += len(segment)
    return written


def _timed(action: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


# --------------------------------------------------------------------------- throughput


def _baseline(path: Path) -> int:
    """gzip + json + boto3 TypeDeserializer into pyarrow with pa.Table.from_pylist (maps flattened, L as JSON text)."""
    import pyarrow as pa
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()

    def plain(value: Any) -> Any:
        if isinstance(value, set):
            return sorted(value)
        if isinstance(value, list):
            return json.dumps(value, default=str, sort_keys=True)
        return value

    def flatten(prefix: str, value: Any, depth: int, row: dict[str, Any]) -> None:
        if isinstance(value, dict) and depth < 3:
            for name, child in value.items():
                flatten(f"{prefix}__{name}", child, depth + 1, row)
        elif isinstance(value, dict):
            row[prefix] = json.dumps(value, default=str, sort_keys=True)
        else:
            row[prefix] = plain(value)

    rows: list[dict[str, Any]] = []
    count = 0
    with gzip.open(path, "rb") as stream:
        for line in stream:
            item = json.loads(line)["Item"]
            row: dict[str, Any] = {}
            for name, value in item.items():
                flatten(name, deserializer.deserialize(value), 1, row)
            rows.append(row)
            if len(rows) == 50_000:
                count += pa.Table.from_pylist(rows).num_rows
                rows = []
    if rows:
        count += pa.Table.from_pylist(rows).num_rows
    return count


def _raw_read_json(path: Path) -> int:
    import pyarrow.json as pj

    return int(pj.read_json(str(path)).num_rows)


def throughput(mb: float, scratch: Path, repeats: int) -> dict[str, Any]:
    from snaplake.dynamodb.parquet import ConvertOptions, convert_file, scan_file

    options = ConvertOptions()
    lines = generate_lines(int(mb * MB), seed=11)
    size_mb = len(lines) / MB
    plain_path = scratch / "data.json"
    gz_path = scratch / "data.json.gz"
    plain_path.write_bytes(lines)
    gz_path.write_bytes(gzip.compress(lines, compresslevel=1))
    del lines
    out = scratch / "out.parquet"

    def scan(opener: Callable[[], Any]) -> Any:
        with opener() as stream:
            return scan_file(stream, "full", options)

    def convert(opener: Callable[[], Any], schema: Any) -> int:
        with opener() as stream:
            return convert_file(stream, schema, "full", options, out)

    def open_gz() -> Any:
        return gzip.open(gz_path, "rb")

    def open_plain() -> Any:
        return plain_path.open("rb")

    # Interleaved repeats, best of each: the figures are for a quiet machine, and ratios compare like with like.
    seconds: dict[str, float] = {}

    def record(name: str, action: Callable[[], Any]) -> Any:
        elapsed, result = _timed(action)
        seconds[name] = min(elapsed, seconds.get(name, elapsed))
        return result

    for _ in range(repeats):
        raw_rows = record("raw pyarrow read_json (decompressed file)", lambda: _raw_read_json(plain_path))
        schema, rows = record("snaplake scan (gzip)", lambda: scan(open_gz))
        written = record("snaplake convert (gzip)", lambda: convert(open_gz, schema))  # noqa: B023 - called at once
        record("snaplake scan (decompressed file)", lambda: scan(open_plain))
        record("snaplake convert (decompressed file)", lambda: convert(open_plain, schema))  # noqa: B023 - called at once
    baseline_rows = record("pure-Python baseline (gzip)", lambda: _baseline(gz_path))
    if not (rows == written == raw_rows == baseline_rows):
        raise SystemExit(f"row counts differ: scan {rows}, convert {written}, read_json {raw_rows}, baseline {baseline_rows}")
    seconds["snaplake scan + convert (gzip)"] = seconds["snaplake scan (gzip)"] + seconds["snaplake convert (gzip)"]
    seconds["snaplake scan + convert (decompressed file)"] = (
        seconds["snaplake scan (decompressed file)"] + seconds["snaplake convert (decompressed file)"]
    )
    rates = {name: round(size_mb / value, 1) for name, value in seconds.items()}
    raw = rates["raw pyarrow read_json (decompressed file)"]
    baseline = rates["pure-Python baseline (gzip)"]
    return {
        "file_mb_uncompressed": round(size_mb, 1),
        "file_mb_gzip": round(gz_path.stat().st_size / MB, 1),
        "rows": rows,
        "columns": len(schema.arrow_schema("full", options)),
        "mb_per_s": rates,
        "ratios": {
            "convert (gzip) / baseline": round(rates["snaplake convert (gzip)"] / baseline, 2),
            "scan + convert (gzip) / baseline": round(rates["snaplake scan + convert (gzip)"] / baseline, 2),
            "convert (decompressed) / raw read_json": round(rates["snaplake convert (decompressed file)"] / raw, 2),
            "convert (gzip) / raw read_json": round(rates["snaplake convert (gzip)"] / raw, 2),
            "scan + convert (decompressed) / raw read_json": round(rates["snaplake scan + convert (decompressed file)"] / raw, 2),
        },
    }


# --------------------------------------------------------------------------- against DuckDB


def _cpu_timed(action: Callable[[], Any]) -> tuple[float, Any]:
    """CPU seconds of every thread of this process: per-core throughput whatever threads each engine uses."""
    started = time.process_time()
    result = action()
    return time.process_time() - started, result


def versus_duckdb(mb: float, scratch: Path, repeats: int) -> dict[str, Any]:
    """snaplake scan + convert and DuckDB (benchmarks/duckdb_reference.py) on the same gzip file, alternating, best CPU
    time of each: DuckDB told the types (the issue's figure) and DuckDB discovering them from the data, as snaplake does.

    snaplake runs as the pipeline does: the scan (ScanFiles) also stages its conversion of each block, and the
    convert (ConvertFiles) carries the stage over to the schema. For reference, in the same alternation: the scan
    without a stage and the convert that parses the JSON again (the two passes before; ConvertFiles' fallback)."""
    if str(ROOT) not in sys.path:  # run as a script
        sys.path.insert(0, str(ROOT))
    from snaplake.dynamodb.parquet import ConvertOptions, convert_file, convert_staged, scan_file

    from benchmarks.duckdb_reference import discovering_unwrap, typed_unwrap

    options = ConvertOptions()
    lines = generate_lines(int(mb * MB), seed=11)
    size_mb = len(lines) / MB
    gz_path = scratch / "data.json.gz"
    gz_path.write_bytes(gzip.compress(lines, compresslevel=1))
    del lines
    stage_path = scratch / "stage.arrows"
    seconds: dict[str, float] = {}
    counts: dict[str, int] = {}

    def record(name: str, action: Callable[[], Any]) -> Any:
        elapsed, result = _cpu_timed(action)
        seconds[name] = min(elapsed, seconds.get(name, elapsed))
        return result

    def scan() -> Any:
        with gzip.open(gz_path, "rb") as stream, stage_path.open("wb") as stage:
            return scan_file(stream, "full", options, stage)

    def convert(schema: Any) -> int:
        with stage_path.open("rb") as stage:
            return convert_staged(stage, schema, "full", options, scratch / "snaplake.parquet")

    def convert_json(schema: Any) -> int:
        with gzip.open(gz_path, "rb") as stream:
            return convert_file(stream, schema, "full", options, scratch / "snaplake-json.parquet")

    def scan_only() -> Any:
        with gzip.open(gz_path, "rb") as stream:
            return scan_file(stream, "full", options)

    def floor() -> int:
        """What any pass over the file with pyarrow's JSON reader costs at least: gunzip and parse, nothing else."""
        from snaplake.dynamodb.parquet import iter_blocks
        from snaplake.dynamodb.parquet.reading import read_exact

        parse_schema = schema.column_plan("full", options).parse_schema
        with gzip.open(gz_path, "rb") as stream:
            return sum(read_exact(block, parse_schema, "full", 1).num_rows for block in iter_blocks(stream, options.block_bytes))

    scan_name, staged_name = "snaplake scan (staging its conversion)", "snaplake convert (from the stage)"
    plain_scan_name, json_name = "snaplake scan (no stage)", "snaplake convert from JSON"
    discovering_name = "duckdb discovering the schema, then converting"
    for _ in range(repeats):
        counts["duckdb"] = record("duckdb typed unwrap", lambda: typed_unwrap(gz_path, scratch / "duckdb.parquet"))
        counts["discovering"] = record(discovering_name, lambda: discovering_unwrap(gz_path, scratch / "duckdb-discovering.parquet"))
        schema, counts["scan"] = record(scan_name, scan)
        counts["convert"] = record(staged_name, lambda: convert(schema))  # noqa: B023 - called at once
        counts["plain scan"] = record(plain_scan_name, scan_only)[1]
        counts["json"] = record(json_name, lambda: convert_json(schema))  # noqa: B023 - called at once
        counts["floor"] = record("floor: gunzip + pyarrow JSON parse only", floor)
    if len(set(counts.values())) != 1:
        raise SystemExit(f"row counts differ: {counts}")
    if (scratch / "snaplake.parquet").read_bytes() != (scratch / "snaplake-json.parquet").read_bytes():
        raise SystemExit("the Parquet file from the stage differs from the one from the JSON")
    seconds["snaplake scan + convert"] = seconds[scan_name] + seconds[staged_name]
    seconds["before: scan (no stage) + convert from JSON"] = seconds[plain_scan_name] + seconds[json_name]
    rates = {name: round(size_mb / value, 1) for name, value in seconds.items()}
    duck = rates["duckdb typed unwrap"]
    discovering = rates[discovering_name]
    return {
        "file_mb_uncompressed": round(size_mb, 1),
        "stage_mb": round(stage_path.stat().st_size / MB, 1),
        "rows": counts["duckdb"],
        "mb_per_cpu_second": rates,
        "ratios": {
            "snaplake scan + convert / duckdb": round(rates["snaplake scan + convert"] / duck, 2),
            "snaplake scan / duckdb": round(rates[scan_name] / duck, 2),
            "before: scan + convert from JSON / duckdb": round(rates["before: scan (no stage) + convert from JSON"] / duck, 2),
            "floor (gunzip + parse, once) / duckdb": round(rates["floor: gunzip + pyarrow JSON parse only"] / duck, 2),
            "duckdb discovering / duckdb": round(discovering / duck, 2),
            "snaplake scan + convert / duckdb discovering": round(rates["snaplake scan + convert"] / discovering, 2),
        },
    }


# --------------------------------------------------------------------------- peak RSS


def _peak_rss_mb() -> dict[str, float]:
    """Peak and current RSS of this process. VmHWM is the figure: on Linux a child's ru_maxrss also counts the
    parent's resident set at fork time (exec keeps it), so ru_maxrss is only the fallback where /proc is missing."""
    figures: dict[str, float] = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(("VmHWM:", "VmRSS:")):
                name, value = line.split(":")
                figures["peak_rss_mb" if name == "VmHWM" else "rss_now_mb"] = round(int(value.split()[0]) / 1024, 1)
    except OSError:
        figures["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return figures


def rss_child(path: str, out: str) -> dict[str, Any]:
    """Scan (staging its conversion) then convert (from the stage) one file in this (fresh) process; report time and
    peak memory."""
    from snaplake.dynamodb.parquet import ConvertOptions, convert_staged, scan_file

    options = ConvertOptions()
    after_import = _peak_rss_mb()
    started = time.perf_counter()
    stage_path = f"{out}.stage"
    with gzip.open(path, "rb") as stream, open(stage_path, "wb") as stage:
        schema, rows = scan_file(stream, "full", options, stage)
    scanned = time.perf_counter()
    with open(stage_path, "rb") as stage:
        written = convert_staged(stage, schema, "full", options, out)
    os.remove(stage_path)
    finished = time.perf_counter()
    if rows != written:
        raise SystemExit(f"scan counted {rows} rows, convert wrote {written}")
    return {
        "rows": rows,
        "scan_seconds": round(scanned - started, 1),
        "convert_seconds": round(finished - scanned, 1),
        "rss_after_imports_mb": after_import.get("rss_now_mb"),
        **_peak_rss_mb(),
    }


def peak_rss(sizes_gb: list[float], scratch: Path) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for size in sizes_gb:
        path = scratch / f"rss-{size}.json.gz"
        uncompressed = write_gzip_file(path, int(size * 1024**3))
        out = scratch / f"rss-{size}.parquet"
        command = [sys.executable, __file__, "--rss-child", str(path), str(out)]
        result = subprocess.run(command, check=True, capture_output=True, text=True)
        child = json.loads(result.stdout.strip().splitlines()[-1])
        figures[f"{size} GB"] = {"uncompressed_mb": round(uncompressed / MB), "gzip_mb": round(path.stat().st_size / MB), **child}
        path.unlink()
        out.unlink(missing_ok=True)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=float, default=100, help="uncompressed size of the throughput file (default 100)")
    parser.add_argument("--rss-sizes", default="0.5,1,2", help="uncompressed GB of the peak-RSS files (default 0.5,1,2)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each throughput figure, best kept (default 3)")
    parser.add_argument("--smoke", action="store_true", help="a few MB and tiny RSS files: proves the script runs")
    parser.add_argument("--vs-duckdb", action="store_true", help="only: snaplake scan + convert against DuckDB's typed unwrap")
    parser.add_argument("--rss-child", nargs=2, metavar=("GZ", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rss_child:
        print(json.dumps(rss_child(*args.rss_child)))
        return 0
    mb = 3.0 if args.smoke else args.mb
    if args.vs_duckdb:
        scratch = Path(tempfile.mkdtemp(prefix="ddb-convert-duckdb-"))
        try:
            versus = versus_duckdb(mb, scratch, 1 if args.smoke else args.repeats)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        print(json.dumps({"cpus": os.cpu_count(), "versus_duckdb": versus}, indent=2))
        for ratio, what in (
            ("snaplake scan + convert / duckdb", "DuckDB's typed unwrap (told the types)"),
            ("snaplake scan + convert / duckdb discovering", "DuckDB discovering the schema from the data, as snaplake does"),
        ):
            met = versus["ratios"][ratio] >= 1.0
            print(f"{'met    ' if met else 'MISSED '} scan + convert per core >= 1.0x {what}: {versus['ratios'][ratio]}x")
        return 0
    sizes = [0.005, 0.01] if args.smoke else [float(size) for size in args.rss_sizes.split(",") if size.strip()]
    scratch = Path(tempfile.mkdtemp(prefix="ddb-convert-bench-"))
    try:
        figures: dict[str, Any] = {"cpus": os.cpu_count(), "throughput": throughput(mb, scratch, 1 if args.smoke else args.repeats)}
        figures["peak_rss"] = peak_rss(sizes, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(json.dumps(figures, indent=2))
    if args.smoke:
        print("smoke run: the files are too small for the targets (>= 100 MB, 0.5-2 GB); this only proves the script runs")
        return 0
    ratios = figures["throughput"]["ratios"]
    peaks = [entry["peak_rss_mb"] for entry in figures["peak_rss"].values()]
    targets = {
        "convert >= 5x the pure-Python baseline": ratios["convert (gzip) / baseline"] >= 5,
        "convert >= 50% of raw pyarrow read_json": ratios["convert (decompressed) / raw read_json"] >= 0.5,
    }
    if peaks:
        targets["peak RSS <= 512 MB at every size"] = max(peaks) <= 512
        targets["peak RSS flat in file size (largest <= 1.25x smallest)"] = max(peaks) <= 1.25 * min(peaks)
    for target, met in targets.items():
        print(f"{'met    ' if met else 'MISSED '} {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
