"""Athena (Trino) SQL translated to DuckDB SQL with sqlglot, for the emulated Athena to run.

Besides sqlglot's dialect translation (read "athena", write "duckdb"), translate() makes DuckDB answer as Athena
would, or fail clearly where it would not:

- `/` divides integers as integers (DuckDB's integer_division), so 5 / 2 is 2 as in Athena;
- tables get the query's database (QueryExecutionContext) when they name none; `awsdatacatalog.` is dropped;
- result columns without a name are `_col0`, `_col1`, ... as in Athena; names are lower case;
- current_timestamp, current_date, now(), localtimestamp... are the query's start time on the emulator's clock;
- with the Glue column types (sqlglot's qualify and annotate_types), where DuckDB and Athena disagree:
  a comparison of text with a number, date, timestamp or boolean fails with TYPE_MISMATCH (DuckDB casts
  silently); a decimal division and avg() of a decimal fail with NOT_SUPPORTED (Athena keeps decimal(p,s),
  DuckDB computes a double); CAST of a double to an integer rounds half away from zero as Athena does; a date
  plus days, weeks, months or years stays a date (DuckDB makes it a timestamp); a timestamp CAST to varchar keeps
  its milliseconds, a double CAST to varchar fails with NOT_SUPPORTED; typeof() fails with NOT_SUPPORTED;
- a function sqlglot does not know for Athena (so cannot translate), or one it cannot write for DuckDB, fails
  with NOT_SUPPORTED rather than running a DuckDB function that merely has the same name.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from snaplake_local.emulator.athena_types import AthenaQueryError

_TEXT = {"VARCHAR", "CHAR", "TEXT", "NVARCHAR", "NCHAR", "NAME"}
_NUMBERS = {"TINYINT", "SMALLINT", "INT", "BIGINT", "DECIMAL", "DOUBLE", "FLOAT", "UTINYINT", "USMALLINT", "UINT", "UBIGINT"}
_INTEGERS = {"TINYINT", "SMALLINT", "INT", "BIGINT"}
_FLOATS = {"DOUBLE", "FLOAT"}
_DATE_UNITS = {"DAY", "WEEK", "MONTH", "QUARTER", "YEAR"}
_OPERATORS = {"EQ": "=", "NEQ": "<>", "GT": ">", "GTE": ">=", "LT": "<", "LTE": "<=", "NullSafeEQ": "IS NOT DISTINCT FROM"}
_OPERATORS |= {"NullSafeNEQ": "IS DISTINCT FROM", "In": "IN", "Between": "BETWEEN"}
_TIMES = {"DATE", "TIMESTAMP", "TIMESTAMPTZ", "TIMESTAMPLTZ", "DATETIME", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS"}


@dataclass
class Translation:
    sql: str  # DuckDB SQL
    tables: list[tuple[str, str]]  # (database, table) of every catalog table the query reads


def referenced_tables(tree: Any, database: str | None) -> list[tuple[str, str]]:
    """(database, table) of each catalog table the query names (CTEs excluded); sets the default database."""
    from sqlglot import exp

    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    found: list[tuple[str, str]] = []
    for table in tree.find_all(exp.Table):
        if not table.name or (not table.db and table.name in ctes):
            continue
        catalog = table.catalog
        if catalog and catalog.lower() != "awsdatacatalog":
            raise AthenaQueryError(f"NOT_SUPPORTED: the emulated Athena knows only the awsdatacatalog catalog, not {catalog!r}")
        if catalog:
            table.set("catalog", None)
        if not table.db:
            if not database:
                raise AthenaQueryError(f"SYNTAX_ERROR: Schema must be specified when session schema is not set (table {table.name})")
            table.set("db", exp.to_identifier(database))
        entry = (table.db.lower(), table.name.lower())
        if entry not in found:
            found.append(entry)
    return found


def static_equalities(tree: Any) -> dict[str, frozenset[str]]:
    """The values each column is compared with by `column = <literal>` or `column IN (<literals>)` in the query's
    WHERE clauses (column names lower-cased): what Athena injects into an `injected` partition projection."""
    from sqlglot import exp

    found: dict[str, set[str]] = {}
    for where in tree.find_all(exp.Where):
        for condition in where.find_all(exp.EQ, exp.In):
            if isinstance(condition, exp.EQ):
                sides = [(condition.this, [condition.expression]), (condition.expression, [condition.this])]
            else:
                sides = [(condition.this, list(condition.expressions))]
            for column, values in sides:
                if isinstance(column, exp.Column) and values and all(isinstance(v, exp.Literal) for v in values):
                    found.setdefault(column.name.lower(), set()).update(str(v.this) for v in values)
    return {name: frozenset(values) for name, values in found.items()}


def translate(tree: Any, database: str | None, schema: dict[str, dict[str, dict[str, str]]], now: datetime) -> Translation:
    """`tree` (an Athena query parsed by sqlglot) as DuckDB SQL; `schema` holds the Glue columns of the tables it reads."""
    from sqlglot import exp
    from sqlglot.errors import ErrorLevel

    tree = tree.copy()
    unknown = sorted({node.name.lower() for node in tree.find_all(exp.Anonymous)})
    if unknown:
        raise AthenaQueryError(
            f"NOT_SUPPORTED: function {unknown[0]} has no DuckDB translation the emulated Athena trusts "
            "(see docs/local.md, What is emulated); rewrite it with functions both engines share"
        )
    tables = referenced_tables(tree, database)
    _name_columns(tree)
    _pin_clock(tree, now)
    typed = _typed(tree, database, schema)
    if typed is not None:
        _check_types(typed)
        tree = typed
    for division in tree.find_all(exp.Div):
        division.set("typed", False)  # DuckDB runs with integer_division: `/` of integers truncates, as in Athena
    try:
        sql = tree.sql(dialect="duckdb", identify=True, unsupported_level=ErrorLevel.RAISE)
    except Exception as error:  # sqlglot's UnsupportedError
        raise AthenaQueryError(f"NOT_SUPPORTED: the emulator cannot translate this query for DuckDB: {error}") from None
    return Translation(sql, tables)


def _outer_select(tree: Any) -> Any:
    from sqlglot import exp

    node = tree
    while not isinstance(node, exp.Select):
        node = node.this if isinstance(node, exp.SetOperation | exp.Subquery) else node.find(exp.Select)
        if node is None:
            raise AthenaQueryError("SYNTAX_ERROR: the emulator found no SELECT in this query")
    return node


def _name_columns(tree: Any) -> None:
    """Athena names an output column without an alias `_col<position>`."""
    from sqlglot import exp

    select = _outer_select(tree)
    for position, projection in enumerate(list(select.expressions)):
        if not isinstance(projection, exp.Alias | exp.Column | exp.Star | exp.Dot):
            projection.replace(exp.alias_(projection.copy(), f"_col{position}"))


def _pin_clock(tree: Any, now: datetime) -> None:
    """The current time functions return the query's start on the emulator's clock (UTC session)."""
    from sqlglot import exp

    moment = now.astimezone(UTC).replace(tzinfo=None)
    text = moment.isoformat(sep=" ", timespec="milliseconds")
    replacements = {
        exp.CurrentTimestamp: ("TIMESTAMPTZ", text + "+00:00"),
        exp.CurrentDate: ("DATE", moment.date().isoformat()),
        exp.CurrentTime: ("TIMETZ", moment.time().isoformat(timespec="milliseconds") + "+00:00"),
        exp.Localtimestamp: ("TIMESTAMP", text),
        exp.Localtime: ("TIME", moment.time().isoformat(timespec="milliseconds")),
    }
    for kind, (to, value) in replacements.items():
        for node in list(tree.find_all(kind)):
            node.replace(exp.cast(exp.Literal.string(value), to))


def _typed(tree: Any, database: str | None, schema: dict[str, dict[str, dict[str, str]]]) -> Any | None:
    """The query qualified and annotated with the Glue columns' types, or None where sqlglot cannot (DuckDB still
    runs it; only the type checks are skipped)."""
    from sqlglot import exp
    from sqlglot.optimizer.annotate_types import annotate_types
    from sqlglot.optimizer.qualify import qualify
    from sqlglot.schema import MappingSchema

    try:
        mapping = MappingSchema(dict[str, object](schema), dialect="hive")
        qualified = qualify(tree.copy(), schema=mapping, db=database, dialect="athena", validate_qualify_columns=False)
        typed = annotate_types(qualified, schema=mapping, dialect="athena")
    except Exception:  # sqlglot's OptimizeError and the like: translate the query as written
        return None
    for alias in list(typed.find_all(exp.Alias)):
        # A column qualify could not resolve keeps its own name as alias; DuckDB would then report it as a lateral
        # alias referenced before it is defined instead of as an unknown column.
        if isinstance(alias.this, exp.Column) and not alias.this.table and alias.this.name == alias.alias:
            alias.replace(alias.this)
    return typed


def _family(node: Any) -> str | None:
    from sqlglot import exp

    while isinstance(node, exp.Paren):
        node = node.this
    if not isinstance(node, exp.Column | exp.Literal | exp.Cast | exp.TryCast) or node.type is None:
        return None
    name = node.type.this.name
    if isinstance(node, exp.Literal) and not node.is_string:
        return "number"
    for family, names in (("varchar", _TEXT), ("number", _NUMBERS), ("date/time", _TIMES), ("boolean", {"BOOLEAN"})):
        if name in names:
            return family
    return None


def _type_name(node: Any) -> str:
    return str(node.type.sql(dialect="athena")).lower() if node.type is not None else "unknown"


def _check_types(tree: Any) -> None:
    from sqlglot import exp

    for node in list(tree.walk()):
        if isinstance(node, exp.EQ | exp.NEQ | exp.GT | exp.GTE | exp.LT | exp.LTE | exp.NullSafeEQ | exp.NullSafeNEQ):
            pairs = [(node.this, node.expression)]
        elif isinstance(node, exp.In):
            pairs = [(node.this, item) for item in node.expressions]
        elif isinstance(node, exp.Between):
            pairs = [(node.this, node.args["low"]), (node.this, node.args["high"])]
        else:
            pairs = []
        for left, right in pairs:
            families = (_family(left), _family(right))
            if None not in families and families[0] != families[1]:
                operator = _OPERATORS.get(type(node).__name__, type(node).__name__.upper())
                raise AthenaQueryError(
                    f"TYPE_MISMATCH: line 1:1: Cannot apply operator: {_type_name(left)} {operator} {_type_name(right)} "
                    f"({left.sql(dialect='athena')} vs {right.sql(dialect='athena')})"
                )
        if isinstance(node, exp.Div):
            kinds = {_decimal_kind(node.this), _decimal_kind(node.expression)}
            if "decimal" in kinds and "float" not in kinds:
                raise AthenaQueryError(
                    f"NOT_SUPPORTED: decimal division ({node.sql(dialect='athena')}): Athena keeps decimal(p,s) rounded half up, "
                    "DuckDB divides in floating point; CAST an operand to double (or the other to decimal and both to double)"
                )
        if isinstance(node, exp.Avg) and _decimal_kind(node.this) == "decimal":
            raise AthenaQueryError(
                f"NOT_SUPPORTED: {node.sql(dialect='athena')} of a decimal: Athena returns decimal(p,s) rounded half up, DuckDB a "
                "double; CAST the argument to double"
            )
        if isinstance(node, exp.Cast) and node.to.this.name in _INTEGERS and _decimal_kind(node.this) == "float":
            node.set("this", exp.Round(this=node.this.copy()))
        if isinstance(node, exp.Cast) and node.to.this.name in _TEXT:
            _cast_to_text(node)
        if isinstance(node, exp.Typeof):
            raise AthenaQueryError("NOT_SUPPORTED: typeof() would name DuckDB's types, not Athena's")
        if _date_plus_days(node):
            node.replace(exp.cast(node.copy(), "DATE"))


def _cast_to_text(node: Any) -> None:
    """CAST(... AS varchar) as Athena writes the text: timestamps to the millisecond (`2024-05-02 01:02:03.000`, DuckDB
    drops the fraction), doubles in Java's scientific form, which DuckDB does not write (NOT_SUPPORTED)."""
    from sqlglot import exp

    source = node.this.type.this.name if node.this.type is not None else ""
    if _decimal_kind(node.this) == "float":
        raise AthenaQueryError(
            f"NOT_SUPPORTED: {node.sql(dialect='athena')}: Athena writes a double as text in scientific form (2.5E0), DuckDB "
            "does not; format it explicitly (format('%.2f', x), CAST(CAST(x AS decimal(p,s)) AS varchar))"
        )
    if source in ("TIMESTAMP", "DATETIME", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS", "TIMESTAMPTZ", "TIMESTAMPLTZ"):
        zone = " UTC" if source in ("TIMESTAMPTZ", "TIMESTAMPLTZ") else ""
        node.replace(exp.Anonymous(this="strftime", expressions=[node.this.copy(), exp.Literal.string(f"%Y-%m-%d %H:%M:%S.%g{zone}")]))


def _date_plus_days(node: Any) -> bool:
    """A date plus (or minus) days, weeks, months or years: a date in Athena, a timestamp in DuckDB."""
    from sqlglot import exp

    def is_date(operand: Any) -> bool:
        return operand is not None and operand.type is not None and operand.type.this.name == "DATE"

    if isinstance(node, exp.DateAdd | exp.DateSub):
        return is_date(node.this) and str(node.args.get("unit") or "DAY").upper().strip("'") in _DATE_UNITS
    if isinstance(node, exp.Add | exp.Sub):
        interval = node.expression if isinstance(node.expression, exp.Interval) else None
        unit = interval.args.get("unit") if interval is not None else None
        return is_date(node.this) and unit is not None and unit.name.upper().rstrip("S") in _DATE_UNITS
    return False


def _decimal_kind(node: Any) -> str | None:
    """The kind of a division operand: "decimal", "float" or None (integer, unknown); a literal with a point is a decimal in Trino."""
    from sqlglot import exp

    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.Literal) and not node.is_string:
        text = str(node.this).lower()
        return "decimal" if "." in text and "e" not in text else ("float" if "e" in text else None)
    if node.type is None:
        return None
    name = node.type.this.name
    return "decimal" if name == "DECIMAL" else ("float" if name in _FLOATS else None)
