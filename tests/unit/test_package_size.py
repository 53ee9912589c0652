"""scripts/check_package_size.py: a function's unzipped size is its code plus every layer it loads (Globals included)."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.check_package_size import MB, function_sizes, main

BUILT_TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Layers:
      - !Ref CommonLayer
Resources:
  CommonLayer:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: CommonLayer
  ArrowLayer:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: ArrowLayer
  SmallFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: SmallFunction
  ArrowFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: ArrowFunction
      Layers: [!Ref ArrowLayer]
"""


def _build_dir(tmp_path: Path, arrow_mb: int) -> Path:
    files = {"CommonLayer/python/lib.py": 2 * MB, "ArrowLayer/python/pyarrow/lib.so": arrow_mb * MB, "SmallFunction/app.py": 1000}
    files["ArrowFunction/app.py"] = 3000
    for relative, size in files.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as file:
            file.truncate(size)
    (tmp_path / "template.yaml").write_text(BUILT_TEMPLATE)
    return tmp_path


def test_each_function_counts_its_code_its_own_layers_and_the_global_layers(tmp_path: Path) -> None:
    sizes = function_sizes(_build_dir(tmp_path, arrow_mb=150))

    assert sizes == {"SmallFunction": 2 * MB + 1000, "ArrowFunction": 2 * MB + 150 * MB + 3000}


@pytest.mark.parametrize(("arrow_mb", "status"), [(150, 0), (199, 1)])
def test_the_check_fails_when_a_function_with_its_layers_exceeds_the_limit(tmp_path: Path, arrow_mb: int, status: int) -> None:
    assert main(["--build-dir", str(_build_dir(tmp_path, arrow_mb)), "--limit-mb", "200"]) == status
