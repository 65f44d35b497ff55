"""Section ``audit`` (read by the label audit): how the labels are checked against the data."""

from __future__ import annotations

from dataclasses import dataclass

from tasks.params.fields import MAX_SEED, number


@dataclass(frozen=True)
class AuditParams:
    """Section ``audit``: K-fold cross-validation of a light head on the features, then confident learning."""

    folds: int = number(5, lo=2, hi=20)  # every Train/Validation image is predicted by a head that did not see it
    regularization: float = number(1.0, lo=1e-6, hi=1e6)  # C of the logistic regression (smaller: stronger)
    grid_images: int = number(16, lo=0, hi=64)  # the top suspects shown in reports/label_issues.png
    seed: int = number(42, lo=0, hi=MAX_SEED)
