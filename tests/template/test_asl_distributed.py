"""Map states use distributed-only fields only in DISTRIBUTED mode, and nothing that AWS and the local executor would
run differently (issue 13 item 5; asl-validator, run by `make asl-validate`, checks the schema independently).

AWS accepts ItemReader, ItemBatcher, ResultWriter, ToleratedFailure*, Label and ExecutionType only on a Map whose
ItemProcessor runs in DISTRIBUTED mode. moto's executor (tests and `snaplake local`) rejects ItemBatcher, reads only
the first 1,000 keys of a listObjectsV2 ItemReader and writes an empty ResultWriter manifest: the definitions batch in
the planner, read one S3 JSON/CSV object, and keep completeness checks in their finalize steps instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ._support import ASL_FILES, all_states, asl, asl_id

DISTRIBUTED_ONLY = ("ItemReader", "ItemBatcher", "ResultWriter", "ToleratedFailurePercentage", "ToleratedFailurePercentagePath",
                    "ToleratedFailureCount", "ToleratedFailureCountPath", "Label")  # fmt: skip
NOT_RUN_ALIKE = ("ItemBatcher", "ResultWriter")


def maps(path: Path) -> list[tuple[str, dict[str, Any]]]:
    return [(name, state) for _, name, state in all_states(asl(path)) if state.get("Type") == "Map"]


def mode(state: dict[str, Any]) -> str:
    processor = state.get("ItemProcessor") or state.get("Iterator") or {}
    return str(processor.get("ProcessorConfig", {}).get("Mode", "INLINE"))


def distributed_only_problems(name: str, state: dict[str, Any]) -> list[str]:
    problems = []
    processor = state.get("ItemProcessor") or {}
    if mode(state) != "DISTRIBUTED":
        problems += [f"{name}: {field} is for DISTRIBUTED maps only" for field in DISTRIBUTED_ONLY if field in state]
        if "ExecutionType" in processor.get("ProcessorConfig", {}):
            problems.append(f"{name}: ProcessorConfig.ExecutionType is for DISTRIBUTED maps only")
    problems += [f"{name}: {field} does not run the same on AWS and the local executor" for field in NOT_RUN_ALIKE if field in state]
    reader = state.get("ItemReader", {})
    if "listObjectsV2" in str(reader.get("Resource", "")):
        problems.append(f"{name}: a listObjectsV2 ItemReader (the local executor reads only 1,000 keys): read one JSON/CSV object")
    return problems


@pytest.mark.parametrize("path", ASL_FILES, ids=asl_id)
def test_distributed_only_fields_appear_only_in_distributed_maps(path: Path) -> None:
    problems = [problem for name, state in maps(path) for problem in distributed_only_problems(name, state)]
    assert not problems, "\n".join(problems)


def test_the_check_finds_each_kind_of_misuse() -> None:
    inline = {"Type": "Map", "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE", "ExecutionType": "EXPRESS"}}, "Label": "x",
              "ItemReader": {"Resource": "arn:aws:states:::s3:getObject"}}  # fmt: skip
    assert len(distributed_only_problems("Inline", inline)) == 3
    distributed = {"Type": "Map", "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}},
                   "ItemReader": {"Resource": "arn:aws:states:::s3:listObjectsV2"}, "ItemBatcher": {"MaxItemsPerBatch": 10},
                   "ResultWriter": {}, "ToleratedFailurePercentage": 0}  # fmt: skip
    assert len(distributed_only_problems("Distributed", distributed)) == 3
    ok = {"Type": "Map", "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED"}},
          "ItemReader": {"Resource": "arn:aws:states:::s3:getObject"}, "ToleratedFailurePercentage": 0, "Label": "Copy"}  # fmt: skip
    assert distributed_only_problems("Ok", ok) == []
