"""Athena SQL generation: every statement parses as Athena SQL, every identifier is validated."""

from __future__ import annotations

from typing import Any

import pytest
import sqlglot
from snaplake.athena.errors import (
    InvalidIdentifier,
    InvalidLiteral,
    InvalidOption,
    InvalidSelect,
    PartitionAlreadyExists,
    SchemaMismatch,
    TableAlreadyExists,
    UnsafePartitionValue,
)
from snaplake.athena.plans import ExistingTable, SaveMode, check_schema, diff_columns, plan_apas, plan_ctas
from snaplake.athena.sql import (
    MAX_PARTITIONS_PER_QUERY,
    CtasOptions,
    build_add_partition,
    build_ctas,
    build_distinct_partitions,
    build_partitioned_ctas,
    build_schema_probe,
    ddl_name,
    dml_name,
    is_reserved,
    partition_batches,
    partition_location,
    validate_identifier,
    validate_location,
    validate_select,
)
from sqlglot import exp

SELECT = "SELECT id, amount, dt FROM lake.orders WHERE amount > 0"
LOCATION = "s3://lake-bucket/marts/daily_orders/"
OPTIONS = CtasOptions(external_location=LOCATION, partitioned_by=("dt",))


def parse(sql: str) -> Any:
    """Parse as Athena SQL; sqlglot falls back to an opaque Command for what it cannot parse, which counts as a failure."""
    parsed = sqlglot.parse(sql, read="athena")
    assert len(parsed) == 1, sql
    statement = parsed[0]
    assert statement is not None and not isinstance(statement, exp.Command), sql
    return statement


def test_ctas_has_the_athena_properties_and_parses() -> None:
    sql = build_ctas("marts", "daily_orders", SELECT, OPTIONS)
    statement = parse(sql)
    assert isinstance(statement, exp.Create)
    assert "format = 'PARQUET'" in sql and "write_compression = 'SNAPPY'" in sql
    assert f"external_location = '{LOCATION}'" in sql and "partitioned_by = ARRAY['dt']" in sql
    assert sql.startswith('CREATE TABLE "marts"."daily_orders"')


def test_a_trailing_line_comment_in_the_select_cannot_swallow_the_generated_sql() -> None:
    sql = build_ctas("marts", "t", "SELECT 1 AS a -- note", CtasOptions(external_location=LOCATION))
    assert isinstance(parse(sql), exp.Create)
    assert sql.endswith(")")


def plan_for(mode: SaveMode, existing: ExistingTable | None) -> Any:
    return plan_ctas("marts", "daily_orders", SELECT, OPTIONS, mode, existing, run_id="run_20240502")


OLD = ExistingTable("s3://lake-bucket/marts/daily_orders/run_20240501/")


def test_ctas_error_if_exists_refuses_an_existing_table() -> None:
    with pytest.raises(TableAlreadyExists):
        plan_for(SaveMode.ERROR_IF_EXISTS, OLD)
    fresh = plan_for(SaveMode.ERROR_IF_EXISTS, None)
    assert [s.kind for s in fresh.steps] == ["require_empty", "query"]


def test_ctas_skip_if_exists_does_nothing_for_an_existing_table() -> None:
    plan = plan_for(SaveMode.SKIP_IF_EXISTS, OLD)
    assert plan.skipped and plan.steps == ()
    assert [s.kind for s in plan_for(SaveMode.SKIP_IF_EXISTS, None).steps] == ["require_empty", "query"]


def test_ctas_none_runs_the_statement_as_is() -> None:
    plan = plan_for(SaveMode.NONE, OLD)
    assert [s.kind for s in plan.steps] == ["require_empty", "query"]
    assert plan.steps[0].location == LOCATION
    parse(plan.statements()[0])


def test_ctas_overwrite_deletes_the_old_data_only_after_the_new_table_replaced_it() -> None:
    plan = plan_for(SaveMode.OVERWRITE, OLD)
    kinds = [s.kind for s in plan.steps]
    assert kinds == ["require_empty", "query", "query", "replace_table", "delete_location"]
    new_location = f"{LOCATION}run_20240502/"
    assert plan.steps[0].location == new_location
    create = plan.steps[2].sql
    assert create is not None and '"daily_orders__snaplake_run_20240502"' in create and new_location in create
    assert (plan.steps[3].table, plan.steps[3].source_table) == ("daily_orders", "daily_orders__snaplake_run_20240502")
    assert (plan.steps[4].location, plan.steps[4].keep) == (OLD.location, None)
    for sql in plan.statements():
        parse(sql)


def test_ctas_overwrite_of_a_table_at_the_base_folder_keeps_the_new_folder_when_deleting() -> None:
    plan = plan_for(SaveMode.OVERWRITE, ExistingTable(LOCATION))
    delete = plan.steps[-1]
    assert (delete.kind, delete.location, delete.keep) == ("delete_location", LOCATION, f"{LOCATION}run_20240502/")


def test_ctas_overwrite_without_an_existing_table_is_a_plain_ctas_into_a_fresh_folder() -> None:
    plan = plan_for(SaveMode.OVERWRITE, None)
    assert [s.kind for s in plan.steps] == ["require_empty", "query"]
    assert f"{LOCATION}run_20240502/" in (plan.steps[1].sql or "")


def test_save_modes_parse_from_job_input() -> None:
    assert SaveMode.parse("Skip_If_Exists") is SaveMode.SKIP_IF_EXISTS
    with pytest.raises(InvalidOption):
        SaveMode.parse("replace")


def test_more_than_100_partitions_are_split_into_ctas_and_insert_batches() -> None:
    values = [(f"2024-01-{d:02d}", h) for d in range(1, 11) for h in range(25)]  # 250 partitions
    options = CtasOptions(external_location=LOCATION, partitioned_by=("dt", "hour"))
    statements = build_partitioned_ctas("marts", "t", SELECT, options, values)
    assert len(statements) == 3
    assert isinstance(parse(statements[0]), exp.Create)
    assert all(isinstance(parse(s), exp.Insert) for s in statements[1:])
    written = [s.count(" AND ") for s in statements]  # one AND per partition term (two keys)
    assert written == [100, 100, 50]


def test_partition_batches_compare_each_column_as_text_so_date_and_integer_columns_work() -> None:
    # GetQueryResults returns every value as text; `"dt" = '2024-01-01'` against a DATE column fails in Athena.
    options = CtasOptions(external_location=LOCATION, partitioned_by=("dt", "hour"))
    [statement] = build_partitioned_ctas("marts", "t", SELECT, options, [("2024-01-01", 7)])
    where = parse(statement).find(exp.Where)
    assert where is not None
    comparisons = list(where.find_all(exp.EQ))
    assert [(c.this.sql(), c.expression.sql()) for c in comparisons] == [
        ('CAST("dt" AS VARCHAR)', "'2024-01-01'"),
        ('CAST("hour" AS VARCHAR)', "'7'"),
    ]


def test_bucketing_reduces_the_partitions_per_query() -> None:
    options = CtasOptions(external_location=LOCATION, partitioned_by=("dt",), bucketed_by=("id",), bucket_count=5)
    statements = build_partitioned_ctas("marts", "t", SELECT, options, [(f"d{i}",) for i in range(45)])
    assert len(statements) == 3  # 20 + 20 + 5


def test_partition_batches_deduplicate_and_respect_the_limit() -> None:
    batches = partition_batches([("a",), ("a",), *[(str(i),) for i in range(150)]])
    assert [len(b) for b in batches] == [MAX_PARTITIONS_PER_QUERY, 51]


def test_distinct_partition_query_parses() -> None:
    assert isinstance(parse(build_distinct_partitions(SELECT, ["dt"])), exp.Select)


def test_add_partition_uses_if_not_exists_backticks_and_locations() -> None:
    sql = build_add_partition(
        "lake",
        "orders",
        [(("2024-05-01", "07"), "s3://lake-bucket/o/dt=2024-05-01/hour=07/"), (("2024-05-01", "08"), "s3://lake-bucket/o/x/")],
        ["dt", "hour"],
    )
    assert sql.startswith("ALTER TABLE `lake`.`orders` ADD IF NOT EXISTS")
    assert sql.count("PARTITION (`dt` = '2024-05-01', `hour` = ") == 2
    # sqlglot parses one PARTITION clause per ALTER TABLE; Athena takes several, so each clause is checked on its own.
    header, *clauses = sql.splitlines()
    for clause in clauses:
        statement = parse(f"{header}\n{clause}")
        assert isinstance(statement, exp.Alter) and isinstance(statement.args["actions"][0], exp.AddPartition)


def apas(mode: SaveMode, exists: bool, ignore: bool = False) -> Any:
    return plan_apas(
        "marts",
        "daily",
        "SELECT id, amount FROM lake.orders WHERE dt = '2024-05-01'",
        partition_columns=["dt"],
        partition_values=("2024-05-01",),
        table_location="s3://lake-bucket/marts/daily/",
        mode=mode,
        partition_exists=exists,
        run_id="r1",
        probe_location="s3://lake-bucket/_snaplake/probes/",
        ignore_schema_mismatch=ignore,
    )


def test_apas_dry_runs_checks_writes_then_adds_the_partition() -> None:
    plan = apas(SaveMode.ERROR_IF_EXISTS, exists=False)
    assert [s.kind for s in plan.steps] == ["query", "require_empty", "query", "check_schema", "query", "query", "query"]
    probe = plan.steps[2].sql or ""
    assert probe.rstrip().endswith("WHERE false") and "s3://lake-bucket/_snaplake/probes/r1/" in probe
    insert, add = plan.steps[5].sql or "", plan.steps[6].sql or ""
    assert insert.startswith('INSERT INTO "marts"."daily"') and """'2024-05-01' AS "dt\"""" in insert
    assert "LOCATION 's3://lake-bucket/marts/daily/dt=2024-05-01/'" in add
    for sql in plan.statements():
        parse(sql)


def test_apas_save_modes_for_an_existing_partition() -> None:
    with pytest.raises(PartitionAlreadyExists):
        apas(SaveMode.ERROR_IF_EXISTS, exists=True)
    assert apas(SaveMode.SKIP_IF_EXISTS, exists=True).skipped
    overwrite = [s.kind for s in apas(SaveMode.OVERWRITE, exists=True).steps]
    assert overwrite[-4:] == ["query", "delete_location", "query", "query"]
    assert "check_schema" not in [s.kind for s in apas(SaveMode.NONE, exists=True, ignore=True).steps]


def test_apas_schema_mismatch_names_the_differences() -> None:
    target = [("id", "bigint"), ("amount", "decimal(12,2)"), ("note", "string")]
    produced = [("id", "int"), ("amount", "decimal(12, 2)"), ("extra", "string")]
    diff = diff_columns(target, produced)
    assert diff.missing == ("note",) and diff.extra == ("extra",) and diff.type_changes == (("id", "bigint", "int"),)
    with pytest.raises(SchemaMismatch, match=r"missing \['note'\].*unexpected \['extra'\].*id: table bigint, select int"):
        check_schema("daily", target, produced)


def test_apas_schema_check_catches_a_reordered_select() -> None:
    diff = diff_columns([("a", "int"), ("b", "int")], [("b", "int"), ("a", "int")])
    assert diff.order_differs and not diff.matches


def test_matching_schemas_pass() -> None:
    assert check_schema("t", [("a", "int")], [("A", "INT")]).matches


def test_schema_probe_is_an_empty_ctas() -> None:
    statement = parse(build_schema_probe("marts", "probe", SELECT, "s3://lake-bucket/probe/"))
    assert isinstance(statement, exp.Create)


@pytest.mark.parametrize(
    "name",
    ["a; DROP TABLE x", "a`b", "`a`", 'a"b', "a'b", "Orders", "ordérs", "a b", "a--b", "", "x" * 256, "a.b", "a\nb", None, 5],
)
def test_injection_and_invalid_identifiers_are_rejected(name: Any) -> None:
    with pytest.raises(InvalidIdentifier):
        validate_identifier(name)
    with pytest.raises(InvalidIdentifier):
        build_ctas("marts", name, SELECT, OPTIONS)
    with pytest.raises(InvalidIdentifier):
        build_add_partition("lake", "orders", [(("x",), "s3://lake-bucket/o/")], [name])


def test_valid_identifiers_are_always_quoted() -> None:
    assert validate_identifier("x" * 255) == "x" * 255
    assert (ddl_name("date"), dml_name("date")) == ("`date`", '"date"')
    assert is_reserved("date") and is_reserved("partition") and not is_reserved("orders")
    assert isinstance(parse(build_ctas("marts", "date", "SELECT 1 AS a", CtasOptions(external_location=LOCATION))), exp.Create)


@pytest.mark.parametrize("value", ["x'; DROP TABLE t; --", "a\\b", "a\nb"])
def test_partition_values_that_could_break_out_of_a_literal_are_rejected(value: str) -> None:
    with pytest.raises(InvalidLiteral):
        build_add_partition("lake", "orders", [((value,), "s3://lake-bucket/o/")], ["dt"])


@pytest.mark.parametrize("value", ["../x", "a/b", "k=v", "12:00", ""])
def test_apas_partition_values_that_are_not_one_path_segment_are_rejected(value: str) -> None:
    with pytest.raises(InvalidLiteral):
        partition_location("s3://lake-bucket/t/", ["dt"], (value,))


@pytest.mark.parametrize("location", ["s3://lake-bucket/o", "https://x/", "s3://lake-bucket/o'/", "s3://lake-bucket//o/", "s3://B/x/"])
def test_malformed_locations_are_rejected(location: str) -> None:
    with pytest.raises(InvalidLiteral):
        validate_location(location)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1; DROP TABLE x",
        "SELECT 1; DROP TABLE x;",
        "DROP TABLE x",
        "INSERT INTO x SELECT 1",
        "SELECT 'unterminated",
        "SELECT 1 /* unterminated",
        "",
        "   ",
        "CREATE TABLE t AS SELECT 1",
        None,
    ],
)
def test_only_a_single_select_is_accepted(sql: Any) -> None:
    with pytest.raises(InvalidSelect):
        validate_select(sql)


@pytest.mark.parametrize(
    ("sql", "kept"),
    [
        ("SELECT 1;", "SELECT 1"),
        ("select ';' AS semi", "select ';' AS semi"),
        ("WITH x AS (SELECT 1 a) SELECT a FROM x -- done;", "WITH x AS (SELECT 1 a) SELECT a FROM x -- done;"),
        ('(SELECT "a;b" FROM t)', '(SELECT "a;b" FROM t)'),
    ],
)
def test_a_single_select_with_quoted_semicolons_or_one_trailing_semicolon_is_accepted(sql: str, kept: str) -> None:
    assert validate_select(sql) == kept


@pytest.mark.parametrize(
    "options",
    [
        CtasOptions(format="CSV", external_location=LOCATION),
        CtasOptions(write_compression="BROTLI'", external_location=LOCATION),
        CtasOptions(external_location=LOCATION, partitioned_by=("dt;",)),
        CtasOptions(external_location=LOCATION, bucketed_by=("id",)),
    ],
)
def test_invalid_ctas_options_are_rejected(options: CtasOptions) -> None:
    with pytest.raises((InvalidOption, InvalidIdentifier)):
        build_ctas("marts", "t", SELECT, options)


# ---------------------------------------------------------------- partition folders exactly as Athena names them
@pytest.mark.parametrize("char", [chr(c) for c in range(0x01, 0x20)] + list("\"#%'*/:=?\\\x7f{[]^"), ids=repr)
def test_a_partition_folder_is_never_derived_from_a_value_athena_would_escape(char: str) -> None:
    with pytest.raises(UnsafePartitionValue):
        partition_location("s3://lake-bucket/t/", ["dt"], (f"a{char}b",))


@pytest.mark.parametrize(
    ("value", "folder"),
    [("São Paulo", "city=São Paulo/"), ("東京 2", "city=東京 2/"), ("a}b(c)+d,e!@~$&;|<>", "city=a}b(c)+d,e!@~$&;|<>/"), (7, "city=7/")],
)
def test_a_value_athena_writes_unescaped_names_its_folder_as_is_and_overwrites_it(value: str | int, folder: str) -> None:
    plan = plan_apas(
        "marts",
        "daily",
        "SELECT id FROM lake.orders",
        partition_columns=["city"],
        partition_values=(value,),
        table_location="s3://lake-bucket/marts/daily/",
        mode=SaveMode.OVERWRITE,
        partition_exists=True,
        run_id="r1",
        probe_location="s3://lake-bucket/_snaplake/probes/",
    )

    deleted = [step.location for step in plan.steps if step.kind == "delete_location"]
    assert deleted == [f"s3://lake-bucket/marts/daily/{folder}"]
    added = plan.steps[-1].sql
    assert added is not None and f"LOCATION 's3://lake-bucket/marts/daily/{folder}'" in added
    parse(added)


# ---------------------------------------------------------------------- issue 12, finding 5: a real parser
@pytest.mark.parametrize(
    "sql",
    [
        pytest.param("SELECT 1 AS a -- note\r; DROP TABLE lake.orders", id="comment-ended-by-cr"),
        pytest.param("SELECT 1 AS a -- note\rUNION ALL SELECT 2; DROP TABLE x", id="cr-then-union-then-statement"),
        pytest.param("WITH x AS (SELECT 1 AS a) INSERT INTO lake.orders SELECT * FROM x", id="with-insert"),
        pytest.param("WITH x AS (SELECT 1 AS a) DELETE FROM lake.orders", id="with-delete"),
        pytest.param("SELECT * FROM (SELECT 1", id="unbalanced"),
    ],
)
def test_sql_athena_reads_as_something_else_than_one_select_is_refused(sql: str) -> None:
    with pytest.raises(InvalidSelect):
        validate_select(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "WITH x AS (SELECT 1 AS a) SELECT * FROM x",
        "SELECT 1 AS a -- note\r",
        "(SELECT 1 AS a) UNION ALL (SELECT 2)",
        "SELECT x FROM t CROSS JOIN UNNEST(a) AS u(x) WHERE transform(b, y -> y + 1) IS NOT NULL",
    ],
)
def test_read_only_queries_in_trino_syntax_are_accepted(sql: str) -> None:
    assert validate_select(sql)


@pytest.mark.parametrize("field", ["partitioned_by", "bucketed_by"])
def test_a_column_named_twice_in_partitioned_by_or_bucketed_by_is_refused(field: str) -> None:
    options = CtasOptions(**{field: ("dt", "dt")}, **({"bucket_count": 4} if field == "bucketed_by" else {}))  # type: ignore[arg-type]
    with pytest.raises(InvalidOption, match="more than once"):
        options.validated()
