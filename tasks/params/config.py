"""All of params.yaml, loaded once and checked.

Only the entry points (``tasks.run``, the flows) load the whole file; a stage imports the module of
its own sections, so DVC reruns it for a change to those and to nothing else.
Nothing else in the project opens params.yaml.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks import paths
from tasks.errors import ParamsError
from tasks.params import strict_yaml
from tasks.params.audit import AuditParams
from tasks.params.data import DataParams
from tasks.params.evaluate import EvaluateParams
from tasks.params.fields import build
from tasks.params.gate import GateParams
from tasks.params.model import ModelParams
from tasks.params.preprocess import PreprocessParams
from tasks.params.train import TrainParams
from tasks.params.validate import ValidateParams


@dataclass(frozen=True)
class Params:
    """All of params.yaml."""

    data: DataParams = field(default_factory=DataParams)
    validate: ValidateParams = field(default_factory=ValidateParams)
    preprocess: PreprocessParams = field(default_factory=PreprocessParams)
    model: ModelParams = field(default_factory=ModelParams)
    audit: AuditParams = field(default_factory=AuditParams)
    train: TrainParams = field(default_factory=TrainParams)
    evaluate: EvaluateParams = field(default_factory=EvaluateParams)
    gate: GateParams = field(default_factory=GateParams)

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
    """Load and check params.yaml (or another params file), read strictly (:mod:`tasks.params.strict_yaml`)."""
    return parse(read_raw(path), str(path))


def read_raw(path: Path | str = paths.PARAMS_FILE) -> dict[str, Any]:
    """The parsed mapping of a params file, unchecked beyond the strict reading."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ParamsError(f"{path}: not found; run from the repository root or pass --params") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ParamsError(f"{path}: cannot be read ({exc})") from None
    return strict_yaml.read(text, str(path))
