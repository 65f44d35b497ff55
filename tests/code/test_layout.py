"""The house rules a newcomer can rely on, checked on the code itself.

- Functions do one thing: no function body in ``tasks/`` or ``flows/`` is over 50 lines (its docstring
  not counted), except the declarations listed in ``LONG_DECLARATIONS`` with the reason.
- Reports are typed: no public function in ``tasks/`` or ``flows/`` hands a ``dict[str, Any]`` to another
  module, except those listed in ``UNTYPED_RESULTS`` with the reason (``tasks/reports/`` holds the rest).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MAX_BODY_LINES = 50
LONG_DECLARATIONS = {
    "tasks/validate.py::_expectations": "a table: one Great Expectations expectation per entry, each with its intent",
}
UNTYPED_RESULTS = {
    "tasks/verdict.py::headline": "the DVC metrics file: a flat table of numbers that only DVC reads",
    "tasks/validate.py::inspect_image": "one manifest row (a pandas record), written to manifest.csv",
    "tasks/contract.py::Stage.arguments": "the keyword arguments of a stage function",
    "flows/predict.py::predict_files": "the prediction output: one JSON object per file, what the command prints",
    "tasks/train.py::read_history": "per-epoch rows of Keras metrics: models/history.json, a DVC plot",
    "tasks/train.py::write_outputs": "per-epoch rows of Keras metrics: models/history.json, a DVC plot",
    "tasks/download.py::copy_local": "the Source fields of a local copy (spread into the typed Source)",
    "tasks/download.py::make_synthetic": "the Source fields of the synthetic set (spread into the typed Source)",
    "tasks/params/strict_yaml.py::read": "params.yaml as YAML holds it, before the typed Params parse it",
    "tasks/params/config.py::read_raw": "params.yaml as YAML holds it, before the typed Params parse it",
    "flows/deployments.py::Deployment.resolved": "a flow run's parameters, as Prefect takes them",
}


def _functions() -> list[tuple[str, ast.FunctionDef]]:
    found = []
    for path in sorted([*REPO.glob("tasks/**/*.py"), *REPO.glob("flows/*.py")]):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        rel = path.relative_to(REPO).as_posix()
        classes = {id(f): c.name for c in ast.walk(tree) if isinstance(c, ast.ClassDef) for f in c.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                owner = f"{classes[id(node)]}." if id(node) in classes else ""
                found.append((f"{rel}::{owner}{node.name}", node))
    return found


def _body_lines(node: ast.FunctionDef) -> int:
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
        body = body[1:]  # the docstring
    return body[-1].end_lineno - body[0].lineno + 1 if body else 0


def test_the_checks_see_the_code():
    names = {name for name, _ in _functions()}
    assert "tasks/train.py::train" in names
    assert "tasks/contract.py::Stage.arguments" in names
    assert set(LONG_DECLARATIONS) <= names
    assert set(UNTYPED_RESULTS) <= names


def test_no_function_body_is_over_fifty_lines():
    long = {name: _body_lines(node) for name, node in _functions() if _body_lines(node) > MAX_BODY_LINES}
    assert set(long) == set(LONG_DECLARATIONS), long


@pytest.mark.parametrize("annotation", ["dict[str, Any]", "list[dict[str, Any]]"])
def test_no_public_function_returns_an_untyped_report(annotation):
    untyped = {
        name
        for name, node in _functions()
        if not node.name.startswith("_") and node.returns is not None and ast.unparse(node.returns) == annotation
    }
    assert untyped <= set(UNTYPED_RESULTS), sorted(untyped - set(UNTYPED_RESULTS))


def _project_imports() -> dict[str, set[str]]:
    """Each module of ``tasks/`` and ``flows/`` and the project modules it imports (anywhere in the file)."""
    from tasks.code_deps import _imported_modules, _module_file

    graph = {}
    for path in sorted([*REPO.glob("tasks/**/*.py"), *REPO.glob("flows/*.py")]):
        parts = path.relative_to(REPO).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        imported = {m for m in _imported_modules(path, module) if _module_file(m, REPO) is not None}
        graph[module] = imported - {module}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle of ``graph`` as the list of modules around it, or [] (depth-first search)."""
    done: set[str] = set()
    for start in sorted(graph):
        if start in done:
            continue
        path, on_path, todo = [start], {start}, [(start, iter(sorted(graph.get(start, ()))))]
        while todo:
            node, children = todo[-1]
            child = next(children, None)
            if child is None:
                todo.pop(), path.pop(), on_path.discard(node), done.add(node)
            elif child in on_path:
                return path[path.index(child) :] + [child]
            elif child not in done:
                path.append(child), on_path.add(child)
                todo.append((child, iter(sorted(graph.get(child, ())))))
    return []


def test_the_import_graph_has_no_cycle():
    graph = _project_imports()
    assert "tasks.stages" in graph["tasks.run"]  # the check sees the imports
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]  # and would see a cycle
    assert _cycle(graph) == []


def test_no_stage_module_is_a_command():
    """``python -m tasks.run STAGE`` is the one command: a stage module has no ``__main__`` block."""
    from tasks.stages import STAGES

    def is_main_block(node: ast.stmt) -> bool:
        return (
            isinstance(node, ast.If) and "__name__" in ast.unparse(node.test) and "__main__" in ast.unparse(node.test)
        )

    commands = []
    for stage in STAGES:
        path = REPO.joinpath(*stage.module.split(".")).with_suffix(".py")
        if any(is_main_block(node) for node in ast.parse(path.read_text(encoding="utf-8")).body):
            commands.append(stage.module)
    assert commands == []
