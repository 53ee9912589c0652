"""The metrics the handlers emitted, read back from their CloudWatch embedded metric format (EMF) lines.

In Lambda, stdout goes to CloudWatch Logs, which turns each EMF document into metrics. Locally the handlers
run in this process, so their EMF lines land on this process's stdout: `capture_metrics()` takes them off it
(everything else passes through) and `parse_metrics` reads them, for the demo's summary and for tests.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TextIO


@dataclass(frozen=True)
class Emitted:
    """One EMF document: its namespace, dimensions (name -> value) and metric values (name -> value)."""

    namespace: str
    dimensions: dict[str, str]
    values: dict[str, float]
    units: dict[str, str]

    def matches(self, **dimensions: str) -> bool:
        return all(self.dimensions.get(name) == value for name, value in dimensions.items())


def parse_metrics(lines: Iterable[str]) -> list[Emitted]:
    """The EMF documents among these lines (other lines are skipped)."""
    found = []
    for line in lines:
        if not line.startswith('{"_aws"'):
            continue
        document = json.loads(line)
        [directive] = document["_aws"]["CloudWatchMetrics"]
        [names] = directive["Dimensions"]
        units = {metric["Name"]: metric["Unit"] for metric in directive["Metrics"]}
        values = {name: _single(document[name]) for name in units}
        found.append(Emitted(directive["Namespace"], {name: document[name] for name in names}, values, units))
    return found


def _single(value: Any) -> float:
    """Powertools writes each value as a one-element list."""
    return float(value[0] if isinstance(value, list) else value)


def total(emitted: Iterable[Emitted], metric: str, **dimensions: str) -> float:
    """The Sum statistic of `metric` over the documents with these dimension values."""
    return sum(e.values[metric] for e in emitted if metric in e.values and e.matches(**dimensions))


class _EmfFilter(io.TextIOBase):
    """A stdout that keeps EMF lines and passes every other line on; each thread's partial line is its own."""

    def __init__(self, passthrough: TextIO) -> None:
        super().__init__()
        self.passthrough = passthrough
        self.kept: list[str] = []
        self._partial = threading.local()
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        pending = getattr(self._partial, "text", "") + text
        *lines, self._partial.text = pending.split("\n")
        with self._lock:
            for line in lines:
                if line.startswith('{"_aws"'):
                    self.kept.append(line)
                else:
                    self.passthrough.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        self.passthrough.flush()


@contextlib.contextmanager
def capture_metrics() -> Iterator[list[Emitted]]:
    """Within the block, EMF lines printed to stdout are collected instead of shown; the list fills on exit."""
    captured: list[Emitted] = []
    sink = _EmfFilter(sys.stdout)
    with contextlib.redirect_stdout(sink):
        try:
            yield captured
        finally:
            captured.extend(parse_metrics(sink.kept))


def landed_summary(emitted: Iterable[Emitted]) -> list[str]:
    """One line per pipeline, source and table that landed something: rows, files and bytes in all."""
    totals: dict[tuple[str, str, str], dict[str, float]] = {}
    for e in emitted:
        if "table" not in e.dimensions or not ({"FilesLanded", "RowsLanded"} & set(e.values)):
            continue
        key = (e.dimensions["pipeline"], e.dimensions["source"], e.dimensions["table"])
        into = totals.setdefault(key, {})
        for name in ("RowsLanded", "FilesLanded", "BytesLanded"):
            if name in e.values:
                into[name] = into.get(name, 0) + e.values[name]
    lines = []
    for (pipeline, source, table), values in sorted(totals.items()):
        rows = f"{values['RowsLanded']:.0f} rows, " if "RowsLanded" in values else ""
        files, size = values.get("FilesLanded", 0), values.get("BytesLanded", 0)
        lines.append(f"{pipeline:<16} {source:<22} {table:<34} {rows}{files:.0f} files, {size:.0f} bytes")
    return lines
