"""SQL for Athena jobs: validated identifiers, quoted literals, and plans as data.

The only user SQL ever embedded is the job's declared SELECT (checked to be a
single SELECT/WITH statement); every other part of a statement is built from
identifiers that match Athena's rules (`[a-z0-9_]{1,255}`) and are always
quoted — backticks in DDL, double quotes in DML — and from literals that are
validated and escaped. Builders return SQL text; snaplake.athena.plans turns
them into plans.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from snaplake.athena.errors import (
    InvalidIdentifier,
    InvalidLiteral,
    InvalidOption,
    InvalidSelect,
    UnsafePartitionValue,
)
from snaplake.core.limits import ATHENA_MAX_PARTITIONS_PER_QUERY, GLUE_NAME_MAX

MAX_IDENTIFIER = GLUE_NAME_MAX
MAX_PARTITIONS_PER_QUERY = ATHENA_MAX_PARTITIONS_PER_QUERY
FORMATS = frozenset({"PARQUET", "ORC", "AVRO", "JSON", "ION", "TEXTFILE"})
COMPRESSIONS = frozenset({"SNAPPY", "GZIP", "ZSTD", "LZ4", "LZO", "ZLIB", "DEFLATE", "BZIP2", "NONE"})

_IDENTIFIER = re.compile(r"[a-z0-9_]{1,255}")
# Folder names: anything but control characters, quotes, backslashes and the other characters Athena escapes in
# partition folder names (below), except `=` and `*`; so a partition folder of a value with spaces or unicode fits.
_S3_LOCATION = re.compile(r"s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]/(?:[^\x00-\x1f\x7f\"#%'/:?\\{\[\]^]+/)*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# What Hive's FileUtils.escapePathName writes as %XX in a partition folder name; Athena's engine keeps Hive's list.
PATH_ESCAPED = frozenset(map(chr, range(0x20))) | frozenset("\"#%'*/:=?\\\x7f{[]^")


# Athena reserved words (reserved-words.md): DDL words need backticks, DML words double quotes.
# Every identifier is quoted anyway; the lists let callers warn about names that will need quoting in hand-written SQL.
def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


RESERVED_DDL = _words(
    """all alter and array as authorization between bigint binary boolean both by case cache cast char column conf constraint commit
    create cross cube current current_date current_timestamp cursor database date dayofweek decimal delete describe distinct double
    drop else end exchange exists extended external extract false fetch float floor following for foreign from full function grant
    group grouping having if import in inner insert int integer intersect interval into is join lateral left less like local macro
    map more none not null numeric of on only or order out outer over partialscan partition percent preceding precision preserve
    primary procedure range reads reduce regexp references revoke right rlike rollback rollup row rows select set smallint start
    table tablesample then time timestamp to transform trigger true truncate unbounded union uniquejoin update user using
    utc_timestamp utc_tmestamp values varchar views when where window with"""
)
RESERVED_DML = _words(
    """alter and as between by case cast constraint create cross cube current_date current_path current_time current_timestamp
    current_user deallocate delete describe distinct drop else end escape except execute exists extract false first for from full
    group grouping having in inner insert intersect into is join json_array json_exists json_object json_query json_table
    json_value last left like listagg localtime localtimestamp natural normalize not null on or order outer prepare recursive
    right rollup select skip table then trim true uescape union unnest using values when where with"""
)


# --- Identifiers and literals ------------------------------------------------------------------


def validate_identifier(name: Any, what: str = "identifier") -> str:
    if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name):
        shown = repr(name)[:80]
        raise InvalidIdentifier(f"{what} {shown} must be 1-{MAX_IDENTIFIER} characters of lower-case a-z, 0-9 and _")
    return name


def is_reserved(name: str) -> bool:
    return name in RESERVED_DDL or name in RESERVED_DML


def ddl_name(name: str) -> str:
    return f"`{validate_identifier(name)}`"


def dml_name(name: str) -> str:
    return f'"{validate_identifier(name)}"'


def ddl_table(database: str, table: str) -> str:
    return f"{ddl_name(database)}.{ddl_name(table)}"


def dml_table(database: str, table: str) -> str:
    return f"{dml_name(database)}.{dml_name(table)}"


def sql_literal(value: str | int) -> str:
    """A literal usable in both DDL (Hive) and DML (Trino): integers as is; strings
    single-quoted, refusing `'`, `\\` and control characters rather than escaping them,
    because the two dialects escape differently."""
    if isinstance(value, bool):
        raise InvalidLiteral(f"{value!r} is not a partition value")
    if isinstance(value, int):
        return str(value)
    if not isinstance(value, str) or "'" in value or "\\" in value or _CONTROL.search(value):
        raise InvalidLiteral(f"value {value!r} may not contain quotes, backslashes or control characters")
    return f"'{value}'"


def validate_location(location: Any) -> str:
    """An `s3://bucket/prefix/` folder URI (ending with '/')."""
    if not isinstance(location, str) or not _S3_LOCATION.fullmatch(location) or "//" in location[5:] or "/../" in location:
        raise InvalidLiteral(f"location {location!r} must be an s3://bucket/prefix/ folder ending with '/'")
    return location


# --- The declared SELECT -----------------------------------------------------------------------


def _blank_code(sql: str) -> tuple[str, bool]:
    """`sql` with strings, quoted names and comments blanked to spaces (same length), and whether all were closed."""
    out = list(sql)
    index, length = 0, len(sql)

    def blank(start: int, stop: int) -> None:
        out[start:stop] = " " * (stop - start)

    while index < length:
        char = sql[index]
        if char in "'\"`":
            end = index + 1
            while True:
                end = sql.find(char, end)
                if end < 0:
                    return "".join(out), False
                if end + 1 < length and sql[end + 1] == char:  # a doubled quote is an escaped quote
                    end += 2
                    continue
                break
            blank(index, end + 1)
            index = end + 1
        elif sql.startswith("--", index):
            # Trino's lexer ends a line comment at '\r' as well as '\n' (SIMPLE_COMMENT: '--' ~[\r\n]*).
            ends = [found for found in (sql.find("\n", index), sql.find("\r", index)) if found >= 0]
            end = min(ends) if ends else length
            blank(index, end)
            index = end
        elif sql.startswith("/*", index):
            end = sql.find("*/", index + 2)
            if end < 0:
                return "".join(out), False
            blank(index, end + 2)
            index = end + 2
        else:
            index += 1
    return "".join(out), True


def validate_select(sql: Any) -> str:
    """The declared query, checked to be one SELECT or WITH statement; one trailing `;` is dropped.

    A `;` anywhere else, an unterminated string or comment, or a statement of
    another kind raises `InvalidSelect`.
    """
    if not isinstance(sql, str) or not sql.strip():
        raise InvalidSelect("the query must be a non-empty SELECT statement")
    code, closed = _blank_code(sql)
    if not closed:
        raise InvalidSelect("the query has an unterminated string, quoted name or comment")
    last = len(code.rstrip()) - 1
    if code[last] == ";":
        sql, code = sql[:last] + sql[last + 1 :], code[:last] + code[last + 1 :]
    if ";" in code:
        raise InvalidSelect("the query must be a single statement (no ';' before its end)")
    first = re.match(r"[\s(]*([A-Za-z]+)", code)
    if not first or first.group(1).lower() not in ("select", "with"):
        raise InvalidSelect("the query must start with SELECT or WITH")
    read_only_query(parse_statement(sql, InvalidSelect), InvalidSelect)
    return sql.strip()


# Statements and clauses that write, change or manage anything; a read-only query holds none of them.
_NOT_READ_ONLY = (
    exp.DML,
    exp.DDL,
    exp.Drop,
    exp.Alter,
    exp.Command,
    exp.TruncateTable,
    exp.Use,
    exp.Transaction,
    exp.Commit,
    exp.Rollback,
    exp.LoadData,
    exp.Grant,
)


def parse_statement(sql: str, error: type[Exception]) -> exp.Expr:
    """The one statement `sql` holds, as sqlglot's Athena dialect (Trino for DML) parses it; `error` otherwise."""
    try:
        statements = [statement for statement in sqlglot.parse(sql, read="athena") if statement is not None]
    except SqlglotError as failure:
        raise error(f"the statement does not parse as Athena SQL: {str(failure).splitlines()[0]}") from None
    if len(statements) != 1:
        raise error(f"the text must hold exactly one statement, found {len(statements)}")
    return statements[0]


def read_only_query(tree: Any, error: type[Exception]) -> exp.Query:
    """`tree` as a read-only query (SELECT, WITH ... SELECT, set operations); `error` for anything else inside."""
    if not isinstance(tree, exp.Query):
        raise error(f"the query must be a SELECT (or WITH ... SELECT), not {type(tree).__name__.upper()}")
    found = next((node for node in tree.walk() if isinstance(node, _NOT_READ_ONLY)), None)
    if found is not None:
        raise error(f"the query must only read: it holds {type(found).__name__.upper()}")
    return tree


def _wrapped(select: str) -> str:
    """The SELECT as a subquery; the newline ends any trailing `--` comment."""
    return f"(\n{select}\n)"


# --- CTAS --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CtasOptions:
    format: str = "PARQUET"
    write_compression: str | None = "SNAPPY"
    external_location: str | None = None
    partitioned_by: tuple[str, ...] = ()
    bucketed_by: tuple[str, ...] = ()
    bucket_count: int | None = None

    def validated(self) -> CtasOptions:
        if self.format.upper() not in FORMATS:
            raise InvalidOption(f"format {self.format!r} is not one of {sorted(FORMATS)}")
        if self.write_compression is not None and self.write_compression.upper() not in COMPRESSIONS:
            raise InvalidOption(f"write_compression {self.write_compression!r} is not one of {sorted(COMPRESSIONS)}")
        if self.external_location is not None:
            validate_location(self.external_location)
        for name in (*self.partitioned_by, *self.bucketed_by):
            validate_identifier(name, "partition/bucket column")
        for what, names in (("partitioned_by", self.partitioned_by), ("bucketed_by", self.bucketed_by)):
            repeated = sorted({name for name in names if names.count(name) > 1})
            if repeated:
                raise InvalidOption(f"{what} names {repeated} more than once")
        if bool(self.bucketed_by) != (self.bucket_count is not None):
            raise InvalidOption("bucketed_by and bucket_count go together")
        if self.bucket_count is not None and not 1 <= self.bucket_count <= MAX_PARTITIONS_PER_QUERY:
            raise InvalidOption(f"bucket_count must be between 1 and {MAX_PARTITIONS_PER_QUERY}")
        return self

    def with_clause(self) -> str:
        self.validated()
        properties = [f"format = '{self.format.upper()}'"]
        if self.write_compression:
            properties.append(f"write_compression = '{self.write_compression.upper()}'")
        if self.external_location:
            properties.append(f"external_location = {sql_literal(self.external_location)}")
        if self.partitioned_by:
            properties.append("partitioned_by = ARRAY[" + ", ".join(sql_literal(c) for c in self.partitioned_by) + "]")
        if self.bucketed_by:
            properties.append("bucketed_by = ARRAY[" + ", ".join(sql_literal(c) for c in self.bucketed_by) + "]")
            properties.append(f"bucket_count = {self.bucket_count}")
        return "WITH (" + ", ".join(properties) + ")"


def build_ctas(database: str, table: str, select: str, options: CtasOptions, where: str | None = None) -> str:
    """`CREATE TABLE "db"."t" WITH (...) AS SELECT * FROM (<select>)`; partition columns must come last in the SELECT."""
    body = f"SELECT * FROM {_wrapped(validate_select(select))}"
    if where:
        body += f" WHERE {where}"
    return f"CREATE TABLE {dml_table(database, table)}\n{options.with_clause()}\nAS {body}"


def build_insert(database: str, table: str, select: str, where: str | None = None) -> str:
    body = f"SELECT * FROM {_wrapped(validate_select(select))}"
    if where:
        body += f" WHERE {where}"
    return f"INSERT INTO {dml_table(database, table)}\n{body}"


def build_drop_table(database: str, table: str) -> str:
    return f"DROP TABLE IF EXISTS {ddl_table(database, table)}"


PartitionValues = tuple[str | int, ...]


def partition_filter(columns: Sequence[str], values: Sequence[PartitionValues]) -> str:
    """`(CAST("dt" AS varchar) = '2024-05-01' AND CAST("hour" AS varchar) = '7') OR (...)`, one term per partition.

    The values are the text GetQueryResults returned for the partition columns, whatever their type (date,
    timestamp, integer, ...): comparing the columns' text with it is right for every type, where a quoted
    literal against a date column is a type error in Athena.
    """
    names = [dml_name(c) for c in columns]
    terms = []
    for row in values:
        if len(row) != len(names):
            raise InvalidOption(f"partition value {row!r} does not have one value per column {list(columns)}")
        pairs = zip(names, row, strict=True)
        terms.append("(" + " AND ".join(f"CAST({n} AS varchar) = {sql_literal(str(v))}" for n, v in pairs) + ")")
    if not terms:
        raise InvalidOption("no partition values to write")
    return " OR ".join(terms)


def build_distinct_partitions(select: str, partitioned_by: Sequence[str]) -> str:
    """The query that lists the partition values a CTAS would write (to split it into batches of ≤ 100)."""
    names = ", ".join(dml_name(c) for c in partitioned_by)
    return f"SELECT DISTINCT {names} FROM {_wrapped(validate_select(select))} ORDER BY {names}"


def partition_batches(values: Sequence[PartitionValues], limit: int = MAX_PARTITIONS_PER_QUERY) -> list[list[PartitionValues]]:
    unique = list(dict.fromkeys(tuple(v) for v in values))
    return [unique[i : i + limit] for i in range(0, len(unique), limit)]


def build_partitioned_ctas(
    database: str, table: str, select: str, options: CtasOptions, partition_values: Sequence[PartitionValues]
) -> list[str]:
    """One CTAS for the first ≤ 100 partitions, then INSERT INTO batches of ≤ 100 each.

    `partition_values` are the rows of `build_distinct_partitions`. Bucketing
    multiplies writers, so a bucketed table gets 100 // bucket_count partitions per query.
    """
    options.validated()
    if not options.partitioned_by:
        raise InvalidOption("partition batches need partitioned_by")
    per_query = MAX_PARTITIONS_PER_QUERY // (options.bucket_count or 1)
    batches = partition_batches(partition_values, per_query)
    if not batches:
        return [build_ctas(database, table, select, options)]
    statements = [build_ctas(database, table, select, options, partition_filter(options.partitioned_by, batches[0]))]
    statements += [build_insert(database, table, select, partition_filter(options.partitioned_by, batch)) for batch in batches[1:]]
    return statements


# --- APAS statements ----------------------------------------------------------------------------


def build_schema_probe(database: str, probe_table: str, select: str, location: str) -> str:
    """The APAS dry-run: an empty CTAS whose Glue columns are the SELECT's output schema."""
    options = CtasOptions(external_location=validate_location(location))
    return build_ctas(database, probe_table, select, options, where="false")


def partition_spec(columns: Sequence[str], values: PartitionValues) -> str:
    if len(columns) != len(values) or not columns:
        raise InvalidOption(f"partition {values!r} needs one value per partition column {list(columns)}")
    return "PARTITION (" + ", ".join(f"{ddl_name(c)} = {sql_literal(v)}" for c, v in zip(columns, values, strict=True)) + ")"


def validate_path_value(value: str | int) -> str | int:
    """A partition value whose folder `<column>=<value>/` is exactly the folder Athena writes for it.

    Athena percent-encodes some characters in partition folder names (PATH_ESCAPED: control characters,
    `"#%'*/:=?\\`, DEL, `{[]^`), so a job that deleted or registered the raw name would miss the data written
    (an overwrite keeping the old rows, a partition registered at an empty folder). Such a value, and "", "." or
    "..", raises `UnsafePartitionValue` naming the character; spaces and non-ASCII letters are written as is.
    """
    text = str(value)
    if text in ("", ".", ".."):
        raise UnsafePartitionValue(f"partition value {value!r} cannot name a partition folder")
    escaped = next((char for char in text if char in PATH_ESCAPED), None)
    if escaped is not None:
        raise UnsafePartitionValue(
            f"partition value {value!r} holds {escaped!r} (U+{ord(escaped):04X}), which Athena escapes in partition folder "
            f"names (as %{ord(escaped):02X}): the data would land in another folder than the one the job deletes and registers"
        )
    return value


def partition_location(table_location: str, columns: Sequence[str], values: PartitionValues) -> str:
    """`<table_location><column>=<value>/...`: the folder Athena writes the partition into (values checked by
    `validate_path_value`, so no character needs the engine's escaping)."""
    validate_location(table_location)
    for value in values:
        sql_literal(validate_path_value(value))
    path = table_location + "".join(f"{validate_identifier(c)}={v}/" for c, v in zip(columns, values, strict=True))
    return validate_location(path)


def build_add_partition(database: str, table: str, partitions: Sequence[tuple[PartitionValues, str]], columns: Sequence[str]) -> str:
    """`ALTER TABLE ... ADD IF NOT EXISTS PARTITION (...) LOCATION '...'` for each (values, location)."""
    if not partitions:
        raise InvalidOption("no partitions to add")
    specs = [f"  {partition_spec(columns, values)} LOCATION {sql_literal(validate_location(loc))}" for values, loc in partitions]
    return f"ALTER TABLE {ddl_table(database, table)} ADD IF NOT EXISTS\n" + "\n".join(specs)


def build_drop_partition(database: str, table: str, columns: Sequence[str], values: PartitionValues) -> str:
    return f"ALTER TABLE {ddl_table(database, table)} DROP IF EXISTS {partition_spec(columns, values)}"


def build_insert_partition(database: str, table: str, select: str, columns: Sequence[str], values: PartitionValues) -> str:
    """INSERT INTO the target: the SELECT's columns, then the partition values as the partition columns."""
    if len(columns) != len(values):
        raise InvalidOption(f"partition {values!r} needs one value per partition column {list(columns)}")
    constants = ", ".join(f"{sql_literal(v)} AS {dml_name(c)}" for c, v in zip(columns, values, strict=True))
    return f"INSERT INTO {dml_table(database, table)}\nSELECT *, {constants} FROM {_wrapped(validate_select(select))}"
