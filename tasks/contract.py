"""The stage contract: one declaration per stage, from which ``dvc.yaml``, the CLI and the flow follow.

Each stage module ends with ``STAGE = Stage(...)``: the stage function, the paths it reads and
writes (each named after the function argument that receives it) and the params it reads
(each also an argument). ``tasks/stages.py`` lists the stages in DAG order; ``python -m tasks.stages``
writes ``dvc.yaml`` from them, with each stage's code deps computed as its module's import closure
inside the project. So a path, a params section or an imported helper is declared in one place,
and a change to a helper reruns exactly the stages that import it.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tasks import paths
from tasks.cli import run_cli
from tasks.doctor import keep_last_good
from tasks.files import setup_logging
from tasks.params import Params, load
from tasks.quiet import add_verbose_flag

REPO = Path(__file__).resolve().parents[1]
PROJECT_PACKAGES = ("tasks", "flows")  # imports of these are code deps; everything else is a library
STAGE_PYTHON = "bin/stage-python"  # the interpreter of dvc.yaml's commands (the project's .venv)


@dataclass(frozen=True)
class Output:
    """A stage output as DVC sees it: a plain out, a metrics file or a plot."""

    path: str
    kind: Literal["outs", "metrics", "plots"] = "outs"
    persist: bool = False  # kept by DVC before the stage reruns (the blessed model)
    cache: bool = True
    plot: Mapping[str, str] = field(default_factory=dict)  # x / y / template of a data plot
    # Same inputs, params and code give the same bytes (tested); False only where run times or
    # training noise are inherent, and then no later stage may read it.
    reproducible: bool = True

    def dvc(self) -> str | dict[str, Any]:
        """The entry under ``outs``/``metrics``/``plots`` in dvc.yaml."""
        options = {
            **self.plot,
            **({"persist": True} if self.persist else {}),
            **({} if self.cache else {"cache": False}),
        }
        return {self.path: options} if options else self.path


@dataclass(frozen=True)
class Stage:
    """One stage: its function and everything it declares.

    Attributes:
        name: the stage name in dvc.yaml and the flow.
        fn: the stage function; it takes the arguments named below and returns a small result.
        deps: argument name -> path the stage reads (a DVC dep).
        outs: argument name -> path (or :class:`Output`) the stage writes (a DVC out, metric or plot).
        params: argument name -> params key it reads (a section such as ``train``, or ``data.path``).
        work: argument name -> path of a working folder that is not a DVC output (checkpoints, caches).
    """

    name: str
    fn: Callable[..., Any]
    deps: Mapping[str, str] = field(default_factory=dict)
    outs: Mapping[str, str | Output] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    work: Mapping[str, str] = field(default_factory=dict)

    @property
    def module(self) -> str:
        """The stage's module, as ``python -m`` runs it."""
        return self.fn.__module__

    def outputs(self) -> list[Output]:
        """Every output, as :class:`Output`."""
        return [o if isinstance(o, Output) else Output(o) for o in self.outs.values()]

    def arguments(self, root: Path, params: Params) -> dict[str, Any]:
        """The keyword arguments of :attr:`fn`: paths under ``root`` and the declared params."""
        args: dict[str, Any] = {}
        for mapping in (self.deps, self.work):
            args.update({name: root / path for name, path in mapping.items()})
        args.update({name: root / (o.path if isinstance(o, Output) else o) for name, o in self.outs.items()})
        args.update({name: param_value(params, key) for name, key in self.params.items()})
        return args

    def run(self, root: Path, params: Params) -> Any:
        """Run the stage on the repository (or a copy of its layout) at ``root``."""
        return self.fn(**self.arguments(Path(root), params))

    def main(self, argv: list[str] | None = None) -> None:
        """``python -m tasks.<stage> [--params FILE]``, as dvc.yaml runs it, from the repository root.

        Expected faults (bad params, bad data) print one clear line and exit 2, not a traceback.
        """
        module = sys.modules[self.fn.__module__]  # __main__ under python -m; its spec keeps the real name
        prog = f"python -m {getattr(module.__spec__, 'name', self.module)}"
        parser = argparse.ArgumentParser(prog=prog, description=(module.__doc__ or self.name).strip().splitlines()[0])
        parser.add_argument("--params", default=paths.PARAMS_FILE, help="params file (default: %(default)s)")
        add_verbose_flag(parser)
        args = parser.parse_args(argv)
        setup_logging()
        keep_last_good(Path("."))  # dvc.lock as the previous stages left it, for `make doctor`
        run_cli(lambda: self.run(Path("."), load(args.params)))


def param_value(params: Params, key: str) -> Any:
    """The value of a dotted params key (``train``, ``data.path``)."""
    value: Any = params
    for part in key.split("."):
        value = getattr(value, part)
    return value


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
    found: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"), str(source))):
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
