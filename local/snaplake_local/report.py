"""What landed in the lake: tables, partitions, files, rows, and a sample; and query answers, asked through the
(emulated) Athena API and printed as a table, CSV or JSON."""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from snaplake.core.names import SUCCESS_MARKER

from snaplake_local.emulator import Emitted, landed_summary, total


@dataclass
class Partition:
    prefix: str
    files: int = 0
    rows: int = 0
    bytes: int = 0
    complete: bool = False
    keys: list[str] = field(default_factory=list)


def lake_partitions(s3: Any, bucket: str, prefix: str = "") -> list[Partition]:
    """Group the lake's Parquet files by table partition (the folder holding `_SUCCESS`)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    objects = {
        obj["Key"]: obj["Size"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for obj in page.get("Contents", [])
    }
    # Iceberg tables (`<table>_current`: `metadata/*.metadata.json` beside `data/`) have no partitions to report.
    iceberg = {key.rsplit("/metadata/", 1)[0] + "/data/" for key in objects if "/metadata/" in key and key.endswith(".metadata.json")}
    roots = sorted(key[: -len(SUCCESS_MARKER)] for key in objects if key.endswith("/" + SUCCESS_MARKER))
    # A partition's marker sits above its batch folders, whose own markers are deeper.
    partition_roots = [root for root in roots if not any(root != other and root.startswith(other) for other in roots)]
    found: dict[str, Partition] = defaultdict(lambda: Partition(""))
    for key, size in sorted(objects.items()):
        if not key.endswith(".parquet") or any(key.startswith(folder) for folder in iceberg):
            continue
        root = next((r for r in partition_roots if key.startswith(r)), key.rsplit("/", 2)[0] + "/")
        partition = found[root]
        partition.prefix = root
        partition.complete = root in partition_roots
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        partition.rows += pq.ParquetFile(pa.BufferReader(body)).metadata.num_rows
        partition.files += 1
        partition.bytes += size
        partition.keys.append(key)
    return sorted(found.values(), key=lambda p: p.prefix)


def sample_rows(s3: Any, bucket: str, partition: Partition, limit: int = 3) -> list[dict[str, Any]]:
    """The first `limit` rows of the partition's files. Read with ParquetFile on this thread, never
    pq.read_table: on an in-memory buffer its dataset scan leaves Arrow pool threads releasing the
    Python buffer after it returns (apache/arrow#33975), and one still doing so when the interpreter
    finalizes aborts the process ("terminate called without an active exception", exit 134)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows: list[dict[str, Any]] = []
    for key in partition.keys:
        table = pq.ParquetFile(pa.BufferReader(s3.get_object(Bucket=bucket, Key=key)["Body"].read())).read(use_threads=False)
        rows.extend(table.slice(0, limit - len(rows)).to_pylist())
        if len(rows) >= limit:
            break
    return rows


def format_table(partitions: list[Partition]) -> str:
    header = ("partition", "files", "rows", "bytes", "_SUCCESS")
    lines = [(p.prefix, str(p.files), str(p.rows), str(p.bytes), "yes" if p.complete else "NO") for p in partitions]
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    out = ["  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)) for row in [header, *lines]]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------- query answers
_NUMERIC = {"tinyint", "smallint", "integer", "bigint", "real", "double", "decimal"}


def athena_answer(
    athena: Any, advance: Callable[[float], None], sql: str, *, work_group: str, output_location: str, database: str | None = None
) -> tuple[list[dict[str, Any]], list[list[str | None]]]:
    """Run `sql` through the (emulated) Athena API: StartQueryExecution, poll GetQueryExecution (advancing the
    emulator's clock with `advance`), then every page of GetQueryResults. Returns (ColumnInfo, rows as text)."""
    params: dict[str, Any] = {"QueryString": sql, "WorkGroup": work_group, "ResultConfiguration": {"OutputLocation": output_location}}
    if database:
        params["QueryExecutionContext"] = {"Database": database}
    query_id = athena.start_query_execution(**params)["QueryExecutionId"]
    while True:
        status = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"]
        if status["State"] not in ("QUEUED", "RUNNING"):
            break
        advance(1)
    if status["State"] != "SUCCEEDED":
        raise RuntimeError(f"Athena query {status['State']}: {status.get('StateChangeReason', '')}")
    columns: list[dict[str, Any]] = []
    rows: list[list[str | None]] = []
    for page in athena.get_paginator("get_query_results").paginate(QueryExecutionId=query_id):
        columns = columns or page["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]
        rows.extend([cell.get("VarCharValue") for cell in row["Data"]] for row in page["ResultSet"]["Rows"])
    return columns, rows[1:]  # the first row of a SELECT's results is its header


def format_rows(columns: list[dict[str, Any]], rows: list[list[str | None]], style: str = "table") -> str:
    """Query results as an aligned `table` (NULL shown as NULL), `csv` (NULL empty) or `json` (an array of objects,
    numbers and booleans typed, decimals as text to keep every digit)."""
    names = [str(column["Name"]) for column in columns]
    types = [str(column.get("Type", "varchar")) for column in columns]
    if style == "csv":
        body = io.StringIO()
        writer = csv.writer(body, lineterminator="\n")
        writer.writerow(names)
        writer.writerows(["" if value is None else value for value in row] for row in rows)
        return body.getvalue().rstrip("\n")
    if style == "json":
        return json.dumps([dict(zip(names, map(_json_value, row, types), strict=True)) for row in rows], indent=2, ensure_ascii=False)
    shown = [["NULL" if value is None else value for value in row] for row in rows]
    widths = [max(len(text) for text in [name] + [row[i] for row in shown]) for i, name in enumerate(names)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if t in _NUMERIC else c.ljust(w) for c, w, t in zip(cells, widths, types, strict=True)).rstrip()

    return "\n".join([line(names), "  ".join("-" * w for w in widths), *map(line, shown)])


def _json_value(value: str | None, kind: str) -> Any:
    if value is None:
        return None
    if kind in ("tinyint", "smallint", "integer", "bigint"):
        return int(value)
    if kind in ("real", "double") and value not in ("NaN", "Infinity", "-Infinity"):
        return float(value)
    if kind == "boolean":
        return value == "true"
    return value


def landing_event_lines(events: list[dict[str, Any]]) -> list[str]:
    """One line per "Lake Partition Landed" event the pipelines put (docs/events.md), after a heading."""
    lines = [f"\nlanding events put on EventBridge: {len(events)} (a re-delivered input puts its partitions' events again, same landingId)"]
    for event in events:
        detail = event["detail"]
        partition = ",".join(f"{k}={v}" for k, v in detail["partition"].items())
        table, rows, landing_id = detail["qualifiedTable"], detail["rows"], detail["landingId"][:12]
        lines.append(f"  {detail['pipeline']:<17} {table:<32} {partition:<34} rows={rows:<4} id={landing_id}")
    return lines


def metrics_lines(emitted: list[Emitted]) -> list[str]:
    """What the handlers emitted as CloudWatch metrics (EMF on stdout, taken off it by capture_metrics), after a heading."""
    heading = (
        f"\nmetrics emitted (CloudWatch EMF, {len(emitted)} documents; docs/operations.md#metrics): landed per pipeline, source, table"
    )
    counts = (
        f"  snapshots landed {total(emitted, 'SnapshotsLanded'):.0f}, checkpoints committed {total(emitted, 'CheckpointsCommitted'):.0f}"
    )
    return [heading, *("  " + line for line in landed_summary(emitted)), counts]


def map_children(runs: list[Any]) -> str:
    """The state transitions of an execution's Distributed Map children, whose histories are their own (not the parent's)."""
    transitions = sum(1 for run in runs for event in run.history if event["type"].endswith("StateEntered"))
    return f"{transitions} in {sum(run.items for run in runs)} Map child workflows"
