"""Amazon Data Firehose delivering to an extended S3 destination, as documented; moto's mock writes the raw records
under `Prefix/YYYY/MM/DD/HH/` and has no Lambda processor, dynamic partitioning, format conversion, error output or
source record backup.

`FirehoseDelivery.put_record_batch` delivers one batch at once (no buffering by size or time):

- every source record, as received, to the backup prefix (`S3BackupMode: Enabled`) under `YYYY/MM/DD/HH/`, GZIP;
- the batch to the Lambda processor (the transform), with `1 + NumberOfRetries` attempts; a failed invocation
  sends every record to the error output as `processing-failed`;
- `Ok` records, by the `Prefix` with `!{partitionKeyFromLambda:name}` taken from the answer's
  `metadata.partitionKeys` (a missing key: `partitioning-failed`) and `!{timestamp:...}` from the arrival time,
  converted to one Parquet object per partition with the Glue table's columns (SchemaConfiguration, JSON field names
  matched case-insensitively, fields that are not columns left out, a JSON number or boolean in a string column
  as its text; a value that does not fit its column:
  `format-conversion-failed`);
- `ProcessingFailed` records to `ErrorOutputPrefix` with `!{firehose:error-output-type}` filled, one JSON line per
  record with its original data (`rawData`); `Dropped` records nowhere.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

_GLUE_TYPES = {"string": pa.string(), "bigint": pa.int64(), "int": pa.int32(), "double": pa.float64(), "boolean": pa.bool_()}
_JAVA_DATE = (("yyyy", "%Y"), ("MM", "%m"), ("dd", "%d"), ("HH", "%H"), ("mm", "%M"), ("ss", "%S"))


@dataclass
class Delivered:
    """What one batch put: S3 keys by where they went."""

    data: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    backup: list[str] = field(default_factory=list)


def _value(value: Any, kind: pa.DataType) -> Any:
    """A JSON value as the OpenX JSON SerDe reads it into a column: a number or boolean in a string column is its text."""
    if kind == pa.string() and isinstance(value, bool | int | float):
        return json.dumps(value)
    return value


def _timestamps(prefix: str, arrival: datetime) -> str:
    def fill(match: re.Match[str]) -> str:
        pattern = match.group(1)
        for java, python in _JAVA_DATE:
            pattern = pattern.replace(java, python)
        return arrival.strftime(pattern)

    return re.sub(r"!\{timestamp:([^}]+)\}", fill, prefix)


@dataclass
class FirehoseDelivery:
    name: str
    destination: dict[str, Any]  # ExtendedS3DestinationConfiguration, evaluated
    invoke: Callable[[dict[str, Any]], tuple[Any, bool]]  # the processor Lambda: (payload, errored)
    s3: Any
    glue: Any
    now: Callable[[], datetime]
    _objects: int = 0

    def put_record_batch(self, records: list[bytes]) -> Delivered:
        arrival, delivered = self.now(), Delivered()
        backup = self.destination["S3BackupConfiguration"]
        delivered.backup.append(
            self._put(backup, f"{backup['Prefix']}{arrival:%Y/%m/%d/%H}/{self._object_name(arrival)}.gz", gzip.compress(b"".join(records)))
        )
        event = {
            "invocationId": f"{self.name}-{self._objects}",
            "records": [
                {"recordId": str(i), "approximateArrivalTimestamp": int(arrival.timestamp() * 1000), "data": base64.b64encode(r).decode()}
                for i, r in enumerate(records)
            ],
        }
        answers, failure = self._transform(event)
        by_id = {str(i): record for i, record in enumerate(records)}
        errors: dict[str, list[dict[str, Any]]] = {}
        partitions: dict[str, list[dict[str, Any]]] = {}
        for answer in answers:
            raw = by_id[answer["recordId"]]
            if failure or answer["result"] == "ProcessingFailed":
                errors.setdefault("processing-failed", []).append(self._error(raw, arrival, failure or "Lambda.ProcessingFailedStatus"))
            elif answer["result"] == "Ok":
                keys = answer.get("metadata", {}).get("partitionKeys", {})
                names = re.findall(r"!\{partitionKeyFromLambda:([^}]+)\}", self.destination["Prefix"])
                if any(name not in keys for name in names):
                    errors.setdefault("partitioning-failed", []).append(self._error(raw, arrival, "PartitionKeyMissing"))
                    continue
                prefix = self.destination["Prefix"]
                for name in names:
                    prefix = prefix.replace(f"!{{partitionKeyFromLambda:{name}}}", str(keys[name]))
                row = json.loads(base64.b64decode(answer["data"]))
                partitions.setdefault(_timestamps(prefix, arrival), []).append({"raw": raw, "row": row})
        for prefix, rows in sorted(partitions.items()):
            table, unfit = self._parquet(rows)
            for raw in unfit:
                errors.setdefault("format-conversion-failed", []).append(self._error(raw, arrival, "DataFormatConversion.InvalidSchema"))
            if table is not None:
                parquet = io.BytesIO()
                pq.write_table(table, parquet, compression="snappy")
                delivered.data.append(self._put(self.destination, f"{prefix}{self._object_name(arrival)}.parquet", parquet.getvalue()))
        for kind, lines in sorted(errors.items()):
            prefix = _timestamps(self.destination["ErrorOutputPrefix"].replace("!{firehose:error-output-type}", kind), arrival)
            jsonl = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
            delivered.errors.append(self._put(self.destination, f"{prefix}{self._object_name(arrival)}", jsonl))
        return delivered

    def _transform(self, event: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
        processor = self.destination["ProcessingConfiguration"]["Processors"][0]
        retries = int({p["ParameterName"]: p["ParameterValue"] for p in processor["Parameters"]}.get("NumberOfRetries", "3"))
        for _ in range(1 + retries):
            payload, errored = self.invoke(event)
            if not errored:
                return list(payload["records"]), None
        return [{"recordId": r["recordId"], "result": "ProcessingFailed"} for r in event["records"]], "Lambda.FunctionError"

    def _parquet(self, rows: list[dict[str, Any]]) -> tuple[pa.Table | None, list[bytes]]:
        schema = self.destination["DataFormatConversionConfiguration"]["SchemaConfiguration"]
        table = self.glue.get_table(DatabaseName=schema["DatabaseName"], Name=schema["TableName"])["Table"]
        columns = [(c["Name"], _GLUE_TYPES[c["Type"]]) for c in table["StorageDescriptor"]["Columns"]]
        arrow_schema = pa.schema(columns)
        fitting, unfit = [], []
        for entry in rows:
            lowered = {str(k).lower(): v for k, v in entry["row"].items()}
            values = {name: _value(lowered.get(name.lower()), kind) for name, kind in columns}
            try:
                pa.Table.from_pylist([values], schema=arrow_schema)
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
                unfit.append(entry["raw"])
            else:
                fitting.append(values)
        return (pa.Table.from_pylist(fitting, schema=arrow_schema) if fitting else None), unfit

    def _error(self, raw: bytes, arrival: datetime, code: str) -> dict[str, Any]:
        millis = int(arrival.timestamp() * 1000)
        return {
            "attemptsMade": 1,
            "arrivalTimestamp": millis,
            "errorCode": code,
            "attemptEndingTimestamp": millis,
            "rawData": base64.b64encode(raw).decode(),
        }

    def _object_name(self, arrival: datetime) -> str:
        self._objects += 1
        return f"{self.name}-1-{arrival:%Y-%m-%d-%H-%M-%S}-{self._objects:08d}"

    def _put(self, config: dict[str, Any], key: str, body: bytes) -> str:
        bucket = config["BucketARN"].split(":::", 1)[1]
        extra: dict[str, Any] = {}
        kms = config.get("EncryptionConfiguration", {}).get("KMSEncryptionConfig", {}).get("AWSKMSKeyARN")
        if kms:
            extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms}
        self.s3.put_object(Bucket=bucket, Key=key, Body=body, **extra)
        return key
