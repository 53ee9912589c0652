"""PlanCopy sizes batches by bytes as well as by count (issue 13): an export of large files is split into more
batches, so more CopyToLake children copy at once, and every object still lands once."""

from __future__ import annotations

import json
from typing import Any

import pytest
from snaplake.rds import copy_plan
from snaplake.rds.copy_plan import BATCH_BYTES, CopyItem, batch_size_for

from tests.unit.test_lake_copy import EXPECTED_LAKE_KEYS, EXPORT_BUCKET, buckets, lake_keys, lake_settings, run_copy

__all__ = ["buckets"]  # the fixture, shared with test_lake_copy
MB = 1024**2


def items(*sizes: int) -> list[CopyItem]:
    return [CopyItem(f"s{i}", f"d{i}", size, "e") for i, size in enumerate(sizes)]


@pytest.mark.parametrize(
    ("sizes", "most", "expected"),
    [
        ([1 * MB] * 20_000, 1_000, 1_000),  # small files: COPY_BATCH_SIZE objects per batch
        ([100 * MB] * 20_000, 1_000, BATCH_BYTES // (100 * MB)),  # 2 TB of 100 MB files: ~16 GiB per batch
        ([6 * 1024 * MB] * 10, 1_000, 2),  # files larger than a batch's bytes: one or two per batch, never none
        ([64 * 1024 * MB], 1_000, 1),
        ([0, 0, 0], 1_000, 1_000),  # nothing to weigh
        ([], 1_000, 1_000),
    ],
)
def test_a_batch_holds_about_batch_bytes_and_at_most_copy_batch_size_objects(sizes: list[int], most: int, expected: int) -> None:
    assert batch_size_for(items(*sizes), most) == expected


def test_two_terabytes_in_20000_files_plan_over_a_hundred_batches() -> None:
    size = batch_size_for(items(*[100 * 1000**2] * 20_000), 1_000)

    assert -(-20_000 // size) == 117  # CopyToLake runs all of them at once (CopyMaxConcurrency 200)


def test_an_export_of_large_files_is_copied_in_more_batches_and_lands_every_key(buckets: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(copy_plan, "BATCH_BYTES", 1_500)  # the sample export's files are ~600-1,500 bytes each

    outcome = run_copy(buckets, lake_settings(batch_size=1_000, workers=40))

    plan = outcome["plan"]
    assert plan["batches"] > 1 and plan["workers"][0]["batchSize"] < 5
    markers = json.loads(buckets.get_object(Bucket=EXPORT_BUCKET, Key=plan["plan"]["prefix"] + "markers.json")["Body"].read())
    assert (markers["batches"], markers["batchSize"]) == (plan["batches"], plan["workers"][0]["batchSize"])
    assert sum(result["copied"] for result in outcome["results"]) == 5
    assert lake_keys(buckets) == EXPECTED_LAKE_KEYS
