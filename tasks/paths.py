"""Every data path of the pipeline, named once.

``dvc.yaml`` repeats these strings (it cannot import Python); ``tests/code/test_paths.py``
checks that each stage's deps and outs there are exactly the ones declared here.
All paths are relative to the repository root, so that DVC and the code agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PARAMS_FILE = "params.yaml"

# download
RAW_DIR = "data/raw"
RAW_ARCHIVE_NAME = "Dataset.zip"  # the dataset, kept as one archive (DVC hashes one file, not 200K)
SOURCE_NAME = "SOURCE.json"  # where the data came from: source, slug, version, sha256, counts
DATASET_TOP = "Dataset"  # the archive's top folder in the Kaggle layout
SPLITS = ("Train", "Validation", "Test")

# validate
VALIDATION_DIR = "data/validation"
REPORT_NAME = "report.json"
MANIFEST_NAME = "manifest.csv"
DATA_DOCS_NAME = "data_docs"

# preprocess
PROCESSED_DIR = "data/processed"
CLASS_NAMES_NAME = "class_names.json"  # the one label map; travels with the model
PREPROCESS_SUMMARY_NAME = "summary.json"

# train
MODELS_DIR = "models"
SAVED_MODEL_NAME = "saved_model"
HISTORY_NAME = "history.json"
TENSORBOARD_NAME = "tensorboard"
CURVES_NAME = "training_curves.png"
CHECKPOINTS_DIR = "data/checkpoints"  # not a DVC out: it must survive DVC clearing models/
BACKBONES_DIR = "data/backbones"  # built-in backbones exported as SavedModels (a cache)

# evaluate
REPORTS_DIR = "reports"
METRICS_NAME = "metrics.json"
PREDICTIONS_NAME = "predictions.csv"


@dataclass(frozen=True)
class StageIO:
    """The files a stage reads (deps, code excluded) and writes (outs)."""

    deps: tuple[str, ...]
    outs: tuple[str, ...]
    metrics: tuple[str, ...] = ()
    plots: tuple[str, ...] = ()


# The data flow between stages, as dvc.yaml must declare it (code deps are listed there too).
STAGES: dict[str, StageIO] = {
    "download": StageIO(deps=(), outs=(RAW_DIR,)),
    "validate": StageIO(deps=(RAW_DIR,), outs=(VALIDATION_DIR,)),
}


def under(root: Path | str, rel: str) -> Path:
    """Return ``rel`` (one of the names above) resolved under the repository ``root``."""
    return Path(root) / rel
