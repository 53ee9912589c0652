"""The scale benchmarks run (issue 13): benchmarks/ddb_fanout.py at smoke size (MAX_SHARES lowered to 4, so shares
saturate and grow), and benchmarks/scale_model.py, whose model must meet the targets with its recorded inputs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from benchmarks import ddb_fanout, scale_model


def printed_json(printed: str) -> Any:
    return json.loads(printed[: printed.rindex("}") + 1])


def test_the_fanout_benchmark_runs_every_step_and_the_per_export_ones_read_one_object_per_share(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert ddb_fanout.main(["--smoke"]) == 0

    printed = capsys.readouterr().out
    figures = printed_json(printed)
    library = figures["library"]
    assert (library["files"], library["max_shares"], library["shares"], library["files_per_share"]) == (120, 4, 4, 30)
    steps = library["steps"]
    assert library["landed"]["files"] == 120 and library["staged_copies_left"] == 0
    assert steps["ScanFiles"]["children"] == steps["ConvertFiles"]["children"] == steps["PublishFiles"]["children"] == 4
    # 120 data files, 4 shares: the per-export steps make a handful of requests, none per file.
    assert steps["MergeSchema"]["s3_requests_by_operation"]["GetObject"] == 1 + 4 + 1
    # Each share's summary, and the plan once (the source table's name its metrics are dimensioned by).
    assert steps["FinalizeConversion"]["s3_requests_by_operation"]["GetObject"] == 4 + 1
    assert steps["PlanConversion"]["s3_requests_by_operation"] == {"GetObject": 2, "PutObject": 4 + 2}
    small, large = figures["state_machine"]
    assert (small["files"], large["files"], large["shares"]) == (3, 40, 4)
    assert large["largest_state_payload_bytes"] <= small["largest_state_payload_bytes"] + 64
    assert large["parent_state_transitions"] == small["parent_state_transitions"]
    assert "MISSED" not in printed


def test_the_scale_model_prints_its_inputs_and_meets_the_targets(capsys: pytest.CaptureFixture[str]) -> None:
    assert scale_model.main(["--json"]) == 0

    printed = capsys.readouterr().out
    summary = json.loads(printed.strip().splitlines()[-1])
    for kind in ("measured", "configured", "code", "documented", "assumed"):
        assert f"\n  {kind} " in printed
    assert summary["RDS 2 TB in 20,000 files"]["met"] and summary["RDS 2 TB in 20,000 files"]["seconds"] <= 120
    assert summary["DynamoDB 1 TB (full export)"]["met"] and summary["DynamoDB 1 TB (full export)"]["seconds"] <= 15 * 60
    assert summary["DynamoDB 10 TB (full export)"]["met"]  # completes: no step over its timeout, no limit reached
    assert "OVER ITS TIMEOUT" not in printed


def test_the_scale_model_measures_the_rates_at_smoke_size(capsys: pytest.CaptureFixture[str]) -> None:
    assert scale_model.main(["--smoke"]) == 0

    printed = capsys.readouterr().out
    assert "--measure-mb 1: this machine" in printed and "RDS 2 TB in 20,000 files" in printed
