"""The reports that one stage writes and another reads, each defined once, with a version.

Each report is a frozen dataclass (TFX passes typed artifacts, not bags of keys): the data's source
(download), the validation report and its drift record (validate), the training record (train), the
evaluation (evaluate), the gate's verdict and the blessed model's pointer (promote). :func:`write`
puts one on disk as indented, key-sorted JSON (byte-reproducible, readable); :func:`read` builds it
back and refuses, in one line, a file of another version or shape, saying what to do. Renaming a
field is a change here, and every reader fails where it uses the old name. The DVC metrics file
(``reports/metrics.json``) is not one of these: it stays a flat table of headline numbers
(``tasks.gate.headline``) for ``dvc metrics`` and ``dvc exp show``.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tasks import files
from tasks.errors import StageError

R = TypeVar("R")


# --- download: data/raw/SOURCE.json ------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Source:
    """``data/raw/SOURCE.json``: where the data came from (promote and the model card read it)."""

    source: str  # synthetic, local or kaggle
    archive: str
    sha256: str
    bytes: int
    images: int
    skipped_junk_files: int
    counts: dict[str, dict[str, int]]  # split -> class -> images
    slug: str | None = None  # kaggle: owner/dataset
    dataset_version: int | None = None  # kaggle: the dataset's version number
    last_updated: str | None = None  # kaggle
    path: str | None = None  # local: the zip or folder it was copied from
    seed: int | None = None  # synthetic
    note: str | None = None
    version: int = 1


# --- validate: data/validation/report.json and drift.json -------------------------------------------


@dataclass(frozen=True)
class Expectation:
    """One Great Expectations result: what was checked (and why), and the first offenders."""

    table: str  # files, groups or drift
    type: str
    column: str | None
    intent: str
    success: bool
    unexpected_count: int
    found: list[str]
    offenders: list[str]


@dataclass(frozen=True)
class Dropped:
    """An undecodable file left out (up to ``validate.max_dropped``)."""

    path: str
    error: str


@dataclass(frozen=True)
class NearDuplicate:
    """Two files in different splits that are the same picture after a small change."""

    a: str
    b: str
    distance: int
    correlation: float
    orientation: str = "as is"  # how b is turned relative to a (near_duplicates.ORIENTATIONS)
    check: str = "colour"  # the pixel check that matched (near_duplicates.THRESHOLDS)


@dataclass(frozen=True)
class NearDuplicates:
    pairs: int
    first: list[NearDuplicate]


@dataclass(frozen=True)
class FeatureProfile:
    """Decile cut points of one measured feature and the share of images between them."""

    cuts: list[float]
    shares: list[float]


@dataclass(frozen=True)
class DataProfile:
    """A dataset's summary: the reference of later drift checks."""

    images: int
    class_shares: dict[str, float]
    features: dict[str, FeatureProfile]


@dataclass(frozen=True)
class ValidationReport:
    """``data/validation/report.json``: what validate found (preprocess takes the label map from it)."""

    success: bool
    class_names: list[str]
    images: int
    kept: int
    skipped_junk_files: int
    dropped: list[Dropped]
    counts: dict[str, int]  # "<split>/<class>" -> images
    expectations: list[Expectation]
    failed: list[Expectation]
    data_docs: str  # the Data Docs' index.html, relative to the report's folder
    profile: DataProfile
    near_duplicates: NearDuplicates
    version: int = 1


@dataclass(frozen=True)
class DriftRow:
    """One compared quantity: its population stability index and the shares it came from."""

    feature: str
    psi: float
    reference: list[float]
    current: list[float]
    bins: list[str]


@dataclass(frozen=True)
class Drift:
    """``data/validation/drift.json``: the data against the blessed model's training data."""

    scope: str  # in words: against what, or why there is no reference
    max_psi: float
    passed: bool
    rows: list[DriftRow]
    version: int = 1


# --- train and evaluate: models/model/training.json, reports/evaluation.json ---------------------


@dataclass(frozen=True)
class ClassMetrics:
    precision: float
    recall: float
    f1: float
    support: int
    recall_ci95: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Confusion:
    labels: list[str]
    rows_true_columns_predicted: list[list[int]]


@dataclass(frozen=True)
class Bootstrap:
    samples: int
    level: float
    seed: int


@dataclass(frozen=True)
class CalibrationBin:
    """Predictions whose positive-class probability is in (lo, hi]: how many, predicted and observed share."""

    lo: float
    hi: float
    images: int
    predicted: float
    observed: float


@dataclass(frozen=True)
class TemperatureScaling:
    """A temperature fitted on Validation and its effect on Test (reported only, never applied)."""

    temperature: float
    fitted_on: str
    validation_images: int
    test_ece_before: float
    test_ece_after: float
    test_log_loss_before: float
    test_log_loss_after: float
    applied_to_model: bool


@dataclass(frozen=True)
class Calibration:
    ece: float
    bins: list[CalibrationBin]
    temperature_scaling: TemperatureScaling | None = None


@dataclass(frozen=True)
class Slice:
    """Accuracy on one slice of the Test images (a class, a brightness or JPEG-size bin)."""

    slice: str
    bin: str
    images: int
    accuracy: float


@dataclass(frozen=True)
class BlankCheck:
    colour: str
    rgb: list[int]
    label: str
    probability: float


@dataclass(frozen=True)
class Behaviour:
    """How often a mirror image or a small brightness change flips the prediction; blank images."""

    images: int
    flip_changed: float
    brightness_delta: float
    brightness_changed: float
    blank: list[BlankCheck]


@dataclass(frozen=True, kw_only=True)
class TrainingInfo:
    """``training.json`` inside the exported model: what it was trained with (evaluate reads it)."""

    handle: str
    image_size: int
    model: dict[str, Any]  # the model params section, as trained
    train: dict[str, Any]  # the train params section, as trained
    train_images: int
    validation_images: int
    final_epoch: dict[str, Any]  # the last row of models/history.json
    # files.tree_hash of the backbone's SavedModel folder (a URL's download or a local folder); None for a
    # built-in, which is exported on each machine from its seed and is not byte-stable
    backbone_sha256: str | None = None
    version: int = 1


@dataclass(frozen=True, kw_only=True)
class ModelInfo(TrainingInfo):
    """Which model was evaluated: its fingerprint (sha256 of the export) and its ``training.json``."""

    fingerprint: str


@dataclass(frozen=True, kw_only=True)
class Classification:
    """The point estimates on a split: accuracy, per-class precision/recall/F1, confusion, log loss, ROC AUC."""

    accuracy: float
    per_class: dict[str, ClassMetrics]
    confusion_matrix: Confusion
    log_loss: float
    roc_auc: float
    roc_positive_class: str
    images: int


@dataclass(frozen=True, kw_only=True)
class Evaluation(Classification):
    """``reports/evaluation.json``: the model on the Test split (promote, the model card and the flow read it)."""

    accuracy_ci95: list[float]
    bootstrap: Bootstrap
    calibration: Calibration
    slices: list[Slice]
    behaviour: Behaviour
    precision: str  # what the model computed in (tasks.precision)
    model: ModelInfo
    version: int = 1


# --- promote: reports/gate.json and models/blessed/blessed.json --------------------------------------


@dataclass(frozen=True)
class DatasetIdentity:
    source: str
    slug: str | None
    dataset_version: int | None
    sha256: str


@dataclass(frozen=True)
class ConfigIdentity:
    handle: str | None
    image_size: int | None
    class_names: list[str]
    backbone_sha256: str | None = None  # the same URL may serve other weights later (see TrainingInfo)


@dataclass(frozen=True)
class Identity:
    """What makes two models comparable: the dataset they were trained on and the configuration that matters."""

    dataset: DatasetIdentity
    config: ConfigIdentity


@dataclass(frozen=True)
class Difference:
    """Candidate minus blessed on the same Test images, with its 90% paired-bootstrap interval."""

    difference: float
    interval: list[float]


@dataclass(frozen=True)
class Check:
    """One check of the gate: ``value op threshold``; a comparison with the blessed model also has its difference."""

    name: str
    value: float
    op: str
    threshold: float
    passed: bool
    difference: float | None = None
    interval: list[float] | None = None
    gating: bool = True  # False: shown, but the verdict does not depend on it


@dataclass(frozen=True)
class Baseline:
    """The blessed model the candidate was compared with."""

    model: str
    fingerprint: str
    promoted_at: str | None
    trained_on: Identity | None
    gating: bool
    reason: str | None = None  # why it is not comparable, in words
    accuracy: float | None = None  # on the same Test images


@dataclass(frozen=True)
class Verdict:
    """``reports/gate.json``: the quality gate's verdict, each check, and the baseline."""

    passed: bool
    checks: list[Check]
    baseline: Baseline | None = None
    version: int = 1

    def failed(self) -> list[Check]:
        """The failed checks that decide the verdict."""
        return [c for c in self.checks if not c.passed and c.gating]


@dataclass(frozen=True)
class Blessed:
    """``models/blessed/blessed.json``: which model is blessed (by fingerprint), when, and with what verdict."""

    blessed: bool
    reason: str | None = None  # why nothing is blessed
    fingerprint: str | None = None
    accuracy: float | None = None
    promoted_at: str | None = None
    handle: str | None = None
    identity: Identity | None = None  # the dataset and configuration it was trained with
    gate: Verdict | None = None
    version: int = 1


# --- audit: reports/label_audit.json -------------------------------------------------------------------


@dataclass(frozen=True)
class LabelAudit:
    """What the label audit found: images and flagged labels per split (and given class)."""

    images: dict[str, int]
    flagged: dict[str, dict[str, int]]  # split -> given class -> labels flagged
    folds: int
    method: str = "cleanlab.filter.find_label_issues on out-of-sample probabilities of a logistic regression"
    version: int = 1

    def total(self, split: str) -> int:
        """Labels flagged in ``split``."""
        return sum(self.flagged.get(split, {}).values())


# reports/label_issues.csv, most suspect first
LABEL_ISSUE_COLUMNS = ["path", "split", "given_label", "suggested_label", "given_label_probability"]


def label_issue_paths(path: Path, split: str) -> set[str]:
    """The dataset paths of ``split``'s flagged images in the audit's ``label_issues.csv``."""
    import csv

    try:
        with Path(path).open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames != LABEL_ISSUE_COLUMNS:
                raise StageError(f"{path}: columns {reader.fieldnames}, expected {LABEL_ISSUE_COLUMNS}; rerun audit")
            return {row["path"] for row in reader if row["split"] == split}
    except FileNotFoundError:
        raise StageError(f"{path}: not found; run the audit stage first (dvc repro audit)") from None


# --- on disk ------------------------------------------------------------------------------------------


class VersionError(StageError):
    """A report written by another version of the pipeline (or before reports had versions)."""


def write(path: Path, report: Any) -> None:
    """Write ``report`` as indented, key-sorted JSON (the same report, the same bytes)."""
    files.write_json(path, dataclasses.asdict(report))


def read(path: Path, cls: type[R], stage: str, remedy: str = "") -> R:
    """Read the ``cls`` report at ``path``, which the ``stage`` stage writes.

    ``remedy`` says what to do about a bad file (default: rerun ``stage``).

    Raises:
        VersionError: in one line, for a report of another version.
        StageError: in one line, when the file is missing, not JSON, or of another shape.
    """
    remedy = remedy or f"rerun the {stage} stage (dvc repro -f -s {stage})"
    try:
        with Path(path).open(encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise StageError(f"{path}: not found; run the {stage} stage first (dvc repro {stage})") from None
    except json.JSONDecodeError as exc:
        raise StageError(f"{path}: unreadable, not valid JSON ({exc}); {remedy}") from None
    expected = {f.name: f.default for f in dataclasses.fields(cls)}["version"]
    found = data.get("version") if isinstance(data, dict) else None
    if found != expected:
        raise VersionError(
            f"{path}: version {found} of the {cls.__name__} report, and this code reads version {expected}; {remedy}"
        )
    try:
        return _build(cls, data)
    except (TypeError, ValueError) as exc:
        raise StageError(f"{path}: unreadable, not a {cls.__name__} ({exc}); {remedy}") from None


def _build(tp: Any, value: Any) -> Any:
    """``value`` (parsed JSON) as the annotation ``tp``: dataclasses, lists, dicts and optionals built in turn."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise TypeError(f"{tp.__name__}: expected an object, got {type(value).__name__}")
        hints = typing.get_type_hints(tp)
        names = {f.name for f in dataclasses.fields(tp)}
        unknown = sorted(set(value) - names)
        if unknown:
            raise ValueError(f"{tp.__name__}: unknown key {unknown[0]!r}")
        return tp(**{k: _build(hints[k], v) for k, v in value.items()})
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _build(inner[0], value) if len(inner) == 1 else value
    if origin is list:
        if not isinstance(value, list):
            raise TypeError(f"expected a list, got {type(value).__name__}")
        return [_build(args[0], v) for v in value]
    if origin is dict:
        if not isinstance(value, dict):
            raise TypeError(f"expected an object, got {type(value).__name__}")
        return {k: _build(args[1], v) for k, v in value.items()}
    return value
