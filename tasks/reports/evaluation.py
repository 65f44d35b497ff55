"""The evaluate stage's report, ``reports/evaluation.json``: metrics with intervals, calibration, slices,
behaviour, and which model; also the paired difference of a metric that the gate compares."""

from __future__ import annotations

from dataclasses import dataclass, field

from tasks.reports.training import TrainingInfo


@dataclass(frozen=True)
class ClassMetrics:
    """One class's metrics on the split; None where undefined (no image of the class, or none predicted as it)."""

    precision: float | None
    recall: float | None
    f1: float | None
    support: int
    recall_ci95: list[float] = field(default_factory=list)  # [] where recall is undefined


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
    accuracy: float | None  # None for a class with no image


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
    roc_auc: float | None  # None when the split holds one class only
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


@dataclass(frozen=True)
class Difference:
    """Candidate minus production on the same Test images, with its 90% paired-bootstrap interval."""

    difference: float
    interval: list[float]
