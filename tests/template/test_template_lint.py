"""The template passes SAM's own validation (`sam validate --lint`) and cfn-lint, offline."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ._support import PROJECT_ROOT, TEMPLATE_PATH

BIN = Path(sys.executable).parent


def _offline_env() -> dict[str, str]:
    return {**os.environ, "AWS_DEFAULT_REGION": "eu-west-1", "SAM_CLI_TELEMETRY": "0"}


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    assert Path(command[0]).exists(), f"{command[0]} is not installed next to {sys.executable}"
    return subprocess.run(command, cwd=PROJECT_ROOT, env=_offline_env(), capture_output=True, text=True, timeout=180, check=False)


def test_sam_validate_lint_accepts_the_template() -> None:
    result = _run([str(BIN / "sam"), "validate", "--lint", "--template-file", str(TEMPLATE_PATH)])
    assert result.returncode == 0, f"sam validate --lint failed:\n{result.stdout}\n{result.stderr}"
    assert "is a valid SAM Template" in result.stdout + result.stderr


def test_cfn_lint_reports_no_errors_or_warnings() -> None:
    result = _run([str(BIN / "cfn-lint"), "--format", "parseable", "--", str(TEMPLATE_PATH)])
    assert result.returncode == 0, f"cfn-lint exit {result.returncode}:\n{result.stdout}\n{result.stderr}"
