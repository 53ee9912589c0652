"""The benchmark script runs (smoke sizes only; its figures are printed, not asserted here)."""

import json

import pytest

from benchmarks import rds_copy


def test_rds_copy_benchmark_runs_and_reports_every_figure(capsys: pytest.CaptureFixture[str]) -> None:
    assert rds_copy.main(["--smoke"]) == 0

    printed = capsys.readouterr().out
    figures = json.loads(printed[: printed.rindex("}") + 1])
    assert figures["pipeline"]["objects"] == 300
    assert figures["pipeline"]["s3_requests_by_operation"]["CopyObject"] == 300
    assert set(figures["handler_import_ms_median_excluding_boto3"]) == set(rds_copy.HANDLERS)
