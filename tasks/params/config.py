"""All of params.yaml, loaded once and checked.

Only the entry points (``tasks.run``, the flows) load the whole file; a stage imports the module of
its own sections, so DVC reruns it for a change to those and to nothing else.
Nothing else in the project opens params.yaml.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tasks import paths
from tasks.errors import ParamsError
from tasks.params.data import DataParams
from tasks.params.evaluate import EvaluateParams
from tasks.params.fields import build
from tasks.params.model import ModelParams
from tasks.params.preprocess import PreprocessParams
from tasks.params.promote import PromoteParams
from tasks.params.train import TrainParams
from tasks.params.validate import ValidateParams


@dataclass(frozen=True)
class Params:
    """All of params.yaml."""

    data: DataParams = field(default_factory=DataParams)
    validate: ValidateParams = field(default_factory=ValidateParams)
    preprocess: PreprocessParams = field(default_factory=PreprocessParams)
    model: ModelParams = field(default_factory=ModelParams)
    train: TrainParams = field(default_factory=TrainParams)
    evaluate: EvaluateParams = field(default_factory=EvaluateParams)
    promote: PromoteParams = field(default_factory=PromoteParams)

    def check(self, where: str) -> None:
        if self.evaluate.positive_class not in self.validate.class_names:
            raise ParamsError(
                f"evaluate.positive_class: {self.evaluate.positive_class!r} is not one of "
                f"validate.class_names {self.validate.class_names}"
            )


def parse(raw: Any, source: str = paths.PARAMS_FILE) -> Params:
    """Build :class:`Params` from an already-parsed mapping; errors name ``source`` and the key."""
    try:
        return build(Params, raw, "")
    except ParamsError as exc:
        raise ParamsError(f"{source}: {exc}") from None


def load(path: Path | str = paths.PARAMS_FILE) -> Params:
    """Load and check params.yaml (or another params file)."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8") as fh:
            raw = yaml.safe_load(fh)
    except FileNotFoundError:
        raise ParamsError(f"{path}: not found; run from the repository root or pass --params") from None
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML: {exc}") from None
    if raw is None:  # an empty file would silently mean "all defaults"
        raise ParamsError(
            f"{path}: empty; it must hold the pipeline's sections (restore it: git checkout {path}, "
            "or cp configs/kaggle.yaml for the real configuration)"
        )
    return parse(raw, str(path))
