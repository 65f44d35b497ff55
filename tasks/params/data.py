"""Section ``data`` (read by download): where the dataset comes from."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from tasks.errors import ParamsError
from tasks.params.fields import MAX_SEED, number

MAX_SYNTHETIC_IMAGES = 1_000_000  # per split: about an hour of generation on 2 cores and 10 GB of zip


@dataclass(frozen=True)
class SyntheticParams:
    """Size and shape of the offline synthetic face set."""

    train: int = number(2400, lo=2, hi=MAX_SYNTHETIC_IMAGES)
    validation: int = number(400, lo=2, hi=MAX_SYNTHETIC_IMAGES)
    test: int = number(400, lo=2, hi=MAX_SYNTHETIC_IMAGES)
    male_share: float = number(0.42, lo=0.05, hi=0.95)
    seed: int = number(42, lo=0, hi=MAX_SEED)
    # share of each split written under the other class's folder, for measuring the label audit; the
    # answer key goes to data/raw/label_noise_key.csv, outside the dataset, and no stage reads it
    label_noise: float = number(0.0, lo=0.0, hi=0.5)


@dataclass(frozen=True)
class DataParams:
    """Section ``data``: where the dataset comes from (read by download)."""

    source: Literal["synthetic", "local", "kaggle"] = "synthetic"
    kaggle_dataset: str = "ashishjangra27/gender-recognition-200k-images-celeba"
    path: str | None = None
    max_archive_mb: int = number(20_000, lo=1)  # a local zip larger than this is refused (the Kaggle one: 1,260)
    synthetic: SyntheticParams = field(default_factory=SyntheticParams)

    def check(self, where: str) -> None:
        if self.source == "local" and not self.path:
            raise ParamsError(
                f"{where}.path: required when {where}.source is 'local'; "
                "set it to a zip or a folder in the Kaggle layout (Dataset/Train/Male/...)"
            )
        if self.source == "local" and not Path(self.path).exists():
            raise ParamsError(
                f"{where}.path: {self.path!r} does not exist; point it at a zip or a folder in the Kaggle layout"
            )
        if self.source == "local" and not (Path(self.path).is_file() or Path(self.path).is_dir()):
            raise ParamsError(
                f"{where}.path: {self.path!r} is not a regular file or a folder (a FIFO, device or socket); "
                "point it at a zip or a folder in the Kaggle layout"
            )
        if self.kaggle_dataset.count("/") != 1:
            raise ParamsError(f"{where}.kaggle_dataset: {self.kaggle_dataset!r} is not an 'owner/dataset' slug")
