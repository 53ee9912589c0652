"""Every AWS::Serverless::Function points at code that exists, on python3.13/arm64, with tracing."""

from __future__ import annotations

import ast
from typing import Any

import pytest

from ._support import PROJECT_ROOT, function_globals, function_ids, resources, resources_of_type

RUNTIME = "python3.13"
ARCHITECTURES = ["arm64"]

per_function = pytest.mark.parametrize("logical_id", function_ids())


def _props(logical_id: str) -> dict[str, Any]:
    return dict(resources()[logical_id].get("Properties", {}))


def _setting(logical_id: str, name: str) -> Any:
    props = _props(logical_id)
    return props[name] if name in props else function_globals().get(name)


def _top_level_names(source: str) -> set[str]:
    names: set[str] = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(target.id for target in node.targets if isinstance(target, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def test_template_has_functions() -> None:
    assert function_ids()


def test_globals_set_python313_on_arm64() -> None:
    assert function_globals().get("Runtime") == RUNTIME
    assert function_globals().get("Architectures") == ARCHITECTURES


@per_function
def test_function_runs_python313_on_arm64(logical_id: str) -> None:
    assert _setting(logical_id, "Runtime") == RUNTIME
    assert _setting(logical_id, "Architectures") == ARCHITECTURES


@per_function
def test_function_traces_with_x_ray(logical_id: str) -> None:
    assert _setting(logical_id, "Tracing") == "Active", f"{logical_id}: Tracing is not Active (directly or via Globals)"


@per_function
def test_function_code_uri_holds_the_handler(logical_id: str) -> None:
    props = _props(logical_id)
    code_uri, handler = props.get("CodeUri"), props.get("Handler")
    assert isinstance(code_uri, str), f"{logical_id}: CodeUri must be a local folder"
    assert isinstance(handler, str) and "." in handler, f"{logical_id}: Handler must be module.function"
    folder = PROJECT_ROOT / code_uri
    assert folder.is_dir(), f"{logical_id}: CodeUri {code_uri} is not a folder"
    module, function = handler.rsplit(".", 1)
    source = folder / (module.replace(".", "/") + ".py")
    assert source.is_file(), f"{logical_id}: Handler {handler} needs {source.relative_to(PROJECT_ROOT)}"
    assert function in _top_level_names(source.read_text()), f"{logical_id}: {source.relative_to(PROJECT_ROOT)} defines no {function}"


def test_layers_are_built_for_python313_on_arm64_and_the_common_layer_holds_snaplake() -> None:
    layers = resources_of_type("AWS::Serverless::LayerVersion")
    assert layers
    for logical_id, spec in layers:
        props, metadata = spec.get("Properties", {}), spec.get("Metadata", {})
        assert RUNTIME in props.get("CompatibleRuntimes", []), logical_id
        assert "arm64" in props.get("CompatibleArchitectures", []), logical_id
        assert metadata.get("BuildMethod") == RUNTIME, f"{logical_id}: without Metadata.BuildMethod SAM copies the folder unbuilt"
        assert metadata.get("BuildArchitecture") == "arm64", logical_id
        content = PROJECT_ROOT / props["ContentUri"]
        assert (content / "requirements.txt").is_file(), f"{logical_id}: {props['ContentUri']} has no requirements.txt"
        if logical_id == "CommonLayer":
            assert (content / "snaplake" / "__init__.py").is_file(), f"{props['ContentUri']} does not hold the snaplake package"
