"""A stage's code deps: the project files its module imports, directly or not (its import closure).

Read from the source with ``ast``, so nothing is imported: ``tasks.stages`` writes them into
dvc.yaml, the runner checks them while a stage runs, and train keys its checkpoints on them.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROJECT_PACKAGES = ("tasks", "flows")  # imports of these are code deps; everything else is a library


def _module_file(module: str, root: Path) -> Path | None:
    """The project file of ``module`` (a module or a package), or None for a library."""
    if module.split(".")[0] not in PROJECT_PACKAGES:
        return None
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_modules(source: Path, module: str) -> set[str]:
    """Every module that ``source`` imports anywhere (top level or inside functions), absolute names."""
    package = module if source.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(source.read_text(encoding="utf-8"), str(source))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # `from tasks import paths`
    return found


def import_closure(module: str, root: Path = REPO) -> list[str]:
    """The project files that importing ``module`` executes, as sorted paths relative to ``root``.

    Packages count too (``tasks/__init__.py`` runs before any ``tasks.x``). Imports inside functions
    count: they run when the stage does.
    """
    seen: dict[str, Path] = {}
    todo = [module]
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for depth in range(1, len(parts) + 1):  # the module and the packages above it
            sub = ".".join(parts[:depth])
            path = _module_file(sub, root)
            if path is not None and sub not in seen:
                seen[sub] = path
                todo.extend(_imported_modules(path, sub))
    return sorted(p.relative_to(root).as_posix() for p in seen.values())
