"""Every error class the snaplake package defines (each subpackage keeps its own errors module)."""

from __future__ import annotations

import importlib
import pkgutil

import snaplake
from snaplake.core.errors import SnaplakeError


def snaplake_error_classes() -> set[type[SnaplakeError]]:
    """Every subclass of SnaplakeError in the package (all modules imported), the base itself included."""
    for module in pkgutil.walk_packages(snaplake.__path__, "snaplake."):
        importlib.import_module(module.name)
    found: set[type[SnaplakeError]] = {SnaplakeError}
    todo: list[type[SnaplakeError]] = [SnaplakeError]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in found:
                found.add(sub)
                todo.append(sub)
    return found
