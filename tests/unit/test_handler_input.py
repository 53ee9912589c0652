"""The field checks every handler runs first: what passes as-is, what is refused by name.

The refusals are exercised per handler by the malformed-input corpus (tests/corpus);
here each check is pinned on its own, with the values the pipeline really sends.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from snaplake.core.errors import InvalidEvent
from snaplake.core.handler_input import athena_identifier, bucket, integer, s3_key, text, timestamp


@pytest.mark.parametrize(
    "key",
    [
        "exports/sl-world-aurora-manual-1-8db64dbebf/export_info_sl-world-aurora-manual-1-8db64dbebf.json",
        "dynamodb-exports/shop-orders/AWSDynamoDB/01795564952290-0847f1aa/manifest-summary.json",
        "lake/rds/world/public.users/snapshot_time=20240502T120555Z/1/part-00000.gz.parquet",
        "a/b..c/d",  # dots inside a segment are just characters
        "prefix%20with%20spaces/x",  # percent-escapes of ordinary characters stay allowed
        "ünïcödé/ключ",
    ],
)
def test_s3_key_accepts_the_keys_the_pipeline_writes(key: str) -> None:
    assert s3_key(key, "key") == key


@pytest.mark.parametrize(
    "folder",
    ["exports/sl-world-aurora-manual-1-8db64dbebf/", "dynamodb/shop_orders/export_time=20261125T002630Z/", "x/"],
)
def test_s3_folder_accepts_a_relative_prefix_ending_in_a_slash(folder: str) -> None:
    assert s3_key(folder, "prefix", folder=True) == folder


@pytest.mark.parametrize(
    "key",
    [
        None,
        7,
        "",
        "/leading/slash",
        "double//slash",
        "../up",
        "a/./b",
        "a/..",
        "trailing/",
        "nul\x00byte",
        "escape\x1bcharacter",
        "a/%2e%2e/b",
        "a%2Fb",
        "a%5Cb",
        "broken\udcffutf8",
        "k" * 1025,
        "é" * 513,  # 1026 bytes in UTF-8
    ],
)
def test_s3_key_refuses_what_does_not_name_one_object_literally(key: Any) -> None:
    with pytest.raises(InvalidEvent, match="'key'"):
        s3_key(key, "key")


@pytest.mark.parametrize("folder", ["no/trailing/slash", "/root/", "a//b/", "a/../b/", "/"])
def test_s3_folder_refuses_a_prefix_that_is_not_a_plain_folder(folder: str) -> None:
    with pytest.raises(InvalidEvent):
        s3_key(folder, "prefix", folder=True)


@pytest.mark.parametrize("value", [0, 1, 999, 2**53])
def test_integer_accepts_json_integers_in_range(value: int) -> None:
    assert integer(value, "n") == value


@pytest.mark.parametrize("value", [True, False, "1", 1.0, 1.5, None, [1], -1, 2**53 + 1])
def test_integer_refuses_booleans_strings_fractions_and_out_of_range(value: Any) -> None:
    with pytest.raises(InvalidEvent, match="'n'"):
        integer(value, "n")


def test_integer_range_is_inclusive() -> None:
    assert integer(5, "n", 5, 5) == 5
    with pytest.raises(InvalidEvent):
        integer(6, "n", 5, 5)


def test_timestamp_parses_iso_8601_with_a_zone_to_utc() -> None:
    assert timestamp("2024-05-02T14:05:55+02:00", "t") == datetime(2024, 5, 2, 12, 5, 55, tzinfo=UTC)
    assert timestamp("2024-05-02T12:05:55Z", "t") == datetime(2024, 5, 2, 12, 5, 55, tzinfo=UTC)


@pytest.mark.parametrize("value", ["2024-05-02T12:05:55", "2024-13-45T99:00:00Z", "tomorrow", "", 1714651555, None])
def test_timestamp_refuses_what_is_not_a_zoned_iso_timestamp(value: Any) -> None:
    with pytest.raises(InvalidEvent, match="'t'"):
        timestamp(value, "t")


@pytest.mark.parametrize("name", ["snaplake-local-lakebucket", "my.bucket.1", "abc"])
def test_bucket_accepts_s3_bucket_names(name: str) -> None:
    assert bucket(name, "b") == name


@pytest.mark.parametrize("name", ["Not A Bucket", "s3://x", "../x", "ab", "a" * 64, "-x-", None, ["x"]])
def test_bucket_refuses_what_is_not_a_bucket_name(name: Any) -> None:
    with pytest.raises(InvalidEvent, match="'b'"):
        bucket(name, "b")


@pytest.mark.parametrize("name", ["shop_orders", "world", "a", "x" * 255, "orders_changes"])
def test_athena_identifier_accepts_athena_safe_names(name: str) -> None:
    assert athena_identifier(name, "table") == name


@pytest.mark.parametrize("name", ["Shop_Orders", "shop-orders", "a; DROP TABLE x", "`t`", 't"', "x" * 256, "", "__x", 7])
def test_athena_identifier_refuses_names_it_would_have_to_change(name: Any) -> None:
    with pytest.raises(InvalidEvent, match="'table'"):
        athena_identifier(name, "table")


def test_text_checks_the_pattern_against_the_whole_value() -> None:
    pattern = re.compile(r"[a-z]+")
    assert text("abc", "t", pattern) == "abc"
    with pytest.raises(InvalidEvent):
        text("abc1", "t", pattern)
    with pytest.raises(InvalidEvent):
        text("", "t")
