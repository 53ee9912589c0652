"""Run variables in job documents: the run's time in the jobs' time zone, and what a landing event says landed.

A reference is `{name}`, `{name +|- <n><unit>}` and/or `{name:<format>}` inside any string of a job document
(its SQL, locations, partition values, table name...). Time variables:

- `run_time`: `YYYY-MM-DD HH:MM:SS` (a Trino timestamp literal), `run_date`: `YYYY-MM-DD`, in the time zone;
- `run_time_utc`: ISO 8601 UTC with `Z`.

Offsets take d (days), w (weeks) or h (hours): days and weeks move the wall-clock date in the time zone (a daily
job at 05:00 stays at 05:00 across a DST change), hours move the instant. The format is strftime with
`%Y %m %d %H %M %S %j %y %V %G %u` and the characters `-_/:. T`, e.g. `{run_date - 1d:%Y%m%d}`.

Landing variables (a run started by a `Lake Partition Landed` event): `landed.database`, `landed.table`,
`landed.location`, `landed.pipeline`, `landed.rows`, `landed.snapshot_time` and `landed.partition.<column>`.

Only a `{` followed by a lower-case name is a reference, so JSON or regex text in SQL (`'{"a": 1}'`, `'\\d{3}'`)
is left alone; `{{run_date}}` writes `{run_date}` literally. An unknown name, a bad offset or format, or a landing
variable in a run that no landing started fails with `InvalidJob` before any job runs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

from snaplake.athena.errors import InvalidJob
from snaplake.core.times import iso_utc

_REFERENCE = re.compile(
    r"(?P<open>\{\{?)\s*(?P<name>[a-z][a-z0-9_]*(?:\.[A-Za-z0-9_]+)*)\s*"
    r"(?:(?P<sign>[+-])\s*(?P<amount>\d{1,4})\s*(?P<unit>[a-z]+))?\s*"
    r"(?::(?P<format>[^{}]*))?(?P<close>\}\}?)"
)
_FORMAT = re.compile(r"(?:%[YmdHMSjyVGu]|[-_/:. T])*")
_UNITS = {"d": "days", "w": "weeks", "h": "hours"}
TIME_VARIABLES = ("run_time", "run_date", "run_time_utc")
_LANDED_FIELDS = ("database", "table", "location", "pipeline", "rows", "snapshot_time")


@dataclass(frozen=True)
class RunVariables:
    """What a run's references resolve to: its time (aware, any zone) in `zone`, and the landing that started it."""

    run_time: datetime
    zone: tzinfo
    landed: Mapping[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        """The values of the plain references, for the run's result and logs."""
        values: dict[str, Any] = {name: self._time(name, None, None) for name in TIME_VARIABLES}
        if self.landed is not None:
            values.update({f"landed.{key}": self.landed[key] for key in _LANDED_FIELDS if self.landed.get(key) is not None})
            values.update({f"landed.partition.{k}": v for k, v in self.landed.get("partition", {}).items()})
        return values

    def _time(self, name: str, offset: timedelta | None, fmt: str | None, wall_clock: bool = True) -> str:
        local = self.run_time.astimezone(self.zone)
        if offset is not None and wall_clock:  # days and weeks: the same wall-clock time on another date
            local = (local.replace(tzinfo=None) + offset).replace(tzinfo=self.zone)
        elif offset is not None:
            local = (self.run_time + offset).astimezone(self.zone)
        if fmt is not None:
            return local.strftime(fmt)
        if name == "run_date":
            return local.strftime("%Y-%m-%d")
        if name == "run_time":
            return local.strftime("%Y-%m-%d %H:%M:%S")
        return iso_utc(local)

    def _landed(self, name: str, where: str) -> str:
        if self.landed is None:
            raise InvalidJob(f"{where}: {{{name}}} names the landing that started the run, and no landing started this one")
        parts = name.split(".")[1:]
        if len(parts) == 2 and parts[0] == "partition":
            value = self.landed.get("partition", {}).get(parts[1])
        elif len(parts) == 1 and parts[0] in _LANDED_FIELDS:
            value = self.landed.get(parts[0])
        else:
            known = ", ".join(f"landed.{key}" for key in _LANDED_FIELDS)
            raise InvalidJob(f"{where}: unknown landing variable {{{name}}}; there are {known} and landed.partition.<column>")
        if value is None:
            raise InvalidJob(f"{where}: the landing that started this run has no {name}")
        return str(value)

    def resolve(self, match: re.Match[str], where: str) -> str:
        name, amount, unit, fmt = match["name"], match["amount"], match["unit"], match["format"]
        if (match["open"] == "{{") != (match["close"] == "}}"):
            raise InvalidJob(f"{where}: unbalanced braces in {match[0]!r}: write {{name}}, or {{{{name}}}} for the text {{name}}")
        if match["open"] == "{{":
            return match[0][1:-1]
        if name.startswith("landed."):
            if amount is not None or fmt is not None:
                raise InvalidJob(f"{where}: {match[0]!r}: offsets and formats apply to {', '.join(TIME_VARIABLES)} only")
            return self._landed(name, where)
        if name not in TIME_VARIABLES:
            raise InvalidJob(f"{where}: unknown variable {{{name}}}; the variables are {', '.join(TIME_VARIABLES)} and landed.*")
        offset = None
        if amount is not None:
            if unit not in _UNITS:
                raise InvalidJob(f"{where}: {match[0]!r}: the offset unit must be d, w or h, got {unit!r}")
            offset = timedelta(**{_UNITS[unit]: int(amount) * (-1 if match["sign"] == "-" else 1)})
        if fmt is not None:
            fmt = fmt.strip()
            if not fmt or not _FORMAT.fullmatch(fmt):
                raise InvalidJob(f"{where}: {match[0]!r}: a format takes %Y %m %d %H %M %S %j %y %V %G %u and -_/:. T only")
        return self._time(name, offset, fmt, wall_clock=unit != "h")

    def substitute(self, text: str, where: str) -> str:
        return _REFERENCE.sub(lambda match: self.resolve(match, where), text)

    def apply(self, document: Any, where: str) -> Any:
        """Every string of a job document (keys excepted) with its references replaced."""
        if isinstance(document, str):
            return self.substitute(document, where)
        if isinstance(document, list):
            return [self.apply(item, where) for item in document]
        if isinstance(document, dict):
            return {key: self.apply(value, f"{where}.{key}") for key, value in document.items()}
        return document
