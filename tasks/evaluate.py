"""Stage ``evaluate``: the exported model on the Test split -> metrics, plots, predictions, gate.

``reports/metrics.json`` holds ``accuracy`` at the top level, per-class precision/recall/F1,
ROC AUC, log loss, the confusion matrix, the image count and the quality-gate verdict.
The model is loaded from its export (the same artifact users get), not from training memory.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tasks import dataset, paths
from tasks.cli import run_cli, stage_params
from tasks.files import atomic_dir, logger, write_json
from tasks.inference import load_model
from tasks.params import EvaluateParams, Params

log = logger("evaluate")
ROC_POINTS = 200  # the ROC curve is thinned to at most this many points for the DVC plot


@dataclass(frozen=True)
class EvaluateResult:
    """The metrics written to reports/metrics.json."""

    metrics: dict[str, Any]


def roc_curve(y_true: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False- and true-positive rates at every distinct threshold, from (0, 0) to (1, 1)."""
    order = np.argsort(-score, kind="stable")
    y, s = y_true[order], score[order]
    last_of_run = np.r_[np.diff(s) != 0, True]
    tps = np.cumsum(y)[last_of_run]
    fps = np.cumsum(1 - y)[last_of_run]
    pos, neg = max(y.sum(), 1), max(len(y) - y.sum(), 1)
    return np.r_[0.0, fps / neg], np.r_[0.0, tps / pos]


def roc_auc(y_true: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (trapezoids; ties count half)."""
    fpr, tpr = roc_curve(y_true, score)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def classification_metrics(y_true: np.ndarray, probs: np.ndarray, class_names: list[str]) -> dict[str, Any]:
    """Accuracy, per-class precision/recall/F1, confusion matrix, log loss and ROC AUC."""
    n_classes = len(class_names)
    y_pred = probs.argmax(axis=1)
    confusion = np.zeros((n_classes, n_classes), dtype=int)
    np.add.at(confusion, (y_true, y_pred), 1)
    per_class = {}
    for i, name in enumerate(class_names):
        tp = confusion[i, i]
        precision = tp / confusion[:, i].sum() if confusion[:, i].sum() else 0.0
        recall = tp / confusion[i, :].sum() if confusion[i, :].sum() else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {"precision": float(precision), "recall": float(recall), "f1": float(f1),
                           "support": int(confusion[i, :].sum())}
    picked = np.clip(probs[np.arange(len(y_true)), y_true], 1e-7, 1.0)
    positive = n_classes - 1  # ROC for the second class (Male) against the rest
    return {
        "accuracy": float((y_pred == y_true).mean()),
        "per_class": per_class,
        "confusion_matrix": {"labels": class_names, "rows_true_columns_predicted": confusion.tolist()},
        "log_loss": float(-np.log(picked).mean()),
        "roc_auc": roc_auc((y_true == positive).astype(int), probs[:, positive]),
        "roc_positive_class": class_names[positive],
        "images": int(len(y_true)),
    }


def gate(metrics: dict[str, Any], params: EvaluateParams) -> dict[str, Any]:
    """The quality gate's verdict, with each check's value and threshold."""
    checks = [{"name": "accuracy", "value": metrics["accuracy"], "op": ">=", "threshold": params.min_accuracy,
               "passed": metrics["accuracy"] >= params.min_accuracy}]
    return {"passed": all(c["passed"] for c in checks), "checks": checks}


def predict_split(model: Any, files: list[str], batch_size: int) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
    """Probabilities, labels, paths and the images themselves (for the sample grid)."""
    probs, labels, names, images = [], [], [], []
    for batch, y, path in dataset.make_dataset(files, model.image_size, batch_size, with_paths=True):
        probs.append(model.predict(batch))
        labels.append(y.numpy())
        names.extend(p.decode() for p in path.numpy())
        images.append(batch.numpy())
    return np.concatenate(probs), np.concatenate(labels), names, np.concatenate(images)


def _plots(out: Path, metrics: dict[str, Any], fpr, tpr, images, y_true, probs, class_names, n_samples: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir()
    confusion = np.array(metrics["confusion_matrix"]["rows_true_columns_predicted"])
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.imshow(confusion, cmap="Blues")
    for (i, j), n in np.ndenumerate(confusion):
        ax.text(j, i, str(n), ha="center", va="center")
    ax.set(xticks=range(len(class_names)), yticks=range(len(class_names)), xticklabels=class_names,
           yticklabels=class_names, xlabel="predicted", ylabel="true", title="Test confusion matrix")
    fig.tight_layout()
    fig.savefig(out / "confusion_matrix.png", dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot(fpr, tpr, label=f"AUC {metrics['roc_auc']:.3f}")
    ax.plot([0, 1], [0, 1], "k--", linewidth=0.5)
    ax.set(xlabel="false-positive rate", ylabel="true-positive rate", title=f"ROC ({metrics['roc_positive_class']})")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(out / "roc.png", dpi=100)
    plt.close(fig)

    n = min(n_samples, len(images))
    if n:
        cols = min(n, 8)
        rows = -(-n // cols)
        fig, axes = plt.subplots(rows, cols, figsize=(2 * cols, 2.3 * rows), squeeze=False)
        for k, ax in enumerate(axes.flat):
            ax.axis("off")
            if k >= n:
                continue
            pred = int(probs[k].argmax())
            ok = pred == y_true[k]
            ax.imshow(images[k])
            ax.set_title(f"true {class_names[y_true[k]]}\npred {class_names[pred]} {probs[k, pred]:.2f}"
                         + ("" if ok else " ✗"), color="green" if ok else "red", fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "sample_predictions.png", dpi=100)
        plt.close(fig)


def evaluate(processed: Path, model_dir: Path, root: Path, params: EvaluateParams) -> EvaluateResult:
    """Evaluate the exported model on the Test shards; write everything under ``root/reports``."""
    model = load_model(model_dir)
    probs, y_true, names, images = predict_split(model, dataset.shard_files(processed, "Test"), params.batch_size)
    metrics = classification_metrics(y_true, probs, model.class_names)
    metrics["gate"] = gate(metrics, params)
    fpr, tpr = roc_curve((y_true == len(model.class_names) - 1).astype(int), probs[:, -1])
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(len(fpr), ROC_POINTS)).astype(int))

    reports = (root / paths.METRICS).parent
    with atomic_dir(reports) as tmp:
        write_json(tmp / Path(paths.METRICS).name, metrics)
        write_json(tmp / Path(paths.ROC).name, [{"fpr": float(fpr[i]), "tpr": float(tpr[i])} for i in keep])
        with (tmp / Path(paths.PREDICTIONS).name).open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["path", "true_label", "predicted_label", "probability"])
            for name, t, p in zip(names, y_true, probs):
                writer.writerow([name, model.class_names[t], model.class_names[p.argmax()], f"{p.max():.6f}"])
        _plots(tmp / Path(paths.FIGURES_DIR).name, metrics, fpr, tpr, images, y_true, probs, model.class_names,
               params.sample_images)
    verdict = "passed" if metrics["gate"]["passed"] else "FAILED"
    print(f"Test accuracy: {metrics['accuracy']:.4f} on {metrics['images']} images "
          f"(ROC AUC {metrics['roc_auc']:.4f}); quality gate {verdict} (min_accuracy {params.min_accuracy})")
    return EvaluateResult(metrics)


def run(root: Path, params: Params) -> EvaluateResult:
    """Run the stage on the repository at ``root`` (the paths of tasks/paths.py, under ``root``)."""
    return evaluate(root / paths.PROCESSED_DIR, root / paths.MODEL_DIR, root, params.evaluate)


def main(argv: list[str] | None = None) -> None:
    """``python -m tasks.evaluate``: run the stage with params.yaml, as dvc.yaml does."""
    run(Path("."), stage_params(argv, __doc__))


if __name__ == "__main__":
    run_cli(main)
