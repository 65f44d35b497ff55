"""Every data path of the pipeline, named once.

``dvc.yaml`` repeats these strings (it cannot import Python); ``tests/code/test_paths.py``
checks that each stage's deps and outs there are exactly the ones declared here.
All paths are relative to the repository root, so that DVC and the code agree.
"""

from __future__ import annotations

from dataclasses import dataclass

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

SHARD_GLOB = "{split}-*.tfrecord"

# train
MODEL_DIR = "models/model"  # the exported SavedModel, with class_names.json inside it
TRAINING_INFO_NAME = "training.json"  # inside MODEL_DIR: backbone handle, params, final epoch
HISTORY = "models/history.json"  # per-epoch metrics of both phases (a DVC plot)
TENSORBOARD_DIR = "models/tensorboard"
CURVES = "models/training_curves.png"
CHECKPOINTS_DIR = "data/checkpoints"  # not a DVC out: it must survive DVC clearing the outs
BACKBONES_DIR = "data/backbones"  # built-in backbones exported as SavedModels (a cache)

# evaluate
METRICS = "reports/metrics.json"
PREDICTIONS = "reports/predictions.csv"  # one row per Test image (also the confusion-matrix plot)
ROC = "reports/roc.json"
FIGURES_DIR = "reports/figures"  # confusion, ROC, reliability and sample-prediction PNGs
MODEL_CARD = "reports/model_card.md"
SOURCE_FILE = f"{RAW_DIR}/{SOURCE_NAME}"  # read by evaluate for the model card
VALIDATION_REPORT = f"{VALIDATION_DIR}/{REPORT_NAME}"

# promote: the blessed model, the baseline of the next gate (DVC-tracked, kept between runs)
BLESSED_DIR = "models/blessed"
BLESSED_MODEL = f"{BLESSED_DIR}/model"  # a copy of the promoted models/model
BLESSED_METRICS = f"{BLESSED_DIR}/metrics.json"  # its reports/metrics.json at promotion
BLESSED_POINTER = f"{BLESSED_DIR}/blessed.json"  # which model (fingerprint), when, with what verdict


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
    "preprocess": StageIO(deps=(RAW_DIR, VALIDATION_DIR), outs=(PROCESSED_DIR,)),
    "train": StageIO(deps=(PROCESSED_DIR,), outs=(MODEL_DIR, TENSORBOARD_DIR), plots=(HISTORY, CURVES)),
    # evaluate also reads BLESSED_MODEL as its baseline; that cannot be a DVC dep (promote, after it,
    # writes it), so each verdict records the fingerprint of the baseline it compared against.
    "evaluate": StageIO(deps=(PROCESSED_DIR, MODEL_DIR, SOURCE_FILE, VALIDATION_REPORT), outs=(MODEL_CARD,),
                        metrics=(METRICS,), plots=(PREDICTIONS, ROC, FIGURES_DIR)),
    "promote": StageIO(deps=(METRICS, MODEL_DIR), outs=(BLESSED_DIR,)),
}

