"""Model-quality arithmetic on Test predictions: metrics, intervals, calibration, slices.

Pure NumPy on arrays of true labels and class probabilities, so each piece is tested on small
hand-made examples. ``tasks/evaluate.py`` feeds it the model's predictions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tasks.errors import StageError
from tasks.reports.evaluation import CalibrationBin, Classification, ClassMetrics, Confusion, Difference, Slice

CI_LEVEL = 0.95  # the confidence level of the bootstrap intervals
REGRESSION_CONFIDENCE = 0.95  # a regression fails the gate only when it is this certain (one-sided)
_BOOTSTRAP_CHUNK = 100  # resamples drawn at once (bounds memory: chunk x images indices)


def roc_curve(y_true: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False- and true-positive rates at every distinct threshold, from (0, 0) to (1, 1)."""
    order = np.argsort(-score, kind="stable")
    y, s = y_true[order], score[order]
    last_of_run = np.r_[np.diff(s) != 0, True]
    tps = np.cumsum(y)[last_of_run]
    fps = np.cumsum(1 - y)[last_of_run]
    pos, neg = max(y.sum(), 1), max(len(y) - y.sum(), 1)
    return np.r_[0.0, fps / neg], np.r_[0.0, tps / pos]


def shown(value: float | None, spec: str = ".4f") -> str:
    """A metric as a report shows it: ``n/a`` where it is undefined (a class absent from the images)."""
    return "n/a" if value is None else format(value, spec)


def roc_auc(y_true: np.ndarray, score: np.ndarray) -> float | None:
    """Area under the ROC curve (trapezoids; ties count half); None when ``y_true`` holds one class only."""
    if y_true.min(initial=0) == y_true.max(initial=0):
        return None
    fpr, tpr = roc_curve(y_true, score)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def log_loss(y_true: np.ndarray, probs: np.ndarray) -> float:
    """Mean negative log-probability of the true class."""
    return float(-np.log(np.clip(probs[np.arange(len(y_true)), y_true], 1e-7, 1.0)).mean())


def positive_index(class_names: list[str], positive_class: str) -> int:
    """The index of ``positive_class`` (``evaluate.positive_class``) in the model's class names.

    Raises:
        StageError: when the model has no class of that name.
    """
    if positive_class not in class_names:
        raise StageError(
            f"evaluate.positive_class: {positive_class!r} is not one of the model's classes "
            f"{class_names}; set it in params.yaml"
        )
    return class_names.index(positive_class)


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def classification_metrics(
    y_true: np.ndarray, probs: np.ndarray, class_names: list[str], positive: int
) -> Classification:
    """Accuracy, per-class precision/recall/F1, confusion matrix, log loss and ROC AUC for class ``positive``."""
    n_classes = len(class_names)
    y_pred = probs.argmax(axis=1)
    confusion = np.zeros((n_classes, n_classes), dtype=int)
    np.add.at(confusion, (y_true, y_pred), 1)
    per_class = {}
    for i, name in enumerate(class_names):
        tp, predicted, support = confusion[i, i], confusion[:, i].sum(), confusion[i, :].sum()
        precision = float(tp / predicted) if predicted else None  # undefined: no image predicted as this class
        recall = float(tp / support) if support else None  # undefined: no image of this class
        f1 = None if precision is None or recall is None else _f1(precision, recall)
        per_class[name] = ClassMetrics(precision=precision, recall=recall, f1=f1, support=int(support))
    return Classification(
        accuracy=float((y_pred == y_true).mean()),
        per_class=per_class,
        confusion_matrix=Confusion(labels=class_names, rows_true_columns_predicted=confusion.tolist()),
        log_loss=log_loss(y_true, probs),
        roc_auc=roc_auc((y_true == positive).astype(int), probs[:, positive]),
        roc_positive_class=class_names[positive],
        images=int(len(y_true)),
    )


def _bootstrap(
    y_true: np.ndarray, corrects: list[np.ndarray], n_classes: int, samples: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Accuracy and per-class recall of each ``correct`` array on the same resamples of the images.

    Each resample draws ``len(y_true)`` images with replacement, the same images for every array
    (so differences between them are paired). A class absent from a resample gives NaN recall.

    Returns:
        One ``(accuracy [samples], recall [samples, n_classes])`` per array in ``corrects``.
    """
    rng = np.random.default_rng(seed)
    n = len(y_true)
    out: list[tuple[list, list]] = [([], []) for _ in corrects]
    for start in range(0, samples, _BOOTSTRAP_CHUNK):
        idx = rng.integers(0, n, (min(_BOOTSTRAP_CHUNK, samples - start), n))
        of_class = y_true[idx][..., None] == np.arange(n_classes)  # [resample, image, class]
        for (accuracy, recall), correct in zip(out, corrects):
            hit = correct[idx]
            accuracy.append(hit.mean(axis=1))
            with np.errstate(invalid="ignore", divide="ignore"):
                recall.append((of_class & hit[..., None]).sum(axis=1) / of_class.sum(axis=1))
    return [(np.concatenate(a), np.concatenate(r)) for a, r in out]


def _floats(values: np.ndarray) -> list[float]:
    return [float(v) for v in values]


def _nan_interval(values: np.ndarray, tails: list[float]) -> list[float]:
    """The percentiles of the defined ``values``; no interval ([]) where none is defined (a class never drawn)."""
    return _floats(np.nanpercentile(values, tails)) if not np.isnan(values).all() else []


@dataclass(frozen=True)
class Intervals:
    """Percentile-bootstrap intervals of accuracy and of each class's recall (in class order)."""

    level: float
    samples: int
    accuracy: list[float]
    recall: list[list[float]]


def bootstrap_intervals(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int, samples: int, seed: int) -> Intervals:
    """Percentile-bootstrap 95% intervals for accuracy and each class's recall.

    A class absent from a resample is left out of that class's interval for that resample.
    """
    ((accuracy, recall),) = _bootstrap(y_true, [y_true == y_pred], n_classes, samples, seed)
    tails = [50 * (1 - CI_LEVEL), 100 - 50 * (1 - CI_LEVEL)]
    return Intervals(
        level=CI_LEVEL,
        samples=samples,
        accuracy=_floats(np.percentile(accuracy, tails)),
        recall=[_nan_interval(recall[:, k], tails) for k in range(n_classes)],
    )


def paired_differences(
    y_true: np.ndarray,
    candidate_correct: np.ndarray,
    baseline_correct: np.ndarray,
    class_names: list[str],
    samples: int,
    seed: int,
) -> dict[str, Difference]:
    """Candidate minus baseline, per image on the same Test images: accuracy and each class's recall.

    Paired bootstrap: each resample draws the same images for both models, so the noise the two
    share (which images are hard) cancels out. The interval runs from the 5th to the 95th
    percentile; its upper end is the one-sided 95% bound the regression checks use.

    Returns:
        ``{"accuracy": ..., "<class> recall": ...}``, each a :class:`Difference`.
    """
    (acc_c, rec_c), (acc_b, rec_b) = _bootstrap(
        y_true, [candidate_correct, baseline_correct], len(class_names), samples, seed
    )
    tails = [100 * (1 - REGRESSION_CONFIDENCE), 100 * REGRESSION_CONFIDENCE]

    def observed(correct: np.ndarray, k: int | None) -> float:
        return float(correct.mean() if k is None else correct[y_true == k].mean())

    out = {
        "accuracy": Difference(
            difference=observed(candidate_correct, None) - observed(baseline_correct, None),
            interval=_floats(np.percentile(acc_c - acc_b, tails)),
        )
    }
    for k, name in enumerate(class_names):
        if (y_true == k).any():
            out[f"{name} recall"] = Difference(
                difference=observed(candidate_correct, k) - observed(baseline_correct, k),
                interval=_nan_interval(rec_c[:, k] - rec_b[:, k], tails),
            )
    return out


def calibration(y_true: np.ndarray, probs: np.ndarray, bins: int, positive: int) -> tuple[float, list[CalibrationBin]]:
    """Expected calibration error of the positive class's probability, and the reliability table.

    ECE = sum over bins of (images in bin / all images) * |share of positives in bin - mean predicted
    probability in bin|, over equal-width bins of the predicted probability of class ``positive``;
    a bin holds probabilities in (lo, hi] (the first also 0).
    """
    confidence, correct = probs[:, positive], y_true == positive
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    table, ece = [], 0.0
    for b in range(bins):
        members = which == b
        count = int(members.sum())
        if not count:
            continue
        conf, acc = float(confidence[members].mean()), float(correct[members].mean())
        ece += count / len(y_true) * abs(acc - conf)
        table.append(
            CalibrationBin(lo=float(edges[b]), hi=float(edges[b + 1]), images=count, predicted=conf, observed=acc)
        )
    return float(ece), table


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Softmax of log-probabilities divided by ``temperature`` (the argmax never changes)."""
    logits = np.log(np.clip(probs, 1e-12, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(y_true: np.ndarray, probs: np.ndarray, lo: float = 0.05, hi: float = 20.0) -> float:
    """The temperature minimising log loss on (y_true, probs).

    The loss is convex in 1/T, so a golden-section search over 1/T in [1/hi, 1/lo] finds it.
    """
    a, b = 1.0 / hi, 1.0 / lo
    ratio = (np.sqrt(5) - 1) / 2

    def loss(inverse: float) -> float:
        return log_loss(y_true, apply_temperature(probs, 1.0 / inverse))

    c, d = b - ratio * (b - a), a + ratio * (b - a)
    for _ in range(80):
        if loss(c) < loss(d):
            b, d = d, c
            c = b - ratio * (b - a)
        else:
            a, c = c, d
            d = a + ratio * (b - a)
    return float(2.0 / (a + b))


def quantile_slices(name: str, values: np.ndarray, correct: np.ndarray, bins: int, unit: str) -> list[Slice]:
    """Accuracy per quantile bin of ``values`` (about equal counts; ties keep equal values together)."""
    edges = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)))
    edges = np.r_[edges, edges[-1]] if len(edges) == 1 else edges  # all values equal: one bin
    which = np.searchsorted(edges[1:-1], values, side="right")
    rows = []
    for b in range(len(edges) - 1):
        members = which == b
        if members.any():
            close = "]" if b == len(edges) - 2 else ")"
            rows.append(
                Slice(
                    slice=name,
                    bin=f"[{edges[b]:.4g}, {edges[b + 1]:.4g}{close} {unit}",
                    images=int(members.sum()),
                    accuracy=float(correct[members].mean()),
                )
            )
    return rows


def class_slices(y_true: np.ndarray, correct: np.ndarray, class_names: list[str]) -> list[Slice]:
    """Accuracy per true class (that class's recall), with counts."""
    return [
        Slice(
            slice="class",
            bin=name,
            images=int((y_true == k).sum()),
            accuracy=float(correct[y_true == k].mean()) if (y_true == k).any() else None,
        )
        for k, name in enumerate(class_names)
    ]
