"""Lake key layout: Athena names, export key parsing and the key template."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from snaplake.core.names import athena_name, join_key
from snaplake.core.times import iso_utc, parse_iso_utc, snapshot_time_value
from snaplake.rds.errors import InvalidKeyTemplate, UnexpectedExportLayout
from snaplake.rds.layout import (
    DEFAULT_KEY_TEMPLATE,
    OLD_LAYOUT_BATCH,
    SEED_KEY_TEMPLATE,
    ExportObject,
    KeyTemplate,
    SnapshotLayout,
    lake_table_name,
    parse_export_key,
)

SNAPSHOT_TIME = datetime(2024, 5, 2, 12, 5, 55, tzinfo=UTC)
LAYOUT = SnapshotLayout(
    engine="aurora-postgresql",
    source_id="world-aurora",
    export_id="sl-world-aurora-manual-1-0123456789",
    snapshot_time=SNAPSHOT_TIME,
)

# ---------------------------------------------------------------- athena_name


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("users", "users"),
        ("Invoice_Lines", "invoice_lines"),
        ("Order Items (2024)", "order_items_2024"),
        ("order--items..v2", "order_items_v2"),
        ("__leading_and_trailing__", "leading_and_trailing"),
        ("$weird$", "weird"),
        ("", "name_e3b0c442"),
        ("!!!", "name_e84c538e"),
    ],
)
def test_athena_name_is_lower_case_with_single_underscores(raw: str, expected: str) -> None:
    assert athena_name(raw) == expected


# ---------------------------------------------------------------- lake_table_name


@pytest.mark.parametrize(
    ("engine", "database", "folder", "expected"),
    [
        ("aurora-postgresql", "world", "public.users", "users"),
        ("postgres", "world", "public.users", "users"),
        ("aurora-postgresql", "world", "sales.Invoice_Lines", "sales_invoice_lines"),
        ("postgres", "world", "world.users", "world_users"),
        ("mysql", "shop", "shop.customers", "customers"),
        ("aurora-mysql", "shop", "shop.Order-Items", "order_items"),
        ("mariadb", "shop", "shop.customers", "customers"),
        ("aurora", "shop", "shop.customers", "customers"),
        ("mysql", "shop", "public.users", "public_users"),
        ("MySQL", "shop", "shop.customers", "customers"),
    ],
)
def test_lake_table_name_drops_the_engines_default_qualifier(engine: str, database: str, folder: str, expected: str) -> None:
    assert lake_table_name(engine, database, folder) == expected


@pytest.mark.parametrize(
    ("engine", "database", "folder", "expected"),
    [
        ("", "shop", "shop.customers", "customers"),
        ("", "world", "public.users", "users"),
        ("sqlserver-se", "world", "dbo.Users", "dbo_users"),
        ("oracle-ee", "world", "sales.Invoice_Lines", "sales_invoice_lines"),
    ],
)
def test_lake_table_name_for_unknown_engine_drops_public_and_the_database(engine: str, database: str, folder: str, expected: str) -> None:
    assert lake_table_name(engine, database, folder) == expected


def test_lake_table_name_of_folder_without_qualifier_is_the_athena_name() -> None:
    assert lake_table_name("postgres", "world", "Users") == "users"


# ---------------------------------------------------------------- parse_export_key


def test_current_layout_data_file_is_located_with_its_batch() -> None:
    found = parse_export_key("world/public.users/1/part-00000-a1b2c3-c000.gz.parquet")

    assert found == ExportObject("world", "public.users", "1", "part-00000-a1b2c3-c000.gz.parquet")
    assert found.is_data and not found.is_marker


def test_alphanumeric_batch_folder_is_kept() -> None:
    found = parse_export_key("world/public.users/a/part-00003-x.gz.parquet")

    assert found is not None
    assert found.batch == "a"


def test_old_layout_data_file_becomes_batch_one() -> None:
    found = parse_export_key("world/public.users/part-00000-a1b2c3.parquet")

    assert found == ExportObject("world", "public.users", OLD_LAYOUT_BATCH, "part-00000-a1b2c3.parquet")
    assert OLD_LAYOUT_BATCH == "1"


@pytest.mark.parametrize(
    ("key", "batch"),
    [("world/public.users/1/_SUCCESS", "1"), ("world/public.users/_SUCCESS", "1"), ("shop/shop.customers/7/_SUCCESS", "7")],
)
def test_success_marker_is_located_as_a_marker(key: str, batch: str) -> None:
    found = parse_export_key(key)

    assert found is not None
    assert found.is_marker and not found.is_data
    assert found.batch == batch


@pytest.mark.parametrize(
    "key",
    [
        "export_info_sl-world-aurora-manual-1-0123456789.json",
        "export_tables_info_sl-world-aurora-manual-1-0123456789_from_1_to_96.json",
        "world/public.users/1/",
        "world/public.users/1/nested/_SUCCESS",
        "",
    ],
)
def test_metadata_and_other_non_table_objects_are_not_located(key: str) -> None:
    assert parse_export_key(key) is None


@pytest.mark.parametrize(
    "key", ["world/public.users/1/notes.json", "world/public.users/readme.txt", "world/public.users/1/part-00000-a.gz.csv"]
)
def test_non_parquet_file_in_a_table_folder_is_an_unexpected_layout(key: str) -> None:
    """It would be left out of the lake while `_SUCCESS` says the partition is complete: refused, never skipped."""
    with pytest.raises(UnexpectedExportLayout, match="neither Parquet"):
        parse_export_key(key)


@pytest.mark.parametrize(
    "key",
    [
        "part-00000-a.gz.parquet",
        "world/part-00000-a.gz.parquet",
        "world/public.users/1/extra/part-00000-a.gz.parquet",
        "a/b/c/d/e/f.parquet",
    ],
)
def test_parquet_file_at_unexpected_depth_is_an_unexpected_layout(key: str) -> None:
    with pytest.raises(UnexpectedExportLayout):
        parse_export_key(key)


@pytest.mark.parametrize(
    "key",
    [
        "world/../1/part-00000-a.gz.parquet",
        "../public.users/1/part-00000-a.gz.parquet",
        "world/public.users/../part-00000-a.gz.parquet",
        "world//1/part-00000-a.gz.parquet",
        "/public.users/1/part-00000-a.gz.parquet",
        "world/public.users//part-00000-a.gz.parquet",
        "world/./1/part-00000-a.gz.parquet",
        "world/public.users/1/part-\x0000.gz.parquet",
        "world/public.users/1/part-\n0000.gz.parquet",
        "world/public.users/../_SUCCESS",
        "world/../_SUCCESS",
    ],
)
def test_unsafe_path_segment_is_an_unexpected_layout(key: str) -> None:
    with pytest.raises(UnexpectedExportLayout):
        parse_export_key(key)


@pytest.mark.parametrize("folder", ["public.Ümlaut_tabelle", "public.order#items", "shop.a+b", "public.with space"])
def test_unusual_but_harmless_table_folder_names_are_accepted_and_made_athena_safe(folder: str) -> None:
    located = parse_export_key(f"world/{folder}/1/part-00000-a.gz.parquet")

    assert located is not None and located.table_folder == folder
    assert lake_table_name("aurora-postgresql", "world", folder).replace("_", "").isalnum()


# ---------------------------------------------------------------- time values


def test_snapshot_time_value_is_compact_utc_without_colons() -> None:
    assert snapshot_time_value(SNAPSHOT_TIME) == "20240502T120555Z"


def test_snapshot_time_value_converts_other_time_zones_to_utc() -> None:
    cest = timezone(timedelta(hours=2))

    value = snapshot_time_value(datetime(2024, 5, 2, 5, 21, 44, tzinfo=cest))

    assert value == "20240502T032144Z"
    assert ":" not in value


@pytest.mark.parametrize(
    "text",
    ["2024-05-02T03:21:44Z", "2024-05-02T03:21:44.000Z", "2024-05-02T05:21:44+02:00", "2024-05-01T22:21:44-05:00"],
)
def test_parse_iso_utc_returns_an_aware_utc_datetime(text: str) -> None:
    parsed = parse_iso_utc(text)

    assert parsed == datetime(2024, 5, 2, 3, 21, 44, tzinfo=UTC)
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize("text", ["2024-05-02T03:21:44", "yesterday", "", "2024-13-02T03:21:44Z"])
def test_parse_iso_utc_rejects_naive_or_malformed_timestamps(text: str) -> None:
    with pytest.raises(ValueError):
        parse_iso_utc(text)


def test_iso_utc_round_trips_through_parse_iso_utc() -> None:
    text = iso_utc(datetime(2024, 5, 2, 5, 21, 44, tzinfo=timezone(timedelta(hours=2))))

    assert text == "2024-05-02T03:21:44Z"
    assert parse_iso_utc(text) == datetime(2024, 5, 2, 3, 21, 44, tzinfo=UTC)


def test_join_key_drops_empty_parts_and_duplicate_slashes() -> None:
    assert join_key("", "/lake/", "rds/world/", "1/part.parquet") == "lake/rds/world/1/part.parquet"


# ---------------------------------------------------------------- KeyTemplate


def test_default_template_renders_partition_prefix_and_object_path() -> None:
    template = KeyTemplate.parse(DEFAULT_KEY_TEMPLATE)
    values = LAYOUT.partition_values("world", "public.users")

    assert template.partition_prefix(values) == "rds/world/users/snapshot_time=20240502T120555Z"
    assert template.object_path({**values, "batch": "1", "file": "part-00000-a.gz.parquet"}) == "1/part-00000-a.gz.parquet"


def test_seed_template_renders_partition_prefix_and_object_path() -> None:
    template = KeyTemplate.parse(SEED_KEY_TEMPLATE)
    values = LAYOUT.partition_values("world", "sales.Invoice_Lines")

    assert template.partition_prefix(values) == "world/sales_invoice_lines/partition_datetime=20240502T120555Z"
    assert template.object_path({**values, "batch": "2", "file": "part-00001-b.gz.parquet"}) == "2/part-00001-b.gz.parquet"


def test_mysql_layout_renders_table_without_the_database_qualifier() -> None:
    layout = SnapshotLayout("mysql", "shop-mysql", "sl-shop-0123456789", datetime(2024, 5, 2, 3, 15, tzinfo=UTC))
    template = KeyTemplate.parse(DEFAULT_KEY_TEMPLATE)

    assert (
        template.partition_prefix(layout.partition_values("shop", "shop.customers")) == "rds/shop/customers/snapshot_time=20240502T031500Z"
    )


def test_template_may_use_every_partition_placeholder() -> None:
    template = KeyTemplate.parse("{source_id}/{database}/{source_table}/{table}/day={snapshot_date}/export={export_id}/{batch}/{file}")
    values = LAYOUT.partition_values("World-DB", "public.users")

    assert template.partition_prefix(values) == (
        "world-aurora/world_db/public.users/users/day=2024-05-02/export=sl-world-aurora-manual-1-0123456789"
    )
    assert template.table_folder(values) == "world-aurora/world_db/public.users/users"
    assert template.partition_keys == ("day", "export")
    assert template.object_path({**values, "batch": "1", "file": "f.parquet"}) == "1/f.parquet"


def test_template_without_batch_puts_files_straight_under_the_partition() -> None:
    template = KeyTemplate.parse("lake/{table}/dt={snapshot_date}/at={snapshot_time}/{file}")
    values = LAYOUT.partition_values("world", "public.users")

    assert template.partition_prefix(values) == "lake/users/dt=2024-05-02/at=20240502T120555Z"
    assert template.object_path({**values, "batch": "1", "file": "f.parquet"}) == "f.parquet"


@pytest.mark.parametrize(
    "text",
    [
        "rds/{database}/{table}/snapshot_date={snapshot_date}/{batch}/{file}",  # two snapshots of one day share it
        "rds/{database}/{table}/dt={snapshot_date}/source={source_id}/{batch}/{file}",
        "rds/{snapshot_time}/{table}/dt={snapshot_date}/{batch}/{file}",  # unique, but in the table folder
    ],
)
def test_template_whose_partition_can_repeat_between_snapshots_is_refused(text: str) -> None:
    with pytest.raises(InvalidKeyTemplate, match="snapshot_time"):
        KeyTemplate.parse(text)


@pytest.mark.parametrize(
    "text",
    [
        "rds/{database}/{table}/{snapshot_time}/{batch}/{file}",  # RegisterCatalog needs key=value partition segments
        "rds/{database}/{table}/snapshot_time={snapshot_time}/{source_id}/{batch}/{file}",
        "rds/{database}/snapshot_time={snapshot_time}/table={table}/{batch}/{file}",  # the table is not a folder
        "rds/{table}/t={snapshot_time}/t={export_id}/{batch}/{file}",
    ],
)
def test_template_that_registercatalog_cannot_turn_into_a_partitioned_table_is_refused(text: str) -> None:
    with pytest.raises(InvalidKeyTemplate):
        KeyTemplate.parse(text)


def test_template_names_its_table_folder_and_partition_keys() -> None:
    template = KeyTemplate.parse(SEED_KEY_TEMPLATE)

    assert template.table_folder(LAYOUT.partition_values("world", "public.users")) == "world/users"
    assert template.partition_keys == ("partition_datetime",)


@pytest.mark.parametrize(
    "text",
    [
        "rds/{table}/time={snapshot_time}:x/{batch}/{file}",
        "s3://bucket/{table}/{snapshot_time}/{batch}/{file}",
        "rds/{table}/{snapshot_time:%Y}/{batch}/{file}",
    ],
)
def test_template_with_colon_is_rejected(text: str) -> None:
    with pytest.raises(InvalidKeyTemplate):
        KeyTemplate.parse(text)


@pytest.mark.parametrize(
    "text",
    [
        "rds/{schema}/{table}/{snapshot_time}/{batch}/{file}",
        "rds/{}/{table}/{snapshot_time}/{batch}/{file}",
        "rds/{0}/{table}/{snapshot_time}/{batch}/{file}",
        "rds/{table!r}/{snapshot_time}/{batch}/{file}",
        "rds/{table.upper}/{snapshot_time}/{batch}/{file}",
    ],
)
def test_template_with_unknown_placeholder_is_rejected(text: str) -> None:
    with pytest.raises(InvalidKeyTemplate):
        KeyTemplate.parse(text)


@pytest.mark.parametrize(
    "text",
    [
        "rds/{table}/{snapshot_time}/{batch}",
        "rds/{table}/{snapshot_time}/{file}.parquet",
        "rds/{table}/{snapshot_time}/{file}/{batch}",
        "rds/{table}/{snapshot_time}/{batch}-{file}",
        "rds/{table}/{snapshot_time}/{batch}/{file}/",
    ],
)
def test_template_not_ending_with_file_segment_is_rejected(text: str) -> None:
    with pytest.raises(InvalidKeyTemplate):
        KeyTemplate.parse(text)


@pytest.mark.parametrize(
    "text",
    ["rds/{database}/snapshot_time={snapshot_time}/{batch}/{file}", "{file}", "{batch}/{table}/{snapshot_time}/{file}"],
)
def test_template_without_table_before_the_objects_is_rejected(text: str) -> None:
    with pytest.raises(InvalidKeyTemplate):
        KeyTemplate.parse(text)


@pytest.mark.parametrize(
    "text", ["rds/{database}/{table}/{batch}/{file}", "rds/{source_id}/{table}/{file}", "rds/{table}/{batch}/{snapshot_time}/{file}"]
)
def test_template_without_snapshot_placeholder_in_the_partition_is_rejected(text: str) -> None:
    with pytest.raises(InvalidKeyTemplate):
        KeyTemplate.parse(text)


def test_template_accepts_each_snapshot_placeholder() -> None:
    for placeholder in ("snapshot_time", "export_id"):
        template = KeyTemplate.parse(f"rds/{{table}}/key={{{placeholder}}}/{{batch}}/{{file}}")
        assert template.object_segments == ("{batch}", "{file}")


@pytest.mark.parametrize(
    "text",
    [
        "rds/../{table}/{snapshot_time}/{batch}/{file}",
        "rds/{table}/..{snapshot_time}/{batch}/{file}",
        "rds/{table}/{snapshot_time}/../{file}",
    ],
)
def test_template_with_dot_dot_is_rejected(text: str) -> None:
    with pytest.raises(InvalidKeyTemplate):
        KeyTemplate.parse(text)


@pytest.mark.parametrize(
    "text",
    [
        "rds/{table}/{snapshot_time}/{batch}/{database}/{file}",
        "rds/{table}/{snapshot_time}/{batch}-{table}/{file}",
        "rds/{table}/{snapshot_time}/{batch}/{snapshot_date}/{file}",
    ],
)
def test_template_with_partition_placeholder_after_batch_is_rejected(text: str) -> None:
    with pytest.raises(InvalidKeyTemplate):
        KeyTemplate.parse(text)


@pytest.mark.parametrize(
    "text",
    [
        "/rds/{table}/{snapshot_time}/{batch}/{file}",
        "rds//{table}/{snapshot_time}/{batch}/{file}",
        "rds\\{table}/{snapshot_time}/{batch}/{file}",
        "rds/{table/{snapshot_time}/{batch}/{file}",
        "",
    ],
)
def test_template_that_is_not_a_clean_relative_path_is_rejected(text: str) -> None:
    with pytest.raises(InvalidKeyTemplate):
        KeyTemplate.parse(text)


def test_parsed_template_splits_partition_and_object_segments() -> None:
    template = KeyTemplate.parse(DEFAULT_KEY_TEMPLATE)

    assert template.text == DEFAULT_KEY_TEMPLATE
    assert template.partition_segments == ("rds", "{database}", "{table}", "snapshot_time={snapshot_time}")
    assert template.object_segments == ("{batch}", "{file}")


# ---------------------------------------------------------------- athena_name of names with no [a-z0-9]


@pytest.mark.parametrize("raw", ["顧客", "Ärger", "名前", "!!!", "__", "", "ÄÖÜ", "äöü", "—"])
def test_a_name_with_no_ascii_letter_or_digit_gets_a_readable_prefix_and_a_hash_of_the_raw_name(raw: str) -> None:
    name = athena_name(raw)

    assert re.fullmatch(r"[a-z][a-z0-9_]*", name), name  # no leading `_`: no quoting needed in Athena
    assert athena_name(raw) == name  # deterministic
    assert athena_name(name) == name  # stable when sanitized again (nested column names)


def test_names_that_lose_all_their_characters_stay_distinct() -> None:
    raws = ["顧客", "名前", "注文", "ÄÖÜ", "äöü", "!!!", "???", "__", "", "—"]

    assert len({athena_name(raw) for raw in raws}) == len(raws)


def test_a_name_keeping_one_ascii_letter_or_digit_is_unchanged_by_the_hash_rule() -> None:
    assert athena_name("Ärger") == "rger"
    assert athena_name("顧客_2") == "2"
    assert athena_name("café") == "caf"


def test_key_template_whose_partition_can_repeat_is_a_config_error_when_a_copy_function_starts() -> None:
    from snaplake.core.errors import ConfigError
    from snaplake.rds.settings import CopySettings

    with pytest.raises(ConfigError, match=r"LAKE_KEY_TEMPLATE.*snapshot_date"):
        CopySettings.from_env(
            {"LAKE_BUCKET": "snaplake-lake", "LAKE_KEY_TEMPLATE": "rds/{database}/{table}/dt={snapshot_date}/{batch}/{file}"}
        )
