"""The benchmark script runs (smoke sizes only; its figures are printed, not asserted here)."""

import json

import pytest

from benchmarks import rds_copy, stream_flatten


def test_rds_copy_benchmark_runs_and_reports_every_figure(capsys: pytest.CaptureFixture[str]) -> None:
    assert rds_copy.main(["--smoke"]) == 0

    printed = capsys.readouterr().out
    figures = json.loads(printed[: printed.rindex("}") + 1])
    assert figures["pipeline"]["objects"] == 300
    assert figures["pipeline"]["s3_requests_by_operation"]["CopyObject"] == 300
    assert set(figures["handler_import_ms_median_excluding_boto3"]) == set(rds_copy.HANDLERS)


def test_stream_flatten_benchmark_runs_snaplake_and_the_peer_on_the_same_batches(capsys: pytest.CaptureFixture[str]) -> None:
    assert stream_flatten.main(["--smoke"]) == 0

    printed = capsys.readouterr().out
    figures = json.loads(printed[: printed.rindex("}") + 1])
    assert figures["records_per_batch"] == 10 and figures["batches"] == 2
    assert figures["records_per_second_per_core"] > 0 and figures["peer_records_per_second_per_core"] > 0
    assert figures["ratio_vs_peer"] > 0 and figures["objects_per_batch"] == 2  # the batch spans an hour boundary
    assert "peer" in printed.splitlines()[-1]
