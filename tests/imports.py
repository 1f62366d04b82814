"""The ``coop`` package's own import graph, read from the source (no module is imported)."""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, Set

PACKAGE = Path(__file__).resolve().parents[1] / "coop"


def module_names() -> Dict[str, Path]:
    """``{"model.block_mods": path, ...}`` for every module of the package (``__init__`` as its package)."""
    out = {}
    for f in sorted(PACKAGE.rglob("*.py")):
        parts = f.relative_to(PACKAGE).with_suffix("").parts
        out[".".join(p for p in parts if p != "__init__")] = f
    return out


def imports_of(name: str, path: Path) -> Set[str]:
    """The coop modules (or packages) that module ``name`` imports, anywhere in its body."""
    is_pkg = path.name == "__init__.py"
    here = name.split(".") if is_pkg else name.split(".")[:-1]  # the package the module lives in
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
    known = module_names()
    return {m for m in found if m in known}
