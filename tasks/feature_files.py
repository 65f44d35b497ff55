"""The features stage's files: each split's vectors (``<Split>.npy``) and their paths and labels (``<Split>.csv``).

Apart from the stage (``tasks/features.py``), so that what reads them (train, the audit) does not
depend on the backbone code that computes them.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tasks.errors import StageError
from tasks.files import write_csv


@dataclass(frozen=True)
class SplitFeatures:
    """One split's feature vectors, label indices and dataset paths, row by row."""

    x: np.ndarray
    y: np.ndarray
    paths: list[str]

    def without(self, excluded: set[str]) -> SplitFeatures:
        """The rows whose path is not in ``excluded``."""
        keep = [i for i, p in enumerate(self.paths) if p not in excluded]
        return SplitFeatures(self.x[keep], self.y[keep], [self.paths[i] for i in keep])


def save(rows: SplitFeatures, folder: Path, split: str) -> None:
    """Write one split's rows into ``folder`` (the same rows, the same bytes)."""
    np.save(folder / f"{split}.npy", rows.x, allow_pickle=False)
    write_csv(folder / f"{split}.csv", ["path", "label"], zip(rows.paths, rows.y.tolist()))


def load(features_dir: Path, split: str) -> SplitFeatures:
    """A split's features as the stage wrote them."""
    try:
        x = np.load(features_dir / f"{split}.npy")
        with (features_dir / f"{split}.csv").open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except FileNotFoundError as e:
        raise StageError(f"{e.filename}: missing; run the features stage first (dvc repro features)") from e
    if len(rows) != len(x):
        raise StageError(f"{features_dir}/{split}: {len(x)} feature rows but {len(rows)} index rows; rerun features")
    return SplitFeatures(x, np.array([int(r["label"]) for r in rows], dtype=np.int64), [r["path"] for r in rows])
