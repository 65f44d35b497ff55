"""Every data path of the pipeline and the flows, named once.

Each stage's contract (``STAGE`` in ``tasks/<stage>.py``) names the ones it reads and writes, and
``dvc.yaml`` is generated from the contracts, so DVC and the code agree by construction.
All paths are relative to the repository root.
"""

from __future__ import annotations

PARAMS_FILE = "params.yaml"

# download
RAW_DIR = "data/raw"
RAW_ARCHIVE_NAME = "Dataset.zip"  # the dataset, kept as one archive (DVC hashes one file, not 200K)
SOURCE_NAME = "SOURCE.json"  # where the data came from: source, slug, version, sha256, counts
DATASET_TOP = "Dataset"  # the archive's top folder in the Kaggle layout
SPLITS = ("Train", "Validation", "Test")
NOISE_KEY_NAME = "label_noise_key.csv"  # synthetic label_noise's answer key (no stage reads it)
DOWNLOADS_DIR = "data/downloads"  # a Kaggle download in progress (not a DVC output: it survives a failed run)

# validate: the report and manifest are byte-reproducible (later stages read them); the GX context
# and Data Docs carry run times, so they are separate outputs that no stage reads
VALIDATION_DIR = "data/validation"
VALIDATION_REPORT = f"{VALIDATION_DIR}/report.json"
MANIFEST = f"{VALIDATION_DIR}/manifest.csv"
GX_DIR = f"{VALIDATION_DIR}/gx"  # the Great Expectations File Data Context
DATA_DOCS = f"{VALIDATION_DIR}/data_docs"  # its Data Docs site (index.html)
DRIFT = f"{VALIDATION_DIR}/drift.json"  # the comparison with the production model's data (PSI per feature)

# preprocess
PROCESSED_DIR = "data/processed"
CLASS_NAMES_NAME = "class_names.json"  # the one label map; travels with the model
PREPROCESS_SUMMARY_NAME = "summary.json"

SHARD_GLOB = "{split}-*.tfrecord"

# features: each split's backbone features (<Split>.npy) and their paths and labels (<Split>.csv)
FEATURES_DIR = "data/features"

# audit: the labels the data contradicts (confident learning on the features)
LABEL_ISSUES = "reports/label_issues.csv"  # ranked: path, split, given and suggested label, P(given)
LABEL_AUDIT = "reports/label_audit.json"  # images and flagged labels per split and class
REVIEWED_LABELS = "data/reviewed_labels.csv"  # in git: labels a person checked and kept (path, note); not flagged
LABEL_ISSUES_GRID = "reports/label_issues.png"  # the top suspects

# train
MODEL_DIR = "models/model"  # the exported SavedModel, with class_names.json inside it
TRAINING_INFO_NAME = "training.json"  # inside MODEL_DIR: backbone handle, params, final epoch
HISTORY = "models/history.json"  # per-epoch metrics of both phases (a DVC plot)
TENSORBOARD_DIR = "models/tensorboard"
CURVES = "models/training_curves.png"
CHECKPOINTS_DIR = "data/checkpoints"  # not a DVC out: it must survive DVC clearing the outs
BACKBONES_DIR = "data/backbones"  # built-in backbones exported as SavedModels (a cache)

# evaluate
EVALUATION = "reports/evaluation.json"  # the full evaluation; a function of DVC-tracked inputs only
PREDICTIONS = "reports/predictions.csv"  # one row per Test image (also the confusion-matrix plot)
ROC = "reports/roc.json"
FIGURES_DIR = "reports/figures"  # confusion, ROC, reliability and sample-prediction PNGs

# gate: the quality gate against the production model, and the model card
SOURCE_FILE = f"{RAW_DIR}/{SOURCE_NAME}"  # read by the gate for the model card
GATE = "reports/gate.json"  # the gate's verdict, checks and baseline
# the DVC metrics file (`dvc metrics show`, `dvc exp show`): the headline numbers and the verdict; in git
METRICS = "reports/metrics.json"
MODEL_CARD = "reports/model_card.md"

# the registry's production model (tasks.registry): a local copy, fetched through DVC; neither in git nor a DVC output
PRODUCTION_DIR = "models/production"
PRODUCTION_MODEL_NAME = "model"  # the model assigned to prod (dvc artifacts get . model --stage prod)
PRODUCTION_EVALUATION_NAME = "evaluation.json"  # its reports/evaluation.json, from the same commit
PRODUCTION_SOURCE_NAME = "source.json"  # its data/raw/SOURCE.json
PRODUCTION_VALIDATION_NAME = "validation.json"  # the validation report of the data it was trained on
PRODUCTION_POINTER_NAME = "production.json"  # which version and commit the folder holds
PRODUCTION_MODEL = f"{PRODUCTION_DIR}/{PRODUCTION_MODEL_NAME}"
PRODUCTION_VALIDATION = f"{PRODUCTION_DIR}/{PRODUCTION_VALIDATION_NAME}"
PRODUCTION_POINTER = f"{PRODUCTION_DIR}/{PRODUCTION_POINTER_NAME}"

# flows.predict's scheduled batch prediction (not DVC outputs)
INBOX = "data/inbox"  # where the batch-predict deployment looks for images
PREDICTIONS_OUT = "data/predictions/latest.json"  # its results
