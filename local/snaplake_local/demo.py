"""`snaplake local demo`, `snaplake local rds` and `snaplake local dynamodb`: the pipelines on the embedded emulator."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from snaplake.athena import AthenaSettings
from snaplake.core.times import iso_utc, parse_iso_utc
from snaplake.rds.snapshots import SnapshotRef, parse_request

from snaplake_local import report
from snaplake_local.emulator import (
    CATALOG_FILE,
    DirectorySource,
    TablesSource,
    capture_metrics,
    load_catalog,
    save_catalog,
)
from snaplake_local.report import athena_answer, format_rows, format_table, lake_partitions, landing_event_lines, metrics_lines, sample_rows
from snaplake_local.sample_data import orders_items
from snaplake_local.sources import (
    ORDERS_TABLE,
    PII_RULES,
    SHOP_INSTANCE,
    WORLD_CLUSTER,
    cluster_snapshot,
    create_cluster,
    create_instance,
    create_orders_table,
    default_parameters,
    instance_snapshot,
    sample_event,
    seed_sample_sources,
)
from snaplake_local.stack import EmulatedStack, Execution

RDS_STATE_MACHINE = "RdsExportStateMachine"
DDB = "DynamoDbExportStateMachine"
ATHENA = "AthenaEtlStateMachine"
Printer = Callable[[str], None]


class StepPrinter:
    """Prints one line per pipeline step as the in-process handlers return."""

    def __init__(self, stack: EmulatedStack, echo: Printer):
        self.echo = echo
        self.names = {stack.physical[logical]["ref"]: logical for logical in stack.physical}
        self.last_status: str | None = None

    def __call__(self, function: str, event: Any, payload: Any, errored: bool) -> None:
        step = self.names.get(function, function).removesuffix("Function")
        if errored:
            self.echo(f"    {step:<15} ERROR {payload.get('errorType')}: {payload.get('errorMessage')}")
            return
        line = self._describe(step, payload)
        if line:
            self.echo(f"    {step:<15} {line}")

    def _describe(self, step: str, p: dict[str, Any]) -> str | None:
        if step == "SnapshotFilter":
            self.last_status = None
            if not p["export"]:
                return f"skip: {p['reason']}"
            source = f"{p['sourceType']} {p['sourceIdentifier']} ({p['engine']})"
            return f"export {source} snapshot {p['snapshotIdentifier']} taken {p['snapshotTime']}"
        if step == "StartExport":
            return f"export task {p['exportTaskIdentifier']} {'(already started: reused)' if p['reused'] else 'started'}"
        if step == "PollExport":
            if p["status"] == self.last_status:
                return None
            self.last_status = p["status"]
            return f"{p['status']} {p['percentProgress']}% (poll {p['polls']})"
        if step == "PlanCopy":
            work = f"{p['batches']} batches for {len(p['workers'])} workers"
            return f"{p['objects']} data files, {p['bytes']:,} bytes, {p['tables']} tables -> {work}"
        if step == "CopyBatch":
            return f"worker {p['share']['worker']}: copied {p['copied']}, already there {p['skipped']}" + (
                "" if p["done"] else " (continues)"
            )
        if step == "FinalizeCopy":
            return f"{p['tables']} table partitions complete, _SUCCESS written"
        return self._describe_dynamodb(step, p)

    def _describe_dynamodb(self, step: str, p: dict[str, Any]) -> str | None:
        if step == "AthenaQuery":
            if "jobs" in p:
                return f"{len(p['jobs'])} jobs valid: {', '.join(job['name'] for job in p['jobs'])}"
            if "dropped" in p:  # DropTemporaryTables
                return f"temporary tables dropped: {', '.join(p['dropped']) or 'none'}" if p["done"] else None
            if not p["done"]:
                return None
            result = p["result"]
            queries = f"{result['queries']} {'query' if result['queries'] == 1 else 'queries'}"
            detail = f"skipped: {result['reason']}" if result["status"] == "SKIPPED" else queries
            return f"job {result['job']} ({result['mode']}) {result['status']}: {detail}"
        if step == "DynamoDbStartExport":
            self.last_status = None
            if not p["export"]:
                return f"skip: {p['reason']}"
            window = f"window {p['windowFrom']} .. {p['exportedTo']}" if p.get("windowFrom") else f"as of {p['exportedTo']}"
            return f"{p['exportType']} {window}"
        if step == "DynamoDbPollExport":
            if p["status"] == self.last_status:
                return None
            self.last_status = p["status"]
            return f"{p['status']}" + (f", {p['itemCount']} items" if p.get("itemCount") is not None else "")
        if step == "ConvertPlan":
            return f"{p['files']} data files from manifest-files.json, {p['expectedItems']} items, {len(p['workers'])} workers"
        if step == "ConvertMerge":
            return f"one schema for the export; {p['rows']} rows reconciled with manifest-summary.json"
        if step == "ConvertFinalize":
            return f"{p['rows']} rows in {p['partitions']} lake partitions, _SUCCESS written"
        if step == "DynamoDbCommit":
            return f"checkpoint {'moved to' if p['committed'] else 'already at'} {p['exportedTo']}"
        return None


def _run(stack: EmulatedStack, label: str, event: Any, echo: Printer, state_machine: str = RDS_STATE_MACHINE) -> Execution:
    echo(f"\n> {label}")
    started = time.perf_counter()
    before = stack.clock.waited_seconds
    execution = stack.run(state_machine, event)
    virtual = stack.clock.waited_seconds - before
    echo(
        f"    {execution.status} in {time.perf_counter() - started:.1f}s ({virtual / 60:.0f} min of export time fast-forwarded, "
        f"{execution.state_transitions} state transitions + {report.map_children(stack.distributed_maps.of(execution.arn))})"
    )
    if execution.status != "SUCCEEDED":
        echo(f"    error: {execution.error}: {execution.cause}")
    return execution


def _show_lake(stack: EmulatedStack, echo: Printer, samples: tuple[str, ...] = ()) -> None:
    s3 = stack.client("s3")
    partitions = lake_partitions(s3, stack.lake_bucket)
    echo(f"\nWhat landed in s3://{stack.lake_bucket}/ :")
    echo(format_table(partitions))
    echo(f"{len(partitions)} table partitions, {sum(p.files for p in partitions)} Parquet files, {sum(p.rows for p in partitions)} rows")
    chosen = [next((p for p in partitions if wanted in p.prefix), None) for wanted in samples] or partitions[:1]
    for partition in filter(None, chosen):
        echo(f"\nSample rows from {partition.prefix}:")
        for row in sample_rows(s3, stack.lake_bucket, partition):
            shown = {k: v for k, v in row.items() if v is not None}
            echo("  " + json.dumps(shown, default=str, ensure_ascii=False)[:400])


def run_demo(echo: Printer = print, log_level: str | None = "WARNING") -> bool:
    """Deploy the template on the emulator, fire the sample events, show the lake."""
    wall = time.perf_counter()
    echo("snaplake local demo: the RDS snapshot and DynamoDB export pipelines on the embedded AWS emulator (moto)")
    parameters = default_parameters(PiiRules=json.dumps(PII_RULES))  # shop.customers.email lands hashed (docs/governance.md)
    with capture_metrics() as emitted, EmulatedStack(parameters, function_log_level=log_level) as stack:
        stack.lambdas.after_invoke = StepPrinter(stack, echo)
        functions = len(stack.lambdas.functions)
        machines = ", ".join(stack.state_machines)
        echo(f"deployed template.yaml: {functions} functions, state machines {machines}, lake bucket {stack.lake_bucket}")
        echo(f"PII rules (PiiRules): {json.dumps(PII_RULES)}: customers.email lands as its HMAC-SHA256 (hex), keyed by a KMS data key")
        snapshots = seed_sample_sources(stack)
        echo(
            f"sources: Aurora PostgreSQL cluster {WORLD_CLUSTER} (database world) and MySQL instance {SHOP_INSTANCE} (database shop), "
            f"{len(snapshots)} snapshots; SourceIdentifiers={stack.params['SourceIdentifiers']}"
        )
        ok = True
        for name in (
            "rds_automated_cluster_snapshot.json",
            "rds_manual_instance_snapshot.json",
            "rds_snapshot_deleted.json",
        ):
            ok &= _run(stack, f"event {name}", sample_event(name), echo).status == "SUCCEEDED"
        ok &= (
            _run(stack, "the same cluster event delivered again", sample_event("rds_automated_cluster_snapshot.json"), echo).status
            == "SUCCEEDED"
        )
        ok &= (
            _run(
                stack, "scheduled request events/rds_latest_snapshot_request.json", sample_event("rds_latest_snapshot_request.json"), echo
            ).status
            == "SUCCEEDED"
        )
        create_cluster(stack, "scratch-aurora")
        other = cluster_snapshot(stack, "scratch-aurora", "scratch-aurora-manual", TablesSource("aurora-postgresql", "scratch", {}))
        ok &= _run(stack, "a snapshot of a source not in SourceIdentifiers", {"snapshotArn": other}, echo).status == "SUCCEEDED"
        ok &= _run_dynamodb(stack, echo)
        _show_lake(stack, echo, samples=("/city/", "/customers/", "dynamodb_changes/"))
        # The stream change log after the lake summary above (which covers the exports); it prints its own objects.
        from snaplake_local.streams import run_stream_demo

        ok &= run_stream_demo(stack, echo)
        ok &= _run_athena(stack, echo)
        from snaplake_local.latest_demo import run_latest_demo

        ok &= run_latest_demo(stack, echo)
        echo("\n".join(landing_event_lines(stack.event_bridge.of("Lake Partition Landed"))))
        notifications = stack.notifications()
        echo(f"\nfailure notifications: {len(notifications)}")
    echo("\n".join(metrics_lines(emitted)))
    echo(f"\ndemo finished in {time.perf_counter() - wall:.1f}s: {'all executions succeeded' if ok else 'SOME EXECUTIONS FAILED'}")
    echo(
        "emulated locally: RDS and DynamoDB export output and timing, Athena (its SQL on DuckDB, its effects on Glue and S3), "
        "Lambda (in-process), Wait/Retry time. See docs/local.md 'What is emulated'."
    )
    return ok


def _run_dynamodb(stack: EmulatedStack, echo: Printer) -> bool:
    """The orders table: a full export, then changes, then an incremental export of them."""
    table_arn = create_orders_table(stack)
    echo(f"\nDynamoDB table {ORDERS_TABLE} (PITR on, {len(orders_items())} orders with nested, typed attributes)")
    stack.clock.advance(20 * 60)
    first = _run(stack, "scheduled run: first export of the table is a full export", {"tableArn": table_arn, "mode": "auto"}, echo, DDB)
    ok = first.status == "SUCCEEDED"
    ddb = stack.client("dynamodb")
    for item in orders_items(start=100, count=3):
        ddb.put_item(TableName=ORDERS_TABLE, Item=item)
    ddb.update_item(
        TableName=ORDERS_TABLE,
        Key={"pk": {"S": "ORDER#00002"}, "sk": {"S": "HEADER"}},
        UpdateExpression="SET paid = :p",
        ExpressionAttributeValues={":p": {"BOOL": True}},
    )
    ddb.delete_item(TableName=ORDERS_TABLE, Key={"pk": {"S": "ORDER#00003"}, "sk": {"S": "HEADER"}})
    echo("    (3 orders added, 1 updated, 1 deleted; an hour passes)")
    stack.clock.advance(3600)
    second = _run(stack, "scheduled run: incremental export from the checkpoint", {"tableArn": table_arn, "mode": "auto"}, echo, DDB)
    return ok and second.status == "SUCCEEDED" and _show_current(stack, echo)


def _show_current(stack: EmulatedStack, echo: Printer) -> bool:
    """dynamodb.<table>_current (MergeCurrent's Iceberg table) against the emulated DynamoDB table's items."""
    items = stack.client("dynamodb").scan(TableName=ORDERS_TABLE)["Items"]
    wanted = sorted((i["pk"]["S"], i["sk"]["S"], i.get("paid", {}).get("BOOL")) for i in items)
    rows = stack.athena.engine.run_sql("SELECT pk, sk, paid FROM dynamodb.shop_orders_current ORDER BY pk, sk").table.to_pylist()
    found = [(r["pk"], r["sk"], r["paid"]) for r in rows]
    same = found == wanted
    echo(
        f"    dynamodb.shop_orders_current (Iceberg, MERGE per window): {len(found)} items, {'equal to' if same else 'NOT equal to'} "
        f"the DynamoDB table's {len(wanted)}; ORDER#00003 gone: {all(r[0] != 'ORDER#00003' for r in found)}"
    )
    return same


def _run_athena(stack: EmulatedStack, echo: Printer) -> bool:
    """events/athena_etl_jobs.json over the world tables RegisterCatalog created: the SQL run, what Glue holds after."""
    jobs = sample_event("athena_etl_jobs.json")
    before = len(stack.athena.statements())
    ok = _run(stack, "Athena SQL jobs events/athena_etl_jobs.json (ctas overwrite, ctas skip_if_exists, apas, query)", jobs, echo, ATHENA)
    echo("    SQL sent to Athena:")
    for state, sql in stack.athena.statements()[before:]:
        echo(f"      {state:<9} {' '.join(sql.split())}")
    glue = stack.client("glue")
    for database in sorted({job["database"] for job in jobs["jobs"] if "table" in job}):
        for table in glue.get_tables(DatabaseName=database)["TableList"]:
            columns = ", ".join(f"{c['Name']} {c['Type']}" for c in table["StorageDescriptor"]["Columns"])
            keys = [k["Name"] for k in table.get("PartitionKeys", [])]
            pages = glue.get_paginator("get_partitions").paginate(DatabaseName=database, TableName=table["Name"])
            values = ["/".join(p["Values"]) for page in pages for p in page["Partitions"]]
            partitioned = f" partitioned by {', '.join(keys)}: {', '.join(values) or 'no partitions'}" if keys else ""
            echo(f"    {database}.{table['Name']} ({columns}){partitioned}")
            echo(f"      at {table['StorageDescriptor']['Location']}")
    if ok.status != "SUCCEEDED":
        return False
    for job in ok.output["jobs"]:
        if job.get("outputLocation"):
            bucket, _, key = job["outputLocation"].removeprefix("s3://").partition("/")
            echo(f"    job {job['job']} left its result in {job['outputLocation']}:")
            for line in stack.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read().decode().splitlines():
                echo(f"      {line}")
    return _show_answers(stack, echo)


def _show_answers(stack: EmulatedStack, echo: Printer) -> bool:
    """Questions asked through the Athena API; the emulated Athena answers them with DuckDB over the lake's Parquet."""
    settings = AthenaSettings.from_env(stack.environment("AthenaQueryFunction"))
    glue = stack.client("glue")
    tables = [
        (database["Name"], table["Name"])
        for database in glue.get_databases()["DatabaseList"]
        for table in glue.get_tables(DatabaseName=database["Name"])["TableList"]
    ]
    counts = " UNION ALL ".join(
        f'SELECT \'{db}\' AS "database", \'{name}\' AS table_name, count(*) AS row_count FROM "{db}"."{name}"' for db, name in tables
    )
    questions = [
        ("rows per table (one count(*) per Glue table, UNION ALL)", f"{counts} ORDER BY 1, 2"),
        ("the CTAS summary", "SELECT * FROM marts.continent_summary ORDER BY population DESC"),
        ("the APAS partition", "SELECT dt, count(*) AS cities, sum(population) AS population FROM marts.city_population GROUP BY dt"),
        (
            "its largest cities",
            "SELECT name, countrycode, population FROM marts.city_population WHERE dt = '2024-05-02' ORDER BY 3 DESC LIMIT 5",
        ),
    ]
    echo("\nAnswers from the emulated Athena (DuckDB over the lake's Parquet, through GetQueryResults):")
    for title, sql in questions:
        try:
            columns, rows = athena_answer(
                stack.client("athena"),
                stack.clock.advance,
                sql,
                work_group=settings.work_group,
                output_location=settings.output_location,
            )
        except RuntimeError as error:
            echo(f"  {title}: {error}")
            return False
        echo(f"\n  {title}:" + ("" if title.startswith("rows per table") else f" {sql}"))
        for line in format_rows(columns, rows).splitlines():
            echo(f"    {line}")
    return True


def _export_root(directory: Path) -> Path:
    """The folder holding export_info_*.json (the export itself, or its single child)."""
    if list(directory.glob("export_info_*.json")) or list(directory.glob("export_tables_info_*.json")):
        return directory
    children = [c for c in directory.iterdir() if c.is_dir() and list(c.glob("export_*info_*.json"))]
    if len(children) == 1:
        return children[0]
    if any(directory.rglob("*.parquet")):
        return directory
    raise SystemExit(f"{directory} holds no RDS export (no export_info_*.json and no Parquet files)")


def _detect_engine(root: Path) -> str:
    for info in sorted(root.glob("export_tables_info_*.json")):
        try:
            targets = [t.get("target", "") for t in json.loads(info.read_text()).get("perTableStatus", [])]
        except (ValueError, AttributeError):
            continue
        if any(target.count(".") >= 2 for target in targets):
            return "aurora-postgresql"
        if targets:
            return "aurora-mysql"
    folders = [p.name for db in root.iterdir() if db.is_dir() for p in db.iterdir() if p.is_dir()]
    if any(f.startswith("public.") for f in folders):
        return "aurora-postgresql"
    return "aurora-mysql"


def _snapshot_time(root: Path, given: str | None, event: Any, echo: Printer) -> datetime:
    """--snapshot-time, else export_info's snapshotTime, else the event's Date, else now (with a warning)."""
    if given:
        return parse_iso_utc(given)
    for info in root.glob("export_info_*.json"):
        try:
            return parse_iso_utc(str(json.loads(info.read_text())["snapshotTime"]))
        except (ValueError, KeyError, TypeError):
            echo(f"note: {info.name} has no ISO 8601 snapshotTime")
    if isinstance(event, dict) and isinstance(event.get("detail"), dict) and "Date" in event["detail"]:
        return parse_iso_utc(str(event["detail"]["Date"])).replace(microsecond=0)
    now = datetime.now(UTC).replace(microsecond=0)
    echo(f"warning: no snapshot time found; using now ({iso_utc(now)}). Pass --snapshot-time to set the lake partition.")
    return now


def replay_rds_export(
    export_dir: Path,
    out: Path,
    snapshot_time: str | None = None,
    event_file: Path | None = None,
    echo: Printer = print,
    log_level: str | None = "WARNING",
) -> bool:
    """Run a downloaded export tree through the real state machine; write the lake under `out`."""
    root = _export_root(export_dir)
    engine = _detect_engine(root)
    event: Any = json.loads(event_file.read_text()) if event_file is not None else None
    when = _snapshot_time(root, snapshot_time, event, echo)
    echo(f"replaying the RDS export in {root} ({engine}, snapshot time {iso_utc(when)})")
    with EmulatedStack({"SourceIdentifiers": "*"}, function_log_level=log_level) as stack:
        stack.lambdas.after_invoke = StepPrinter(stack, echo)
        load_catalog(stack.client("glue"), out / CATALOG_FILE)
        if event is not None:
            ref = parse_request(event)
            if not isinstance(ref, SnapshotRef):
                raise SystemExit(f"{event_file} is not a snapshot-created event or a snapshotArn request")
            source_id = "replayed-source"
            if ref.source_type == "cluster":
                create_cluster(stack, source_id, engine=engine, database="replay")
                cluster_snapshot(stack, source_id, ref.identifier, DirectorySource(root), when)
            else:
                create_instance(stack, source_id, engine=engine.removeprefix("aurora-"), database="replay")
                instance_snapshot(stack, source_id, ref.identifier, DirectorySource(root), when)
        else:
            source_id = "replayed-source"
            create_cluster(stack, source_id, engine=engine, database="replay")
            name = re.sub(r"[^a-z0-9-]+", "-", root.name.lower()).strip("-")[:50] or "export"
            arn = cluster_snapshot(stack, source_id, f"replay-{name}", DirectorySource(root), when)
            event = {"snapshotArn": arn}
        execution = _run(stack, "replay", event, echo)
        count = _download_lake(stack, out)
        _show_lake(stack, echo)
        echo(f"\nwrote {count} lake objects under {out}")
        _save_catalog(stack, out, echo)
    return execution.status == "SUCCEEDED"


def _save_catalog(stack: EmulatedStack, out: Path, echo: Printer) -> None:
    """The Glue catalog the run built (with what an earlier replay into `out` registered), next to the lake."""
    tables = save_catalog(stack.client("glue"), out / CATALOG_FILE, stack.lake_bucket)
    echo(f'saved the Glue catalog ({tables} tables) as {out / CATALOG_FILE}: query it with snaplake local query --lake {out} "SQL"')


def replay_dynamodb_export(export_dir: Path, out: Path, echo: Printer = print, log_level: str | None = "WARNING") -> bool:
    """Run a downloaded DynamoDB export (manifest-summary.json, manifest-files.json, data/) through
    the conversion steps (the same handlers the state machine runs) and write the lake under `out`."""
    summaries = sorted(export_dir.rglob("manifest-summary.json"))
    if len(summaries) != 1:
        raise SystemExit(f"{export_dir} must hold exactly one manifest-summary.json (found {len(summaries)})")
    summary = json.loads(summaries[0].read_text())
    files_manifest = summaries[0].parent / "manifest-files.json"
    if not files_manifest.is_file():
        raise SystemExit(f"{files_manifest} is missing")
    by_name = {path.name: path for path in export_dir.rglob("*.json.gz")}
    table_arn = str(summary.get("tableArn") or "arn:aws:dynamodb:eu-west-1:123456789012:table/replayed")
    with EmulatedStack({"SourceIdentifiers": "*", "DynamoDbTableArns": table_arn}, function_log_level=log_level) as stack:
        stack.lambdas.after_invoke = StepPrinter(stack, echo)
        load_catalog(stack.client("glue"), out / CATALOG_FILE)
        s3 = stack.client("s3")
        bucket, root = stack.export_bucket, "dynamodb-exports/replay"
        lines = []
        for raw in files_manifest.read_text().splitlines():
            if not raw.strip():
                continue
            entry = json.loads(raw)
            name = str(entry["dataFileS3Key"]).rsplit("/", 1)[-1]
            if name not in by_name:
                raise SystemExit(f"manifest-files.json names {entry['dataFileS3Key']}, which is not under {export_dir}")
            entry["dataFileS3Key"] = f"{root}/data/{name}"
            s3.put_object(Bucket=bucket, Key=entry["dataFileS3Key"], Body=by_name[name].read_bytes())
            lines.append(json.dumps(entry))
        s3.put_object(Bucket=bucket, Key=f"{root}/manifest-files.json", Body="\n".join(lines).encode())
        summary["manifestFilesS3Key"] = f"{root}/manifest-files.json"
        s3.put_object(Bucket=bucket, Key=f"{root}/manifest-summary.json", Body=json.dumps(summary).encode())
        exported_to = summary.get("exportTime") or summary.get("exportToTime") or iso_utc(datetime.now(UTC))
        echo(f"replaying the DynamoDB {summary.get('exportType', 'FULL_EXPORT')} in {export_dir} ({len(lines)} data files)")
        request = {
            "tableArn": table_arn,
            "exportArn": str(summary.get("exportArn") or f"{table_arn}/export/00000000000000-replay0"),
            "bucket": bucket,
            "manifestSummaryKey": f"{root}/manifest-summary.json",
            "exportedTo": exported_to,
        }
        ok = _convert_in_process(stack, request)
        echo(f"wrote {_download_lake(stack, out)} lake objects under {out}")
        _save_catalog(stack, out, echo)
    return ok


def _download_lake(stack: EmulatedStack, out: Path) -> int:
    """Mirror the lake's data under `out` (not the pipeline's own records under _snaplake/); returns the number of
    objects written."""
    s3 = stack.client("s3")
    out.mkdir(parents=True, exist_ok=True)
    count = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=stack.lake_bucket):
        for obj in page.get("Contents", []):
            if obj["Key"].startswith("_snaplake/") or "/_snaplake/" in obj["Key"]:
                continue
            target = out / obj["Key"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(s3.get_object(Bucket=stack.lake_bucket, Key=obj["Key"])["Body"].read())
            count += 1
    return count


def _convert_in_process(stack: EmulatedStack, request: dict[str, Any]) -> bool:
    """The conversion steps of the DynamoDB state machine, invoked in order."""

    def invoke(logical_id: str, event: dict[str, Any]) -> dict[str, Any]:
        payload, errored = stack.function(logical_id).invoke(event)
        if errored:
            raise SystemExit(f"{logical_id} failed: {payload.get('errorType')}: {payload.get('errorMessage')}")
        return dict(payload)

    plan = invoke("ConvertPlanFunction", request)
    common = {key: plan[key] for key in ("plan", "kind", "table", "exportedTo", "exportId")}
    for stage in ("ConvertScanFunction", None, "ConvertFilesFunction", "ConvertPublishFunction"):
        if stage is None:
            invoke("ConvertMergeFunction", {"plan": plan["plan"], "files": plan["files"], "expectedItems": plan["expectedItems"]})
            continue
        for share in plan["workers"]:
            state: dict[str, Any] = {**common, "share": share}
            while not (state := invoke(stage, state)).get("done"):
                pass
    finalize = {key: plan[key] for key in ("plan", "files", "expectedItems", "shares", "kind", "table", "exportedTo", "exportId")}
    landed = invoke("ConvertFinalizeFunction", finalize)
    # RegisterCatalog, as the state machine runs it after FinalizeConversion.
    catalog = {"kind": plan["kind"], "table": plan["table"], "partitions": landed["partitionPrefixes"]}
    catalog.update(partitionTotals=landed["partitionTotals"], exportArn=request["exportArn"], exportedTo=plan["exportedTo"])
    invoke("DynamoDbCatalogFunction", {**catalog, "windowFrom": request.get("windowFrom")})
    return True
