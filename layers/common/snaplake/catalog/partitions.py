"""Landed partitions as Glue sees them: a table location plus Hive `key=value` segments, and the partition projection
properties a table can carry instead of registered partitions."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from snaplake.catalog.errors import UnsupportedPartitionLayout

# Partition value formats of the lake layout and their projection settings.
SNAPSHOT_TIME_FORMAT = "yyyyMMdd'T'HHmmss'Z'"  # 20240502T120555Z, no ':'
SNAPSHOT_TIME_VALUE = re.compile(r"^\d{8}T\d{6}Z$")  # a value of that format (canonical: such strings sort as times)
_KEY_VALUE = re.compile(r"^([a-z0-9_]+)=([^=/]+)$")


@dataclass(frozen=True)
class LandedPartition:
    """One landed partition: the table's location and its Hive partition keys/values."""

    bucket: str
    table_prefix: str  # "lake/rds/world/users/" (ends with "/")
    keys: tuple[str, ...]  # ("snapshot_time",)
    values: tuple[str, ...]  # ("20240502T120555Z",)

    @property
    def table_location(self) -> str:
        return f"s3://{self.bucket}/{self.table_prefix}"

    @property
    def prefix(self) -> str:
        return self.table_prefix + "".join(f"{k}={v}/" for k, v in zip(self.keys, self.values, strict=True))

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    @classmethod
    def parse(cls, bucket: str, partition_prefix: str) -> LandedPartition:
        """Split `<table prefix>/<k1>=<v1>/<k2>=<v2>/` into the table location and partition keys."""
        segments = [s for s in partition_prefix.strip("/").split("/") if s]
        first = next((i for i, s in enumerate(segments) if _KEY_VALUE.match(s)), None)
        if first is None or first == 0:
            raise UnsupportedPartitionLayout(
                f"partition prefix {partition_prefix!r} must end in Hive key=value segments after the table folder"
            )
        pairs = [_KEY_VALUE.match(s) for s in segments[first:]]
        if not all(pairs):
            raise UnsupportedPartitionLayout(f"partition prefix {partition_prefix!r}: only key=value segments may follow the table folder")
        keys = tuple(m.group(1) for m in pairs if m)
        if len(set(keys)) != len(keys):
            raise UnsupportedPartitionLayout(f"partition prefix {partition_prefix!r} repeats a partition key")
        return cls(bucket, "/".join(segments[:first]) + "/", keys, tuple(m.group(2) for m in pairs if m))


@dataclass(frozen=True)
class ProjectionRule:
    """How a partition key is projected: `enum` (the values landed so far), `date` or `integer` ranges."""

    type: str  # enum | date | integer
    format: str | None = None
    interval: str | None = None
    interval_unit: str | None = None
    range_end: str = "NOW"
    digits: str | None = None


# Keys the lake layouts write. Second-precise times are an enum of the values landed so far, each added once its
# partition is complete: a date projection at one-second intervals would have an unfiltered query enumerate 86,400
# candidate folders per day since the first snapshot. Days and hours are few enough to project as ranges.
DEFAULT_PROJECTION_RULES: Mapping[str, ProjectionRule] = {
    "snapshot_time": ProjectionRule("enum"),
    "export_time": ProjectionRule("enum"),
    "partition_datetime": ProjectionRule("enum"),
    "snapshot_date": ProjectionRule("date", "yyyy-MM-dd", "1", "DAYS"),
    "dt": ProjectionRule("date", "yyyy-MM-dd", "1", "DAYS"),
    "hour": ProjectionRule("integer", range_end="23", digits="2"),
}
# Glue keeps a table parameter value up to 512,000 bytes (ParametersMapValue in its API model): ~30,000 16-character values.
MAX_ENUM_CHARACTERS = 512_000


def projection_parameters(
    partition: LandedPartition, existing: Mapping[str, str] | None = None, rules: Mapping[str, ProjectionRule] = DEFAULT_PROJECTION_RULES
) -> dict[str, str]:
    """Table properties projecting every partition key: an enum gains the landed value; a date range starts at the
    earliest value seen. A key a table already projects as a date range (tables made before enums) keeps its range."""
    existing = existing or {}
    parameters = {"projection.enabled": "true"}
    for key, value in zip(partition.keys, partition.values, strict=True):
        rule = rules.get(key)
        if rule is None:
            raise UnsupportedPartitionLayout(f"no partition projection rule for key {key!r}; use partition registration instead")
        prefix = f"projection.{key}"
        if rule.type == "enum" and existing.get(f"{prefix}.type") == "date":
            parameters.update({name: setting for name, setting in existing.items() if name.startswith(prefix + ".")})
            continue
        parameters[f"{prefix}.type"] = rule.type
        if rule.type == "enum":
            known = existing.get(f"{prefix}.values", "") if existing.get(f"{prefix}.type") == "enum" else ""
            values = ",".join(sorted({v for v in known.split(",") if v} | {value}))
            if len(values) > MAX_ENUM_CHARACTERS:
                raise UnsupportedPartitionLayout(
                    f"the projected values of key {key!r} pass Glue's {MAX_ENUM_CHARACTERS:,}-character limit; "
                    "use CatalogMode=partitions (which retention can keep short)"
                )
            parameters[f"{prefix}.values"] = values
        elif rule.type == "date":
            assert rule.format is not None
            previous = existing.get(f"{prefix}.range", "").split(",")[0]
            start = min(previous, value) if previous and existing.get(f"{prefix}.format") == rule.format else value
            parameters[f"{prefix}.format"] = rule.format
            parameters[f"{prefix}.range"] = f"{start},{rule.range_end}"
            if rule.interval:
                parameters[f"{prefix}.interval"] = rule.interval
            if rule.interval_unit:
                parameters[f"{prefix}.interval.unit"] = rule.interval_unit
        elif rule.type == "integer":
            parameters[f"{prefix}.range"] = f"0,{rule.range_end}"
            if rule.digits:
                parameters[f"{prefix}.digits"] = rule.digits
        else:
            raise UnsupportedPartitionLayout(f"projection type {rule.type!r} for key {key!r} is not supported")
    template = partition.table_location + "".join(f"{key}=${{{key}}}/" for key in partition.keys)
    parameters["storage.location.template"] = template
    return parameters
