"""Figures for the DynamoDB Streams change log (snaplake.change_log), printed (never asserted):

records/second on one core (CPU time) for Lambda stream batches of realistic nested items (INSERT / MODIFY /
REMOVE with NEW_AND_OLD_IMAGES) -> Parquet bytes in memory, for snaplake's `flatten_batch` (validation, the
exactly-once check against an in-memory store, the export's type rules, the column registry, Parquet encoding)
and for a straightforward peer (`peer_flatten`: boto3's TypeDeserializer on each image, flattened dicts with the
same column names, pa.Table.from_pylist, pq.write_table), alternating A/B on the same batches in one process;
then the ratio (peer CPU time / snaplake CPU time). The S3 calls are excluded (the store keeps the sizes).
Targets: >= 20,000 records/s for a 1,000-record batch, >= 2x the peer (issue 13).

Run: `python benchmarks/stream_flatten.py [--records 1000] [--batches 20] [--smoke]`.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from boto3.dynamodb.types import TypeDeserializer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "layers" / "common"))

from snaplake.core.names import assign_column_names  # noqa: E402
from snaplake.dynamodb.parquet import ConvertOptions  # noqa: E402
from snaplake.streams.change_log import flatten_batch  # noqa: E402

STREAM_ARN = "arn:aws:dynamodb:eu-west-1:123456789012:table/orders/stream/2026-11-24T08:00:00.000"
_CITIES = ["Berlin", "Lisbon", "Osaka", "Denver", "Nairobi", "Québec", "São Paulo", "Zürich"]
_STATUSES = ["NEW", "PAID", "SHIPPED", "DELIVERED", "RETURNED"]
_TAGS = ["gift", "express", "fragile", "bulk", "promo", "eu", "vip"]


def order_item(number: int, rng: random.Random) -> dict[str, Any]:
    """An order: S, integral and decimal N, BOOL, a 2-level M, SS, L of maps, an optional NULL."""
    item: dict[str, Any] = {
        "pk": {"S": f"ORDER#{number:08d}"},
        "sk": {"S": "HEADER"},
        "status": {"S": rng.choice(_STATUSES)},
        "total": {"N": f"{rng.randint(1, 99999)}.{rng.randint(0, 99):02d}"},
        "quantity": {"N": str(rng.randint(1, 40))},
        "paid": {"BOOL": rng.random() < 0.5},
        "customer": {
            "M": {
                "id": {"S": f"C{rng.randint(1, 99999):06d}"},
                "name": {"S": f"Customer {number}"},
                "address": {"M": {"city": {"S": rng.choice(_CITIES)}, "zip": {"S": f"{rng.randint(10000, 99999)}"}}},
            }
        },
        "tags": {"SS": sorted(rng.sample(_TAGS, rng.randint(1, 3)))},
        "lines": {"L": [{"M": {"sku": {"S": f"SKU-{rng.randint(1, 999)}"}, "qty": {"N": str(rng.randint(1, 5))}}} for _ in range(2)]},
        "created_at": {"N": str(1764000000 + number)},
    }
    if rng.random() < 0.2:
        item["note"] = {"NULL": True}
    return item


def stream_batch(records: int, seed: int = 7, first_sequence: int = 4421584500000000017450439091) -> dict[str, Any]:
    """A Lambda DynamoDB stream event of `records` changes over one hour boundary (two partitions)."""
    rng = random.Random(seed)
    out = []
    for index in range(records):
        new = order_item(index, rng)
        kind = ("INSERT", "MODIFY", "REMOVE")[index % 3]
        dynamodb: dict[str, Any] = {
            "ApproximateCreationDateTime": 1764054000 - records // 2 + index,
            "Keys": {"pk": new["pk"], "sk": new["sk"]},
            "SequenceNumber": str(first_sequence + index),
            "SizeBytes": 600,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        }
        if kind != "REMOVE":
            dynamodb["NewImage"] = new
        if kind != "INSERT":
            dynamodb["OldImage"] = {**new, "status": {"S": "NEW"}}
        out.append(
            {
                "eventID": f"{index:032x}",
                "eventName": kind,
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": "eu-west-1",
                "dynamodb": dynamodb,
                "eventSourceARN": STREAM_ARN,
            }
        )
    return {"Records": out}


class _KeepSizes:
    """A ChangeLogStore that keeps only the sizes of the objects written and never finds one already written
    (every run converts the whole batch again); its column registry is in memory."""

    def __init__(self) -> None:
        self.sizes: list[int] = []
        self.columns: dict[tuple[str, ...], str] = {}

    def keys_from(self, prefix: str) -> Iterator[str]:
        return iter(())

    def read(self, key: str) -> bytes:
        raise KeyError(key)

    def write(self, key: str, body: bytes) -> None:
        self.sizes.append(len(body))

    def claim(self, key: str, owner: Mapping[str, Any]) -> dict[str, Any]:
        return dict(owner)

    def registered_columns(self, registry: tuple[str, ...], paths: Iterable[tuple[str, ...]], separator: str) -> dict[tuple[str, ...], str]:
        wanted = set(paths)
        self.columns.update(assign_column_names(sorted(wanted - set(self.columns)), separator, frozenset(self.columns.values())))
        return {path: self.columns[path] for path in wanted}

    def view_type(self, stream_arn: str) -> str:
        return "NEW_AND_OLD_IMAGES"


def _flatten_image(prefix: str, image: Mapping[str, Any], out: dict[str, Any], depth: int, max_depth: int, separator: str) -> None:
    """The peer's flattening: maps become `prefix__name` columns down to `max_depth` path segments."""
    for name, value in image.items():
        column = f"{prefix}{separator}{name}"
        if isinstance(value, dict) and value and depth < max_depth:
            _flatten_image(column, value, out, depth + 1, max_depth, separator)
        else:
            out[column] = sorted(value) if isinstance(value, set) else value


def peer_flatten(event: Mapping[str, Any], options: ConvertOptions) -> list[bytes]:
    """The straightforward peer: boto3's TypeDeserializer on each image -> flattened dicts with the same column
    naming -> pa.Table.from_pylist -> pq.write_table to bytes, one object per hour partition."""
    deserializer = TypeDeserializer()
    partitions: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for record in event["Records"]:
        dynamodb = record["dynamodb"]
        created = datetime.fromtimestamp(dynamodb["ApproximateCreationDateTime"], UTC)
        row: dict[str, Any] = {
            "change_type": record["eventName"],
            "write_time": created,
            "is_ttl_delete": False,
            "sequence_number": dynamodb["SequenceNumber"],
            "event_id": record["eventID"],
        }
        for section, prefix in (("Keys", "key"), ("NewImage", "new"), ("OldImage", "old")):
            if section in dynamodb:
                image = {name: deserializer.deserialize(value) for name, value in dynamodb[section].items()}
                _flatten_image(prefix, image, row, 1, options.max_depth, options.separator)
        partitions.setdefault((record["eventSourceARN"], int(dynamodb["ApproximateCreationDateTime"]) // 3600), []).append(row)
    bodies = []
    for rows in partitions.values():
        sink = io.BytesIO()
        pq.write_table(pa.Table.from_pylist(rows), sink)
        bodies.append(sink.getvalue())
    return bodies


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def measure(records: int, batches: int) -> dict[str, Any]:
    """snaplake's flatten_batch and the peer on the same batches, alternating (A, B, A, B, ...) in one process,
    CPU time (process_time) per batch; the store is in memory, so no S3 time is in either figure."""
    event = stream_batch(records)
    options = ConvertOptions()
    keep = _KeepSizes()
    flatten_batch(event, "lake", options, keep)  # warm-up (imports, pyarrow kernels)
    peer_flatten(event, options)
    sizes = keep.sizes
    sizes.clear()
    ours: list[float] = []
    peer: list[float] = []
    peer_sizes: list[int] = []
    for _ in range(batches):
        started = time.process_time()
        outcome = flatten_batch(event, "lake", options, keep)
        ours.append(time.process_time() - started)
        assert not outcome.failed, outcome.problems
        started = time.process_time()
        bodies = peer_flatten(event, options)
        peer.append(time.process_time() - started)
        peer_sizes.extend(len(body) for body in bodies)
    ours_median, peer_median = _median(ours), _median(peer)
    ours_rate = round(records / ours_median) if ours_median else None
    peer_rate = round(records / peer_median) if peer_median else None
    return {
        "records_per_batch": records,
        "batches": batches,
        "objects_per_batch": len(sizes) // batches,
        "parquet_bytes_per_batch": sum(sizes) // batches,
        "cpu_seconds_per_batch_median": round(ours_median, 5),
        "records_per_second_per_core": ours_rate,
        "peer_parquet_bytes_per_batch": sum(peer_sizes) // batches,
        "peer_cpu_seconds_per_batch_median": round(peer_median, 5),
        "peer_records_per_second_per_core": peer_rate,
        "ratio_vs_peer": round(peer_median / ours_median, 2) if ours_median else None,
        "target_ratio_vs_peer": 2.0,
        "target_records_per_second": 20000,
        "cpus_visible": os.cpu_count(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--smoke", action="store_true", help="a tiny, fast run (10 records, 2 batches)")
    args = parser.parse_args(argv)
    records, batches = (10, 2) if args.smoke else (args.records, args.batches)
    figures = measure(records, batches)
    print(json.dumps(figures, indent=2))
    print(
        f"stream_flatten: snaplake {figures['records_per_second_per_core']} records/s per core, "
        f"peer {figures['peer_records_per_second_per_core']} records/s per core: {figures['ratio_vs_peer']}x "
        f"(CPU time, {records}-record batches, {batches} alternating pairs)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
