"""Run variables (snaplake.athena.variables): what each reference resolves to, and what is refused."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from snaplake.athena import InvalidJob, RunVariables

BERLIN = ZoneInfo("Europe/Berlin")


def at(when: str, zone: str = "UTC") -> RunVariables:
    return RunVariables(datetime.fromisoformat(when).replace(tzinfo=UTC), ZoneInfo(zone))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{run_date}", "2024-05-02"),
        ("{ run_date }", "2024-05-02"),
        ("{run_time}", "2024-05-02 05:00:00"),
        ("{run_time_utc}", "2024-05-02T05:00:00Z"),
        ("{run_date - 1d}", "2024-05-01"),
        ("{run_date+2w}", "2024-05-16"),
        ("{run_time - 6h}", "2024-05-01 23:00:00"),
        ("{run_date - 1d:%Y%m%d}", "20240501"),
        ("{run_date:%Y/%m}", "2024/05"),
        ("dt={run_date}/h={run_time:%H}", "dt=2024-05-02/h=05"),
        ("{{run_date}}", "{run_date}"),
        ("""SELECT '{"a": {"b": 1}}', regexp_like(x, '\\d{3}')""", """SELECT '{"a": {"b": 1}}', regexp_like(x, '\\d{3}')"""),
    ],
)
def test_references_resolve(text: str, expected: str) -> None:
    assert at("2024-05-02T05:00:00").substitute(text, "job") == expected


def test_days_keep_the_wall_clock_time_across_a_dst_change_and_hours_move_the_instant() -> None:
    # 2024-03-31 02:00 in Berlin: clocks go from 02:00 to 03:00. 2024-03-31T05:00Z is 07:00 CEST.
    variables = RunVariables(datetime(2024, 3, 31, 5, 0, tzinfo=UTC), BERLIN)

    assert variables.substitute("{run_time - 1d}", "job") == "2024-03-30 07:00:00"
    assert variables.substitute("{run_time - 24h}", "job") == "2024-03-30 06:00:00"


def test_the_date_is_the_time_zones() -> None:
    assert at("2024-05-02T23:30:00", "Europe/Berlin").substitute("{run_date}", "job") == "2024-05-03"
    assert at("2024-05-02T03:30:00", "America/New_York").substitute("{run_date}", "job") == "2024-05-01"


def test_landing_variables() -> None:
    landed = {"database": "world", "table": "city", "partition": {"snapshot_time": "20240502T024019Z"}, "rows": 4079}
    variables = RunVariables(datetime(2024, 5, 2, tzinfo=UTC), UTC, landed)

    assert variables.substitute("{landed.database}.{landed.table}/{landed.partition.snapshot_time}/{landed.rows}", "j") == (
        "world.city/20240502T024019Z/4079"
    )
    with pytest.raises(InvalidJob, match=r"has no landed\.partition\.dt"):
        variables.substitute("{landed.partition.dt}", "j")
    with pytest.raises(InvalidJob, match="offsets and formats apply to"):
        variables.substitute("{landed.table - 1d}", "j")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{rundate}", "unknown variable {rundate}"),
        ("{run_date - 1m}", "the offset unit must be d, w or h"),
        ("{run_date:%s}", "a format takes"),
        ("{run_date:}", "a format takes"),
        ("{{run_date}", "unbalanced braces"),
        ("{landed.table}", "no landing started this one"),
        ("{landed.nope}", "no landing started this one"),
    ],
)
def test_bad_references_are_named(text: str, problem: str) -> None:
    with pytest.raises(InvalidJob, match=r"job #1\.query: ") as raised:
        at("2024-05-02T05:00:00").apply({"query": text}, "job #1")
    assert problem in str(raised.value)


def test_apply_replaces_every_string_of_a_job_but_not_its_keys() -> None:
    job = {"name": "d_{run_date:%Y%m%d}", "partition": {"dt": "{run_date}"}, "partitionedBy": ["dt"], "bucketCount": 4}

    assert at("2024-05-02T05:00:00").apply(job, "job #1") == {
        "name": "d_20240502",
        "partition": {"dt": "2024-05-02"},
        "partitionedBy": ["dt"],
        "bucketCount": 4,
    }
