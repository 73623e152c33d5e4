"""The import graph of the repository's packages, read from the source (AST, no import runs).

Every import statement counts, also those inside functions (a lazy import is still a
dependency), except those under `if TYPE_CHECKING:` (they never run). `from pkg import name`
is an edge to the module pkg.name when that is a module of the tree, else to pkg itself.
Compiled extensions (engine._xnornet) are leaves outside the graph.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from pathlib import Path


def modules(root: Path, packages: Iterable[str]) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of the given top-level packages."""
    found: dict[str, Path] = {}
    for pkg in packages:
        for path in sorted((root / pkg).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _type_checking_only(node):
            for child in node.orelse:
                yield from _import_nodes(child)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        yield from _import_nodes(node)


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    """The longest prefix of `name` that is a module of the tree (None: outside the tree)."""
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        candidate = ".".join(parts[:n])
        if candidate in known:
            return candidate
    return None


def _from_target(base: str, name: str, known: dict[str, Path]) -> str | None:
    """`from base import name`: the submodule base.name, else base itself; None when base is not
    a Python module of the tree (another package, or a compiled extension such as engine._xnornet)."""
    if f"{base}.{name}" in known:
        return f"{base}.{name}"
    return base if base in known else None


def graph(root: Path, packages: Iterable[str]) -> dict[str, dict[str, int]]:
    """module -> {imported module of the tree -> line of the first such import}."""
    known = modules(root, packages)
    edges: dict[str, dict[str, int]] = {}
    for module, path in known.items():
        is_package = path.name == "__init__.py"
        out: dict[str, int] = {}
        for node in _import_nodes(ast.parse(path.read_text(), filename=str(path))):
            resolved: list[str | None] = []
            if isinstance(node, ast.Import):
                resolved = [_resolve(alias.name, known) for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = module.split(".")
                    drop = node.level - 1 if is_package else node.level
                    anchor = anchor[: len(anchor) - drop] if drop else anchor
                    base = ".".join([*anchor, base] if base else anchor)
                resolved = [_from_target(base, alias.name, known) for alias in node.names]
            for target in resolved:
                if target is not None and target != module:
                    out.setdefault(target, node.lineno)
        edges[module] = out
    return edges


def cycles(edges: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def forbidden(edges: dict[str, dict[str, int]], allowed: dict[str, set[str]]) -> list[str]:
    """Imports from a top-level package to one it may not import (`allowed`: package -> the
    packages it may import besides itself)."""
    bad = []
    for module, targets in sorted(edges.items()):
        source = module.split(".")[0]
        for target, line in sorted(targets.items()):
            dest = target.split(".")[0]
            if dest != source and dest not in allowed.get(source, set()):
                bad.append(f"{module} (line {line}) imports {target}: {source} may not import {dest}")
    return bad
