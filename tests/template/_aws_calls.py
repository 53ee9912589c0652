"""Static view of the AWS calls in the handlers and the snaplake library, read with `ast` (nothing is imported).

A *unit* is a top-level function, a class method ("Class.method") or a module's top-level code ("<module>");
nested functions and lambdas belong to the unit they are written in. For each unit the scan collects

- the boto3 client calls in it: `<expr>.<operation>(...)` for any operation of the services below, plus
  `get_paginator("<operation>")` and the S3 transfer methods (`upload_file`, `copy`, ...), unless the receiver is
  a snaplake class instance, a snaplake module or an imported module;
- the units it refers to: functions and classes by name (called or passed on), and methods through `self`, a
  class name, or a variable whose type is known from an annotation or from what was assigned to it.

`reachable()` follows those references from a handler, so a Lambda is charged with the calls of exactly the
library code its handler can run.

Adapter classes (snaplake.permissions.ADAPTERS: the S3 `Bucket`) make their boto3 calls for their callers: a call
`bucket.write_bytes(...)` on a receiver typed as an adapter counts, in the calling unit, as the boto3 calls that
adapter method makes (the table names the data they touch there), and is not followed into the adapter. An
adapter method called on a receiver of unknown type is reported (`adapter_guesses`).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

MODULE_CODE = "<module>"
LIBRARY_PACKAGE = "snaplake"

# Services whose operation names mark a call as a boto3 client call. Broad on purpose: a call on a service not
# listed here would go unseen. Loading these models from botocore takes a fraction of a second.
SCANNED_SERVICES = (
    "athena",
    "cloudwatch",
    "dynamodb",
    "dynamodbstreams",
    "events",
    "firehose",
    "glue",
    "iam",
    "kms",
    "lakeformation",
    "lambda",
    "logs",
    "rds",
    "s3",
    "scheduler",
    "secretsmanager",
    "sns",
    "sqs",
    "ssm",
    "stepfunctions",
    "sts",
)
# boto3's S3 managed-transfer methods (not API operations; each makes several).
TRANSFER_METHODS = frozenset({"upload_file", "upload_fileobj", "download_file", "download_fileobj", "copy"})
PAGINATOR = "get_paginator"


@cache
def _loader() -> Any:
    import botocore.loaders

    return botocore.loaders.Loader()


def _service_model(service: str) -> dict[str, Any]:
    return dict(_loader().load_service_model(service, "service-2"))


@cache
def operation_names(service: str) -> dict[str, str]:
    """boto3 method name -> API operation name (e.g. list_objects_v2 -> ListObjectsV2) of one service."""
    from botocore import xform_name

    return {xform_name(name): name for name in _service_model(service)["operations"]}


@cache
def _squashed_operations() -> frozenset[str]:
    """Every scanned service's operation names, lower case: `list_objects_v2` matches ListObjectsV2 as listobjectsv2."""
    return frozenset(name.lower() for service in SCANNED_SERVICES for name in _service_model(service)["operations"])


def is_operation_name(name: str) -> bool:
    return name == name.lower() and name.replace("_", "") in _squashed_operations()


@dataclass(frozen=True, order=True)
class UnitId:
    module: str  # table key: "snaplake.lake_copy" or "functions/copy_objects/app.py"
    name: str  # "plan_copy", "LakeWriter.copy" or MODULE_CODE

    def __str__(self) -> str:
        return f"{self.module}:{self.name}"


@dataclass(frozen=True)
class FoundCall:
    method: str  # as the table names it: the operation's method, a paginator's operation, or a transfer method
    line: int


@dataclass
class Unit:
    id: UnitId
    calls: list[FoundCall] = field(default_factory=list)
    refs: set[UnitId] = field(default_factory=set)
    # `x.name` / `x.name(n args)` whose receiver's type is unknown: (name, positional+keyword count or None, line)
    unresolved: list[tuple[str, int | None, int]] = field(default_factory=list)
    guessed: set[UnitId] = field(default_factory=set)
    adapter_uses: list[tuple[UnitId, int]] = field(default_factory=list)  # adapter methods called here, and where


@dataclass
class _Class:
    name: str
    bases: list[str]
    methods: dict[str, ast.FunctionDef | ast.AsyncFunctionDef]
    fields: dict[str, ast.expr] = field(default_factory=dict)  # class-level annotations (dataclass fields)


@dataclass
class SourceModule:
    key: str
    path: Path
    tree: ast.Module
    functions: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = field(default_factory=dict)
    classes: dict[str, _Class] = field(default_factory=dict)
    # local name -> ("module", module key) for an imported snaplake/sibling module,
    # ("member", module key, attribute) for a name imported from one, ("external", dotted) otherwise.
    imports: dict[str, tuple[str, ...]] = field(default_factory=dict)
    imported_modules: set[str] = field(default_factory=set)


class Codebase:
    """The snaplake package plus the handler modules, parsed, with module keys resolved to files."""

    def __init__(
        self,
        library_dir: Path,
        project_root: Path,
        sources: dict[Path, str] | None = None,
        adapters: dict[str, tuple[str, ...]] | None = None,
    ):
        """`sources` overrides file contents (path -> text), so the checker can be tested on altered code; `adapters`:
        module key -> adapter class names (see the module docstring)."""
        self.library_dir = library_dir
        self.project_root = project_root
        self._sources = sources or {}
        self.adapters = {(module, name) for module, names in (adapters or {}).items() for name in names}
        self.modules: dict[str, SourceModule] = {}
        self._units: dict[UnitId, Unit] | None = None

    # ------------------------------------------------------------------ loading
    def library_key(self, name: str) -> str:
        """`rds.copy_plan` -> `snaplake.rds.copy_plan`; a package's `__init__` is the package."""
        return f"{LIBRARY_PACKAGE}.{name}".removesuffix(".__init__")

    def library_path(self, dotted: str) -> Path | None:
        """The file of a snaplake module (`rds.copy_plan`) or package (`rds`), if there is one."""
        base = self.library_dir.joinpath(*dotted.split(".")) if dotted else self.library_dir
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file() or candidate in self._sources:
                return candidate
        return None

    def handler_key(self, path: Path) -> str:
        return path.relative_to(self.project_root).as_posix()

    def load_library(self) -> list[str]:
        paths = sorted(self.library_dir.rglob("*.py"))
        return [self._load(self.library_key(".".join(path.relative_to(self.library_dir).with_suffix("").parts)), path) for path in paths]

    def load_library_module(self, name: str) -> str:
        """One snaplake module (`rds.finalize`) and what it imports."""
        path = self.library_path(name)
        assert path is not None, name
        return self._load(self.library_key(name), path)

    def load_handler(self, path: Path) -> str:
        return self._load(self.handler_key(path), path)

    def _load(self, key: str, path: Path) -> str:
        if key in self.modules:
            return key
        text = self._sources.get(path)
        source = text if text is not None else path.read_text()
        module = SourceModule(key, path, ast.parse(source, str(path)))
        self.modules[key] = module
        self._units = None
        for node in module.tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                module.functions[node.name] = node
            elif isinstance(node, ast.ClassDef):
                methods = {n.name: n for n in node.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
                fields = {n.target.id: n.annotation for n in node.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}
                module.classes[node.name] = _Class(node.name, [_dotted(b) or "" for b in node.bases], methods, fields)
        for found in ast.walk(module.tree):  # imports anywhere, including inside functions
            if isinstance(found, ast.Import):
                for alias in found.names:
                    target = self._module_for(alias.name, path)
                    if target and alias.asname:
                        module.imports[alias.asname] = ("module", target)
                    elif target:
                        module.imported_modules.add(target)
                    else:
                        module.imports[alias.asname or alias.name.split(".")[0]] = ("external", alias.name)
            elif isinstance(found, ast.ImportFrom):
                base = "." * found.level + (found.module or "")
                for alias in found.names:
                    local = alias.asname or alias.name
                    as_module = self._module_for(f"{base}.{alias.name}" if found.module else base + alias.name, path)
                    base_module = self._module_for(base, path) if found.module or found.level else None
                    if as_module:
                        module.imports[local] = ("module", as_module)
                    elif base_module:
                        module.imports[local] = ("member", base_module, alias.name)
                        module.imported_modules.add(base_module)
                    else:
                        module.imports[local] = ("external", f"{base}.{alias.name}")
        return key

    def _module_for(self, dotted: str, importer: Path) -> str | None:
        """The module key of a snaplake module or of a module next to the importer (a handler's own files)."""
        name = dotted.lstrip(".")
        parts = name.split(".")
        if parts[0] == LIBRARY_PACKAGE:
            inner = ".".join(parts[1:])
            path = self.library_path(inner)
            return self._load(self.library_key(inner), path) if path is not None else None
        sibling = importer.parent / f"{parts[0]}.py"
        if len(parts) == 1 and importer.parent != self.library_dir and sibling.is_file():
            return self._load(self.handler_key(sibling), sibling)
        return None

    # ------------------------------------------------------------------ units
    def units(self) -> dict[UnitId, Unit]:
        if self._units is None:
            self._units = {}
            for module in list(self.modules.values()):
                for unit in _ModuleScanner(self, module).scan():
                    self._units[unit.id] = unit
            for unit in self._units.values():
                for method, line in unit.adapter_uses:
                    owner, name = method.name.split(".", 1)
                    unit.calls += [FoundCall(call, line) for call in self.adapter_calls(method.module, owner, name)]
            self._follow_protocols(self._units)
            self._guess_unresolved(self._units)
        return self._units

    def _follow_protocols(self, units: dict[UnitId, Unit]) -> None:
        """A call through a Protocol (`store.write(...)`, `store: ChangeLogStore`) runs the method of whatever object
        was passed in: it refers to that method of every snaplake class that has all of the protocol's methods, each
        callable the way the protocol's is (as many arguments)."""
        protocols = {
            (module.key, name): cls
            for module in self.modules.values()
            for name, cls in module.classes.items()
            if any(base.split(".")[-1] == "Protocol" for base in cls.bases)
        }
        implementers: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for (module_key, name), protocol in protocols.items():
            wanted = {method: _arity(node) for method, node in protocol.methods.items() if not method.startswith("_")}
            implementers[(module_key, name)] = [
                (module.key, class_name)
                for module in self.modules.values()
                for class_name, cls in module.classes.items()
                if (module.key, class_name) not in protocols
                and all(method in cls.methods and _can_stand_in(_arity(cls.methods[method]), arity) for method, arity in wanted.items())
            ]
        for unit in units.values():
            for ref in list(unit.refs):
                owner, _, method = ref.name.partition(".")
                for module_key, class_name in implementers.get((ref.module, owner), []) if method else []:
                    target = self.method(module_key, class_name, method)
                    if target is not None:
                        unit.refs.add(target)

    def adapter_guesses(self) -> list[str]:
        """Calls of an adapter method's name on a receiver whose type the scan cannot tell: which data they touch
        cannot be charged to anyone (annotate the receiver as the adapter class)."""
        names = self.adapter_method_names()
        return [
            f"{unit_id} line {line}: .{name}()"
            for unit_id, unit in sorted(self.units().items())
            if not self.is_adapter(unit_id.module, unit_id.name)
            for name, _, line in unit.unresolved
            if name in names
        ]

    def _guess_unresolved(self, units: dict[UnitId, Unit]) -> None:
        """Stay sound where a receiver's type is unknown: `x.copy(item)` may be any snaplake method named `copy`
        that takes that many arguments and leads to AWS calls, so it counts as a reference to each of them."""
        reaching = {unit_id for unit_id in units if any(u.calls for u in self.reachable([unit_id]))}
        by_name: dict[str, list[UnitId]] = {}
        for unit_id in reaching:
            if "." in unit_id.name and not self.is_adapter(unit_id.module, unit_id.name):
                by_name.setdefault(unit_id.name.split(".", 1)[1], []).append(unit_id)
        for unit in units.values():
            for name, count, _ in unit.unresolved:
                for candidate in by_name.get(name, []):
                    if count is None or self._accepts(candidate, count):
                        unit.guessed.add(candidate)
            unit.refs |= unit.guessed

    def _accepts(self, method: UnitId, count: int) -> bool:
        owner, name = method.name.split(".", 1)
        node = self.modules[method.module].classes[owner].methods[name]
        positional = [*node.args.posonlyargs, *node.args.args][1:]  # without self
        required = len(positional) - len(node.args.defaults)
        most = None if node.args.vararg or node.args.kwarg else len(positional) + len(node.args.kwonlyargs)
        return count >= required and (most is None or count <= most)

    def units_of(self, module_key: str) -> list[Unit]:
        return [unit for unit_id, unit in sorted(self.units().items()) if unit_id.module == module_key]

    def reachable(self, roots: Iterable[UnitId]) -> list[Unit]:
        units = self.units()
        seen: set[UnitId] = set()
        todo = [root for root in roots if root in units]
        while todo:
            current = todo.pop()
            if current in seen:
                continue
            seen.add(current)
            todo.extend(ref for ref in units[current].refs if ref in units and ref not in seen)
        return [units[unit_id] for unit_id in sorted(seen)]

    # ------------------------------------------------------------------ name resolution
    def resolve_name(self, module: SourceModule, name: str, depth: int = 0) -> tuple[str, str] | None:
        """(module key, top-level name) a name in `module` stands for, when it is a snaplake/handler function or class
        (followed through a package's re-exports)."""
        if name in module.functions or name in module.classes:
            return module.key, name
        bound = module.imports.get(name)
        if bound and bound[0] == "member" and depth < 5:
            target = self.modules.get(bound[1])
            if target:
                return self.resolve_name(target, bound[2], depth + 1)
        return None

    def is_adapter(self, module_key: str, name: str) -> bool:
        """Whether `name` ("Class" or "Class.method") of `module_key` belongs to an adapter class."""
        return (module_key, name.split(".", 1)[0]) in self.adapters

    def adapter_calls(self, module_key: str, class_name: str, method: str) -> list[str]:
        """The boto3 calls an adapter method makes, following the adapter's own methods."""
        start = self.method(module_key, class_name, method)
        if start is None:
            return []
        units = self.units()
        seen: set[UnitId] = set()
        todo = [start]
        found: list[str] = []
        while todo:
            current = todo.pop()
            if current in seen or current not in units:
                continue
            seen.add(current)
            found += [call.method for call in units[current].calls]
            todo += [ref for ref in units[current].refs if ref.module == module_key and ref.name.split(".", 1)[0] == class_name]
        return sorted(set(found))

    def adapter_method_names(self) -> set[str]:
        return {m for module, name in self.adapters if (cls := self.class_of(module, name)) for m in cls.methods if not m.startswith("_")}

    def class_of(self, module_key: str, name: str) -> _Class | None:
        module = self.modules.get(module_key)
        return module.classes.get(name) if module else None

    def method(self, module_key: str, class_name: str, method: str) -> UnitId | None:
        """The unit that runs for Class.method, looking through the class's snaplake base classes."""
        module = self.modules.get(module_key)
        cls = module.classes.get(class_name) if module else None
        if module is None or cls is None:
            return None
        if method in cls.methods:
            return UnitId(module_key, f"{class_name}.{method}")
        for base in cls.bases:
            resolved = self.resolve_name(module, base)
            if resolved and self.class_of(*resolved):
                found = self.method(resolved[0], resolved[1], method)
                if found:
                    return found
        return None


def _arity(node: ast.FunctionDef | ast.AsyncFunctionDef) -> tuple[int, int | None]:
    """(required, most) arguments a method takes besides self; most None with *args or **kwargs."""
    positional = [*node.args.posonlyargs, *node.args.args][1:]
    required = len(positional) - len(node.args.defaults) + sum(1 for d in node.args.kw_defaults if d is None)
    most = None if node.args.vararg or node.args.kwarg else len(positional) + len(node.args.kwonlyargs)
    return required, most


def _can_stand_in(method: tuple[int, int | None], protocol: tuple[int, int | None]) -> bool:
    """Whether a method taking `method` arguments accepts every call the protocol's method accepts."""
    return method[0] <= protocol[0] and (method[1] is None or (protocol[1] is not None and method[1] >= protocol[1]))


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return f"{inner}.{node.attr}" if inner else None
    return None


class _ModuleScanner:
    def __init__(self, codebase: Codebase, module: SourceModule):
        self.codebase = codebase
        self.module = module

    def scan(self) -> Iterator[Unit]:
        top = Unit(UnitId(self.module.key, MODULE_CODE))
        top.refs.update(UnitId(key, MODULE_CODE) for key in self.module.imported_modules)
        top.refs.update(UnitId(bound[1], MODULE_CODE) for bound in self.module.imports.values() if bound[0] == "module")
        for node in self.module.tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                yield self._unit(node.name, node, None)
                self._collect(top, node.decorator_list, {}, None)
            elif isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                        yield self._unit(f"{node.name}.{item.name}", item, node.name)
                        self._collect(top, item.decorator_list, {}, node.name)
                    else:
                        self._collect(top, [item], {}, node.name)
                self._collect(top, [*node.bases, *node.decorator_list], {}, None)
            else:
                self._collect(top, [node], {}, None)
        yield top

    def _unit(self, name: str, node: ast.FunctionDef | ast.AsyncFunctionDef, class_name: str | None) -> Unit:
        unit = Unit(UnitId(self.module.key, name))
        unit.refs.add(UnitId(self.module.key, MODULE_CODE))
        types = self._local_types(node, class_name)
        defaults = [d for d in [*node.args.defaults, *node.args.kw_defaults] if d is not None]
        self._collect(unit, [*defaults, *node.body], types, class_name)
        return unit

    # ---------------------------------------------------------------- types of local names
    def _class_in(self, annotation: ast.expr | None) -> tuple[str, str] | None:
        """The snaplake class an annotation names (`X`, `X | None`, `Optional[X]`, "X")."""
        if annotation is None:
            return None
        if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
            try:
                return self._class_in(ast.parse(annotation.value, mode="eval").body)
            except SyntaxError:
                return None
        if isinstance(annotation, ast.BinOp):
            return self._class_in(annotation.left) or self._class_in(annotation.right)
        if isinstance(annotation, ast.Subscript):
            return self._class_in(annotation.slice)
        name = _dotted(annotation)
        resolved = self._resolve_dotted(name) if name else None
        if resolved and self.codebase.class_of(*resolved):
            return resolved
        return None

    def _resolve_dotted(self, name: str) -> tuple[str, str] | None:
        head, _, rest = name.partition(".")
        if not rest:
            return self.codebase.resolve_name(self.module, head)
        bound = self.module.imports.get(head)
        if bound and bound[0] == "module" and "." not in rest:
            target = self.codebase.modules.get(bound[1])
            if target:
                return self.codebase.resolve_name(target, rest)
        return None

    def _type_of(self, value: ast.expr, types: dict[str, tuple[str, str]], class_name: str | None) -> tuple[str, str] | None:
        """The snaplake class of an expression's value: a constructor call, or a call whose return annotation names one."""
        if isinstance(value, ast.Name):
            return types.get(value.id)
        if isinstance(value, ast.Attribute):  # a field of a snaplake class (`self.settings`), by its annotation
            holder = self._owner(value.value, types, class_name)
            holder_class = self.codebase.class_of(holder[1], holder[2]) if holder and holder[0] == "class" else None
            annotation = holder_class.fields.get(value.attr) if holder_class else None
            if holder is None or annotation is None:
                return None
            return _ModuleScanner(self.codebase, self.codebase.modules[holder[1]])._class_in(annotation)
        if not isinstance(value, ast.Call):
            return None
        callee = self._callee(value.func, types, class_name)
        if callee is None:
            return None
        module_key, name = callee
        if "." not in name and self.codebase.class_of(module_key, name):
            return callee
        target = self.codebase.modules[module_key]
        node: ast.FunctionDef | ast.AsyncFunctionDef | None
        if "." in name:
            owner, method = name.split(".", 1)
            cls = target.classes.get(owner)
            node = cls.methods.get(method) if cls else None
        else:
            node = target.functions.get(name)
        if node is None:
            return None
        returned = _ModuleScanner(self.codebase, target)._class_in(node.returns)
        return returned

    def _local_types(self, node: ast.FunctionDef | ast.AsyncFunctionDef, class_name: str | None) -> dict[str, tuple[str, str]]:
        types: dict[str, tuple[str, str]] = {}
        if (
            class_name is not None
            and node.args.args
            and not any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in node.decorator_list)
        ):
            types[node.args.args[0].arg] = (self.module.key, class_name)
        assigned: list[tuple[str, ast.expr]] = []  # (name, value), in order; values typed after annotations
        for inner in ast.walk(node):
            found = None
            if isinstance(inner, ast.arg):
                found = self._class_in(inner.annotation)
                name = inner.arg
            elif isinstance(inner, ast.AnnAssign) and isinstance(inner.target, ast.Name):
                found, name = self._class_in(inner.annotation), inner.target.id
            elif isinstance(inner, ast.Assign) and len(inner.targets) == 1 and isinstance(inner.targets[0], ast.Name):
                assigned.append((inner.targets[0].id, inner.value))
            elif (
                isinstance(inner, ast.Assign)
                and len(inner.targets) == 1
                and isinstance(inner.targets[0], ast.Tuple)
                and isinstance(inner.value, ast.Tuple)
                and len(inner.targets[0].elts) == len(inner.value.elts)
            ):  # `a, b = x(), y()`
                assigned += [(t.id, v) for t, v in zip(inner.targets[0].elts, inner.value.elts, strict=True) if isinstance(t, ast.Name)]
            elif isinstance(inner, ast.withitem) and isinstance(inner.optional_vars, ast.Name):
                assigned.append((inner.optional_vars.id, inner.context_expr))
            if found:
                types[name] = found
        for _ in range(2):  # a second pass lets `b = a` follow `a = X()`
            for name, value in assigned:
                found = self._type_of(value, types, class_name)
                if found:
                    types[name] = found
        return types

    # ---------------------------------------------------------------- references and calls
    def _callee(self, func: ast.expr, types: dict[str, tuple[str, str]], class_name: str | None) -> tuple[str, str] | None:
        """(module key, "name" or "Class.method") a callee expression refers to, when it is snaplake code."""
        if isinstance(func, ast.Name):
            return self.codebase.resolve_name(self.module, func.id)
        if not isinstance(func, ast.Attribute):
            return None
        owner = self._owner(func.value, types, class_name)
        if owner is None:
            return None
        kind, module_key, name = owner
        if kind == "module":
            target = self.codebase.modules.get(module_key)
            return self.codebase.resolve_name(target, func.attr) if target else None
        method = self.codebase.method(module_key, name, func.attr)
        return (method.module, method.name) if method else None

    def _owner(self, value: ast.expr, types: dict[str, tuple[str, str]], class_name: str | None) -> tuple[str, str, str] | None:
        """What the left side of an attribute is, when it is snaplake: ("module", key, "") or ("class", key, Class)."""
        if isinstance(value, ast.Name):
            bound = self.module.imports.get(value.id)
            if bound and bound[0] == "module":
                return "module", bound[1], ""
            if value.id in types:
                return "class", *types[value.id]
            resolved = self.codebase.resolve_name(self.module, value.id)
            if resolved and self.codebase.class_of(*resolved):
                return "class", *resolved
            return None
        found = self._type_of(value, types, class_name)
        return ("class", *found) if found else None

    def _is_external_module(self, value: ast.expr) -> bool:
        root = value
        while isinstance(root, ast.Attribute):
            root = root.value
        return isinstance(root, ast.Name) and self.module.imports.get(root.id, ("",))[0] == "external"

    def _collect(self, unit: Unit, nodes: Sequence[ast.AST], types: dict[str, tuple[str, str]], class_name: str | None) -> None:
        called_with: dict[int, int] = {}  # id(attribute node) -> argument count, for attributes that are called
        for top in nodes:
            for node in ast.walk(top):
                if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                    self._refer(unit, self.codebase.resolve_name(self.module, node.id))
                elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
                    target = self._callee(node, types, class_name)
                    if target is not None and self.codebase.is_adapter(*target) and not self._inside_adapter(class_name):
                        continue  # charged where it is called (_client_call), not followed into the adapter
                    self._refer(unit, target)
                    if target is None and self._owner(node.value, types, class_name) is None and not self._is_external_module(node.value):
                        called = called_with.get(id(node))
                        unit.unresolved.append((node.attr, called, node.lineno))
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                    called_with[id(node.func)] = len(node.args) + len(node.keywords)
                    self._client_call(unit, node, types, class_name)

    def _refer(self, unit: Unit, target: tuple[str, str] | None) -> None:
        if target is None:
            return
        module_key, name = target
        if "." not in name and self.codebase.class_of(module_key, name):
            for special in ("__init__", "__post_init__", "__new__", "__call__"):
                method = self.codebase.method(module_key, name, special)
                if method:
                    unit.refs.add(method)
            return
        unit.refs.add(UnitId(module_key, name))

    def _inside_adapter(self, class_name: str | None) -> bool:
        return class_name is not None and self.codebase.is_adapter(self.module.key, class_name)

    def _client_call(self, unit: Unit, call: ast.Call, types: dict[str, tuple[str, str]], class_name: str | None) -> None:
        func = call.func
        assert isinstance(func, ast.Attribute)
        owner = self._owner(func.value, types, class_name)
        if (
            owner is not None
            and owner[0] == "class"
            and self.codebase.is_adapter(owner[1], owner[2])
            and not self._inside_adapter(class_name)
        ):
            method = self.codebase.method(owner[1], owner[2], func.attr)
            if method is not None:
                unit.adapter_uses.append((method, call.lineno))
            return
        if owner is not None or self._is_external_module(func.value):
            return
        if func.attr == PAGINATOR:
            first = call.args[0] if call.args else None
            name = first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else f"{PAGINATOR}(?)"
            unit.calls.append(FoundCall(name, call.lineno))
        elif is_operation_name(func.attr) or (func.attr in TRANSFER_METHODS and len(call.args) + len(call.keywords) >= 2):
            unit.calls.append(FoundCall(func.attr, call.lineno))
