"""Unzipped size of each function as Lambda loads it (its code + every layer it uses), after `sam build`.

Lambda refuses more than 250 MB unzipped (function + layers); this project keeps 50 MB of headroom and
fails above 200 MB. Prints one line per function, largest first, and exits 1 when any is over the limit.

Run: `python scripts/check_package_size.py [--build-dir .aws-sam/build] [--limit-mb 200]` (`make build-check`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "local"))

from snaplake_local.stack import load_template  # noqa: E402

MB = 1024 * 1024


def tree_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file() and not item.is_symlink())


def _layer_ids(layers: Any) -> list[str]:
    """Logical ids of the stack's own layers (`!Ref Layer`); a layer ARN from outside the stack cannot be sized here."""
    found = []
    for layer in layers or []:
        if isinstance(layer, dict) and set(layer) == {"Ref"}:
            found.append(layer["Ref"])
        else:
            raise SystemExit(f"cannot size layer {layer!r}: only layers built by this template are supported")
    return found


def function_sizes(build_dir: Path) -> dict[str, int]:
    """Function logical id -> bytes of its built code plus its layers (Globals layers included, as SAM merges them)."""
    template = load_template(build_dir / "template.yaml")
    resources = template["Resources"]
    global_layers = _layer_ids(template.get("Globals", {}).get("Function", {}).get("Layers"))
    layer_bytes = {
        logical_id: tree_bytes(build_dir / resource["Properties"]["ContentUri"])
        for logical_id, resource in resources.items()
        if resource["Type"] == "AWS::Serverless::LayerVersion"
    }
    sizes = {}
    for logical_id, resource in resources.items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        properties = resource["Properties"]
        layers = dict.fromkeys([*global_layers, *_layer_ids(properties.get("Layers"))])
        sizes[logical_id] = tree_bytes(build_dir / properties["CodeUri"]) + sum(layer_bytes[layer] for layer in layers)
    if not sizes:
        raise SystemExit(f"no built functions in {build_dir}: run `sam build` first")
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build-dir", type=Path, default=ROOT / ".aws-sam" / "build")
    parser.add_argument("--limit-mb", type=float, default=200.0)
    args = parser.parse_args(argv)
    sizes = function_sizes(args.build_dir)
    over = {name: size for name, size in sizes.items() if size > args.limit_mb * MB}
    for name, size in sorted(sizes.items(), key=lambda item: -item[1]):
        print(f"{size / MB:8.1f} MB  {name}{'  OVER THE LIMIT' if name in over else ''}")
    print(f"largest: {max(sizes.values()) / MB:.1f} MB unzipped, limit {args.limit_mb:.0f} MB ({len(sizes)} functions)")
    return 1 if over else 0


if __name__ == "__main__":
    raise SystemExit(main())
