"""The stage contract: one declaration per stage, from which ``dvc.yaml``, the CLI and the flow follow.

Each stage module ends with ``STAGE = Stage(...)``: the stage function, the paths it reads and
writes (each named after the function argument that receives it) and the params it reads
(each also an argument). ``tasks/stages.py`` lists the stages in DAG order and writes ``dvc.yaml``
from them, with each stage's code deps computed as its module's import closure inside the project.
So a path, a params section or an imported helper is declared in one place, and a change to a
helper reruns exactly the stages that import it.

This module is in every stage's code deps, so it holds the declaration only: running a stage from
the command line is ``tasks.run``, and generating ``dvc.yaml`` is ``tasks.stages``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal


class StageResult:
    """The base of every stage's result: what the stage function returns."""


@dataclass(frozen=True)
class Output:
    """A stage output as DVC sees it: a plain out, a metrics file or a plot."""

    path: str
    kind: Literal["outs", "metrics", "plots"] = "outs"
    persist: bool = False  # kept by DVC before the stage reruns
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
        prepare: what the command (``tasks.run``) does before the stage, given the repository root: bring a
            ``work`` folder up to date from outside DVC's graph (the production model, from the registry).
    """

    name: str
    fn: Callable[..., Any]
    deps: Mapping[str, str] = field(default_factory=dict)
    outs: Mapping[str, str | Output] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    work: Mapping[str, str] = field(default_factory=dict)
    prepare: Callable[[Path], None] | None = None

    @property
    def module(self) -> str:
        """The module that defines the stage (its code deps are this module's import closure)."""
        return self.fn.__module__

    def outputs(self) -> list[Output]:
        """Every output, as :class:`Output`."""
        return [o if isinstance(o, Output) else Output(o) for o in self.outs.values()]

    def arguments(self, root: Path, params: Any) -> dict[str, Any]:
        """The keyword arguments of :attr:`fn`: paths under ``root`` and the declared params.

        ``params`` is the whole loaded file (``tasks.params.config.Params``), not imported here: this
        module is in every stage's code deps, and a stage depends on its own sections only.
        """
        args: dict[str, Any] = {}
        for mapping in (self.deps, self.work):
            args.update({name: root / path for name, path in mapping.items()})
        args.update({name: root / (o.path if isinstance(o, Output) else o) for name, o in self.outs.items()})
        args.update({name: param_value(params, key) for name, key in self.params.items()})
        return args

    def run(self, root: Path, params: Any) -> Any:
        """Run the stage on the repository (or a copy of its layout) at ``root``."""
        return self.fn(**self.arguments(Path(root), params))


def param_value(params: Any, key: str) -> Any:
    """The value of a dotted params key (``train``, ``data.path``)."""
    value: Any = params
    for part in key.split("."):
        value = getattr(value, part)
    return value
