"""Claims and column registries: the first writer wins, a racing writer sees the winner, names never change."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from snaplake.core.claims import Claims, ColumnRegistry, claim_key
from snaplake.core.s3 import Bucket
from snaplake_local.emulator import enforce_expected_bucket_owner

from tests.unit.helpers import REGION

LAKE = "claims-lake"


@pytest.fixture
def lake(s3: Any) -> Iterator[Bucket]:
    s3.create_bucket(Bucket=LAKE, CreateBucketConfiguration={"LocationConstraint": REGION})
    # S3 applies each request atomically; plain moto can let two racing If-None-Match puts both succeed.
    with enforce_expected_bucket_owner():
        yield Bucket(s3, LAKE)


def test_first_claim_wins_and_a_second_owner_sees_the_first(lake: Bucket) -> None:
    key = claim_key("dynamodb", "orders")
    assert Claims(lake).claim(key, {"table": "arn:orders"}) == {"table": "arn:orders"}
    assert Claims(lake).claim(key, {"table": "arn:Orders"}) == {"table": "arn:orders"}
    assert Claims(lake).claim(key, {"table": "arn:orders"}) == {"table": "arn:orders"}


def test_racing_claims_have_exactly_one_winner(lake: Bucket) -> None:
    key = claim_key("rds", "partition")
    results: list[dict[str, Any]] = []
    barrier = threading.Barrier(8)

    def run(owner: int) -> None:
        barrier.wait()
        results.append(Claims(lake).claim(key, {"owner": owner}))

    threads = [threading.Thread(target=run, args=(owner,)) for owner in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({r["owner"] for r in results}) == 1


def test_registry_keeps_names_across_batches(lake: Bucket) -> None:
    registry = ColumnRegistry(lake, "streams", "orders")
    assert registry.names([("new", "Foo")], "__") == {("new", "Foo"): "new__foo"}
    # a later batch brings `foo` too: `Foo` keeps its name, `foo` gets another one, in any order of arrival
    assert registry.names([("new", "foo"), ("new", "Foo")], "__") == {("new", "Foo"): "new__foo", ("new", "foo"): "new__foo_2"}
    assert ColumnRegistry(lake, "streams", "orders").names([("new", "foo")], "__") == {("new", "foo"): "new__foo_2"}


def test_registry_never_gives_a_reserved_name(lake: Bucket) -> None:
    names = ColumnRegistry(lake, "dynamodb", "t").names([("export_time",), ("id",)], "__", frozenset({"export_time"}))
    assert names == {("export_time",): "export_time_2", ("id",): "id"}


def test_registry_survives_a_concurrent_writer(lake: Bucket) -> None:
    first, second = ColumnRegistry(lake, "t"), ColumnRegistry(lake, "t")
    barrier = threading.Barrier(2)
    out: dict[str, dict[tuple[str, ...], str]] = {}

    def run(name: str, registry: ColumnRegistry, paths: list[tuple[str, ...]]) -> None:
        barrier.wait()
        out[name] = registry.names(paths, "__")

    threads = [
        threading.Thread(target=run, args=("a", first, [("Foo",), ("a",)])),
        threading.Thread(target=run, args=("b", second, [("foo",), ("b",)])),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {out["a"][("Foo",)], out["b"][("foo",)]} == {"foo", "foo_2"}
    assert ColumnRegistry(lake, "t").names([("Foo",), ("foo",), ("a",), ("b",)], "__") == {**out["a"], **out["b"]}
