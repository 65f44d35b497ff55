"""Section ``gate``: the quality gate that decides whether the candidate may become the production model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tasks.params.fields import MAX_SEED, number


@dataclass(frozen=True)
class GateParams:
    """Section ``gate``: the quality gate that decides whether the candidate may become the production model."""

    batch_size: int = number(64, lo=1, hi=4096)  # for the production model's pass over Test
    min_accuracy: float = number(0.9, lo=0.0, hi=1.0)  # the gate's absolute floor on Test accuracy
    # a drop below the production model (accuracy, each recall) that fails the gate when it is 95% certain
    max_regression: float = number(0.01, lo=0.0, hi=1.0)
    # when the production model's comparison decides: same_data (trained on the same dataset with the same
    # backbone, image size and classes), always, or never; it is computed and shown in every case
    baseline: Literal["same_data", "always", "never"] = "same_data"
    bootstrap_samples: int = number(1000, lo=100, hi=100000)  # paired resamples of the Test images
    seed: int = number(42, lo=0, hi=MAX_SEED)
