"""The ``coop`` package's own import graph, read from the source (no module is imported)."""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Mapping, Set

PACKAGE = Path(__file__).resolve().parents[1] / "coop"


def module_names() -> Dict[str, Path]:
    """``{"model.block_mods": path, ...}`` for every module of the package (``__init__`` as its package)."""
    out = {}
    for f in sorted(PACKAGE.rglob("*.py")):
        parts = f.relative_to(PACKAGE).with_suffix("").parts
        out[".".join(p for p in parts if p != "__init__")] = f
    return out


def imports_of(name: str, path: Path, known=None) -> Set[str]:
    """The coop modules (or packages) that module ``name`` imports, anywhere in its body; ``known``
    (default: the package's own modules) is the set of module names an import may resolve to."""
    is_pkg = path.name == "__init__.py"
    parts = [p for p in name.split(".") if p]  # "" is coop/__init__.py itself
    here = parts if is_pkg else parts[:-1]  # the package the module lives in
    found: Set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = here[: len(here) - (node.level - 1)] if node.level > 1 else here
            target = base + (node.module.split(".") if node.module else [])
            if node.module:
                found.add(".".join(target))
            for a in node.names:  # "from . import x": x may be a module
                found.add(".".join(target + [a.name]))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("coop"):
            found.add(node.module[len("coop."):] if node.module != "coop" else "")
        elif isinstance(node, ast.Import):
            found.update(a.name[len("coop."):] for a in node.names if a.name.startswith("coop."))
    known = module_names() if known is None else known
    return {m for m in found if m in known}


def import_graph(modules: Mapping[str, Path] = None) -> Dict[str, Set[str]]:
    """``{module: the coop modules it imports}`` for ``modules`` (default: the whole package), an
    import of a package counted as an edge to its ``__init__``; a module's import of itself is left out."""
    modules = module_names() if modules is None else modules
    return {n: {d for d in imports_of(n, p, known=modules) if d != n} for n, p in modules.items()}


def import_cycles(graph: Mapping[str, Set[str]]) -> List[List[str]]:
    """The import cycles of ``graph``: each strongly connected set of two or more modules (or a module
    importing itself), sorted (Tarjan's algorithm, iterative)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    found: List[List[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in graph:
                    continue
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    comp.append(m)
                    if m == node:
                        break
                if len(comp) > 1 or node in graph.get(node, ()):
                    found.append(sorted(comp))
    return sorted(found)
