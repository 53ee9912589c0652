"""The code's shape: one subpackage per pipeline whose `__init__` names what others may use, imports that run one way,
no oversized module or class, configuration read in one place, one declared default per setting."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from pathlib import Path

import pytest
import snaplake
from snaplake.core.settings import DECLARED

from ._iam import resources_in
from ._support import PROJECT_ROOT, template

LIBRARY = PROJECT_ROOT / "layers" / "common" / "snaplake"
MAX_MODULE_LINES = 500
MAX_CLASS_LINES = 200
# Which subpackages each may import from (core is under everything; streams reads DynamoDB JSON the export's way;
# the Athena jobs use the catalog's Glue helpers). The package root and permissions import nothing.
ALLOWED_IMPORTS = {
    "core": set(),
    "rds": {"core"},
    "dynamodb": {"core"},
    "streams": {"core", "dynamodb"},
    "catalog": {"core"},
    "athena": {"core", "catalog"},
}
# Environment variables Lambda or Powertools read themselves.
RUNTIME_VARIABLES = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_LOG_LEVEL", "POWERTOOLS_METRICS_NAMESPACE"}


def _python_files(*folders: str) -> list[Path]:
    return sorted(path for folder in folders for path in (PROJECT_ROOT / folder).rglob("*.py") if ".venv" not in path.parts)


def _subpackage(path: Path) -> str | None:
    """'rds' for layers/common/snaplake/rds/copy_plan.py; None for the package root's own modules."""
    parts = path.relative_to(LIBRARY).parts
    return parts[0] if len(parts) > 1 else None


def _imports(path: Path) -> list[tuple[str, str, int]]:
    """(module, name, line) of every `from snaplake... import name` and `import snaplake...` in a file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "snaplake":
            found += [(node.module, alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, "", node.lineno) for alias in node.names if alias.name.split(".")[0] == "snaplake"]
    return found


def _is_package(module: str) -> bool:
    return (LIBRARY.joinpath(*module.split(".")[1:]) / "__init__.py").is_file()


def _public_names(package: str) -> set[str]:
    return set(getattr(importlib.import_module(package), "__all__", ()))


@pytest.mark.parametrize(
    "path", _python_files("layers/common/snaplake", "local/snaplake_local"), ids=lambda p: str(p.relative_to(PROJECT_ROOT))
)
def test_no_module_is_oversized(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_MODULE_LINES, (
        f"{path.relative_to(PROJECT_ROOT)} has {lines} lines (at most {MAX_MODULE_LINES}): split it along its seams"
    )


@pytest.mark.parametrize(
    "path", _python_files("layers/common/snaplake", "local/snaplake_local"), ids=lambda p: str(p.relative_to(PROJECT_ROOT))
)
def test_no_class_is_oversized(path: Path) -> None:
    big = [
        f"{node.name} ({(node.end_lineno or node.lineno) - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ClassDef) and (node.end_lineno or node.lineno) - node.lineno + 1 > MAX_CLASS_LINES
    ]
    assert not big, f"{path.relative_to(PROJECT_ROOT)}: classes over {MAX_CLASS_LINES} lines: {big}"


def test_every_subpackage_names_its_public_face() -> None:
    for name in ALLOWED_IMPORTS:
        package = importlib.import_module(f"snaplake.{name}")
        assert package.__doc__, f"snaplake.{name} has no docstring saying what it holds"
        exported = getattr(package, "__all__", None)
        assert exported, f"snaplake.{name}/__init__.py does not list its public names in __all__"
        missing = [n for n in exported if not hasattr(package, n)]
        assert not missing, f"snaplake.{name}.__all__ names what it does not define: {missing}"


def test_subpackages_import_each_other_one_way_and_only_public_names() -> None:
    problems = []
    for path in _python_files("layers/common/snaplake"):
        here = _subpackage(path)
        where = path.relative_to(PROJECT_ROOT)
        for module, name, line in _imports(path):
            parts = module.split(".")
            there = parts[1] if len(parts) > 1 else None
            if there is None or there == here or module == "snaplake.permissions":
                continue
            if here is None:
                problems.append(f"{where}:{line}: the package root imports {module}")
            elif there not in ALLOWED_IMPORTS.get(here, set()):
                problems.append(f"{where}:{line}: snaplake.{here} may not import snaplake.{there} ({module})")
            elif name.startswith("_"):
                problems.append(f"{where}:{line}: imports the private name {name} of {module}")
            elif there != "core" and not (_is_package(module) and name in _public_names(module)):
                problems.append(f"{where}:{line}: imports {name} from {module}: import it from a package's public face (__all__)")
    assert not problems, "\n".join(problems)


def test_handlers_import_no_private_name() -> None:
    private = [
        f"{path.relative_to(PROJECT_ROOT)}:{line}: {module}.{name}"
        for path in _python_files("functions")
        for module, name, line in _imports(path)
        if name.startswith("_") or any(part.startswith("_") for part in module.split("."))
    ]
    assert not private, "handlers import private names:\n" + "\n".join(private)


def test_only_the_settings_read_the_environment() -> None:
    reads = re.compile(r"\bos\.environ\b|\bos\.getenv\b|\bgetenv\(")
    found = [
        f"{path.relative_to(PROJECT_ROOT)}:{number}: {text.strip()}"
        for path in _python_files("functions", "layers/common/snaplake")
        if path != LIBRARY / "core" / "settings.py"
        for number, text in enumerate(path.read_text().splitlines(), 1)
        if reads.search(text)
    ]
    assert not found, "environment read outside snaplake.core.settings:\n" + "\n".join(found)


def test_every_variable_a_function_is_given_is_a_declared_setting_and_every_setting_is_used() -> None:
    for module in pkgutil.walk_packages(snaplake.__path__, "snaplake."):
        importlib.import_module(module.name)
    given: dict[str, set[str]] = {}
    globals_ = template().get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    for logical_id, spec in resources_in(template()).items():
        if spec.get("Type") == "AWS::Serverless::Function":
            variables = {**globals_, **spec.get("Properties", {}).get("Environment", {}).get("Variables", {})}
            for name in variables:
                given.setdefault(name, set()).add(logical_id)
    undeclared = sorted(set(given) - set(DECLARED) - RUNTIME_VARIABLES)
    assert not undeclared, f"template.yaml gives functions variables no Setting declares: {undeclared}"
    library = "\n".join(path.read_text() for path in _python_files("layers/common/snaplake"))
    # Each setting is declared as a constant of its own name (`LAKE_BUCKET = Setting("LAKE_BUCKET", ...)`), then used.
    unused = sorted(name for name in DECLARED if len(re.findall(rf"\b{name}\b(?!\s*=\s*Setting)(?![\"'])", library)) < 1)
    assert not unused, f"declared settings nothing reads: {unused}"


def test_a_setting_cannot_be_declared_twice() -> None:
    from snaplake.core.settings import Setting

    with pytest.raises(RuntimeError, match="LAKE_BUCKET is declared twice"):
        Setting("LAKE_BUCKET", "other-default", "a second declaration")
