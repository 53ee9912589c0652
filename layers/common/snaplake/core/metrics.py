"""Business metrics: CloudWatch embedded metric format (EMF) documents, written by Powertools Metrics.

Each fact is published where it is known (FinalizeCopy, FinalizeConversion, the checkpoint commit, the stream
change log, an Athena query's end, an export's completion), as one EMF document per pipeline, source and table.
The dimensions are exactly `pipeline`, `source` and `table`, or `pipeline` and `source` for a fact about the
whole source (an export, a checkpoint): CloudWatch matches a metric by its exact dimension set, and the
template's alarms and dashboard name these sets (docs/operations.md lists every metric). Powertools' `service`
dimension is left out: it is the same for every function and would only have to be repeated in every alarm.

A fresh `EphemeralMetrics` per document shares nothing between invocations or threads; the document is printed
(stdout, which Lambda hands to CloudWatch Logs, where EMF becomes metrics) as soon as it is complete.
"""

from __future__ import annotations

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from snaplake.core.settings import metrics_namespace

RDS, DYNAMODB, DYNAMODB_STREAM, ATHENA = "rds", "dynamodb", "dynamodb_stream", "athena"

UNITS: dict[str, MetricUnit] = {
    # per pipeline, source and table
    "RowsLanded": MetricUnit.Count,
    "FilesLanded": MetricUnit.Count,
    "BytesLanded": MetricUnit.Bytes,
    "LandingLag": MetricUnit.Seconds,  # landing time minus the snapshot time / export time / oldest record's time
    "StreamRecordsWritten": MetricUnit.Count,
    "StreamRecordsFailed": MetricUnit.Count,
    "AthenaQueryTime": MetricUnit.Milliseconds,
    "AthenaBytesScanned": MetricUnit.Bytes,
    # per pipeline and source
    "SnapshotsLanded": MetricUnit.Count,
    "ExportDuration": MetricUnit.Seconds,
    "CheckpointsCommitted": MetricUnit.Count,
    "CheckpointAge": MetricUnit.Seconds,
}


def publish(pipeline: str, source: str, table: str | None = None, **values: float) -> None:
    """One EMF document: each value under its name (a key of UNITS), dimensioned by pipeline, source and table."""
    metrics = EphemeralMetrics(namespace=metrics_namespace(), service="")  # "": no service dimension (see above)
    metrics.add_dimension(name="pipeline", value=pipeline)
    metrics.add_dimension(name="source", value=source or "-")
    if table is not None:
        metrics.add_dimension(name="table", value=table or "-")
    for name, value in values.items():
        metrics.add_metric(name=name, unit=UNITS[name], value=value)
    metrics.flush_metrics(raise_on_empty_metrics=True)
