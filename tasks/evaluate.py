"""Stage ``evaluate``: the exported model on the Test split -> metrics and plots.

``reports/evaluation.json`` holds ``accuracy`` at the top level, per-class precision/recall/F1 with
bootstrap 95% intervals, ROC AUC, log loss, the confusion matrix, calibration (ECE, reliability
table, temperature scaling fitted on Validation), slices (class, brightness, JPEG size) and
behaviour checks (flip, brightness, blank images). The model is loaded from its export (the same
artifact users get), not from training memory. Everything here is a function of DVC-tracked inputs
(the same model and data give the same bytes); the comparison with the production model is the gate's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from tasks import dataset, metrics, paths, precision, reports
from tasks.contract import Output, Stage, StageResult
from tasks.errors import logger
from tasks.files import atomic_outputs, tree_hash, write_csv, write_json
from tasks.inference import LoadedModel, SplitPredictions, load_model, predict_split
from tasks.params.evaluate import EvaluateParams
from tasks.reports.evaluation import (
    Behaviour,
    BlankCheck,
    Bootstrap,
    Calibration,
    Evaluation,
    ModelInfo,
    TemperatureScaling,
)
from tasks.reports.training import TrainingInfo

log = logger("evaluate")
ROC_POINTS = 200  # the ROC curve is thinned to at most this many points for the DVC plot
# uniform images for the blank-image behaviour check: greys and colours (flows.predict refuses them all)
BLANK_COLOURS = {
    "black": (0, 0, 0),
    "grey": (128, 128, 128),
    "white": (255, 255, 255),
    "red": (255, 0, 0),
    "skin tone": (224, 172, 105),
    "blue": (40, 80, 200),
}


@dataclass(frozen=True)
class EvaluateResult(StageResult):
    """The evaluation written to reports/evaluation.json."""

    evaluation: Evaluation


def behaviour(model: LoadedModel, pred: SplitPredictions, delta: float) -> Behaviour:
    """How often a mirror image or a small brightness change flips the prediction; blank images."""
    label = pred.probs.argmax(axis=1)
    up, down = pred.shifted
    blanks = model.predict(
        np.stack([np.full((model.image_size, model.image_size, 3), rgb, np.uint8) for rgb in BLANK_COLOURS.values()])
    )
    return Behaviour(
        images=int(len(label)),
        flip_changed=float((pred.flipped.argmax(axis=1) != label).mean()),
        brightness_delta=delta,
        brightness_changed=float(((up.argmax(axis=1) != label) | (down.argmax(axis=1) != label)).mean()),
        blank=[
            BlankCheck(colour=name, rgb=list(rgb), label=model.class_names[int(p.argmax())], probability=float(p.max()))
            for (name, rgb), p in zip(BLANK_COLOURS.items(), blanks)
        ],
    )


def quality(
    pred: SplitPredictions,
    class_names: list[str],
    positive: int,
    params: EvaluateParams,
    *,
    scaling: TemperatureScaling | None,
    checks: Behaviour,
    computed_in: str,
    model_info: ModelInfo,
) -> Evaluation:
    """The evaluation of one split's predictions (``positive``: a class index): metrics with intervals,
    calibration and slices, with the temperature ``scaling``, the behaviour ``checks``, the precision
    the model ``computed_in`` and which model it was."""
    point = metrics.classification_metrics(pred.y_true, pred.probs, class_names, positive)
    y_pred = pred.probs.argmax(axis=1)
    intervals = metrics.bootstrap_intervals(
        pred.y_true, y_pred, len(class_names), params.bootstrap_samples, params.seed
    )
    ece, bins = metrics.calibration(pred.y_true, pred.probs, params.calibration_bins, positive)
    correct = y_pred == pred.y_true
    per_class = {name: replace(m, recall_ci95=ci) for (name, m), ci in zip(point.per_class.items(), intervals.recall)}
    return Evaluation(
        **vars(replace(point, per_class=per_class)),
        accuracy_ci95=intervals.accuracy,
        bootstrap=Bootstrap(samples=intervals.samples, level=intervals.level, seed=params.seed),
        calibration=Calibration(ece=ece, bins=bins, temperature_scaling=scaling),
        slices=(
            metrics.class_slices(pred.y_true, correct, class_names)
            + metrics.quantile_slices("brightness", pred.brightness, correct, params.slice_bins, "luma")
            + metrics.quantile_slices("jpeg_size", pred.jpeg_kb, correct, params.slice_bins, "kB")
        ),
        behaviour=checks,
        precision=computed_in,
        model=model_info,
    )


def temperature_scaling(
    model: LoadedModel, processed: Path, test: SplitPredictions, positive: int, params: EvaluateParams
) -> TemperatureScaling:
    """Fit a temperature on Validation; report Test ECE and log loss before and after it."""
    val = predict_split(model, dataset.shard_files(processed, "Validation"), params.batch_size)
    t = metrics.fit_temperature(val.y_true, val.probs)
    scaled = metrics.apply_temperature(test.probs, t)
    return TemperatureScaling(
        temperature=t,
        fitted_on="Validation",
        validation_images=int(len(val.y_true)),
        test_ece_before=metrics.calibration(test.y_true, test.probs, params.calibration_bins, positive)[0],
        test_ece_after=metrics.calibration(test.y_true, scaled, params.calibration_bins, positive)[0],
        test_log_loss_before=metrics.log_loss(test.y_true, test.probs),
        test_log_loss_after=metrics.log_loss(test.y_true, scaled),
        applied_to_model=False,
    )


def _save(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def confusion_figure(evaluation: Evaluation, path: Path) -> None:
    """The Test confusion matrix, counts in each cell."""
    import matplotlib.pyplot as plt

    names = evaluation.confusion_matrix.labels
    confusion = np.array(evaluation.confusion_matrix.rows_true_columns_predicted)
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.imshow(confusion, cmap="Blues")
    for (i, j), n in np.ndenumerate(confusion):
        ax.text(j, i, str(n), ha="center", va="center")
    ax.set(
        xticks=range(len(names)),
        yticks=range(len(names)),
        xticklabels=names,
        yticklabels=names,
        xlabel="predicted",
        ylabel="true",
        title="Test confusion matrix",
    )
    _save(fig, path)


def roc_figure(evaluation: Evaluation, fpr: np.ndarray, tpr: np.ndarray, path: Path) -> None:
    """The ROC curve of the positive class, with its AUC."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot(fpr, tpr, label=f"AUC {metrics.shown(evaluation.roc_auc, '.3f')}")
    ax.plot([0, 1], [0, 1], "k--", linewidth=0.5)
    ax.set(xlabel="false-positive rate", ylabel="true-positive rate", title=f"ROC ({evaluation.roc_positive_class})")
    ax.legend(loc="lower right")
    _save(fig, path)


def reliability_figure(evaluation: Evaluation, path: Path) -> None:
    """The reliability diagram: observed share against mean predicted probability, per bin."""
    import matplotlib.pyplot as plt

    positive, bins = evaluation.roc_positive_class, evaluation.calibration.bins
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.bar(
        [b.lo for b in bins],
        [b.observed for b in bins],
        width=[b.hi - b.lo for b in bins],
        align="edge",
        edgecolor="k",
        alpha=0.7,
        label=f"observed share of {positive}",
    )
    ax.plot(
        [(b.lo + b.hi) / 2 for b in bins],
        [b.predicted for b in bins],
        "_",
        markersize=14,
        markeredgewidth=2,
        color="C3",
        label="mean predicted probability",
    )
    ax.plot([0, 1], [0, 1], "k--", linewidth=0.5, label="perfect calibration")
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1),
        xlabel=f"predicted probability of {positive}",
        ylabel=f"share of {positive}",
        title=f"Reliability (ECE {evaluation.calibration.ece:.3f})",
    )
    ax.legend(loc="upper left", fontsize=8)
    _save(fig, path)


def samples_figure(pred: SplitPredictions, class_names: list[str], path: Path) -> None:
    """The first Test images with their true and predicted class (nothing when none were kept)."""
    import matplotlib.pyplot as plt

    n = len(pred.samples)
    if not n:
        return
    cols = min(n, 8)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2 * cols, 2.3 * rows), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k >= n:
            continue
        label, truth = int(pred.probs[k].argmax()), int(pred.y_true[k])
        ax.imshow(pred.samples[k])
        ax.set_title(
            f"true {class_names[truth]}\npred {class_names[label]} {pred.probs[k, label]:.2f}"
            + ("" if label == truth else " ✗"),
            color="green" if label == truth else "red",
            fontsize=8,
        )
    _save(fig, path)


def write_outputs(
    evaluation: Evaluation, pred: SplitPredictions, class_names: list[str], positive: int, outputs: dict[str, Path]
) -> None:
    """Write the evaluation, the thinned ROC curve, one row per Test image and the figures, replaced together."""
    import matplotlib

    matplotlib.use("Agg")
    fpr, tpr = metrics.roc_curve((pred.y_true == positive).astype(int), pred.probs[:, positive])
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(len(fpr), ROC_POINTS)).astype(int))
    with atomic_outputs(list(outputs.values())) as tmp:
        staged = {name: tmp / path.name for name, path in outputs.items()}
        reports.write(staged["evaluation_file"], evaluation)
        write_json(staged["roc_file"], [{"fpr": float(fpr[i]), "tpr": float(tpr[i])} for i in keep])
        write_csv(
            staged["predictions_file"],
            ["path", "true_label", "predicted_label", "probability"],
            (
                [name, class_names[t], class_names[p.argmax()], f"{p.max():.6f}"]
                for name, t, p in zip(pred.names, pred.y_true, pred.probs)
            ),
        )
        figures = staged["figures"]
        figures.mkdir()
        confusion_figure(evaluation, figures / "confusion_matrix.png")
        roc_figure(evaluation, fpr, tpr, figures / "roc.png")
        reliability_figure(evaluation, figures / "reliability.png")
        samples_figure(pred, class_names, figures / "sample_predictions.png")


def evaluate(
    processed: Path,
    model_dir: Path,
    evaluation_file: Path,
    roc_file: Path,
    predictions_file: Path,
    figures: Path,
    params: EvaluateParams,
) -> EvaluateResult:
    """Evaluate the exported model in ``model_dir`` on the Test shards; write the metrics and plots.

    The outputs share ``reports/`` with promote's and are replaced together, leaving the others alone.
    """
    model = load_model(model_dir)
    chosen, why = precision.choose(params.mixed_precision)
    log.info("precision: %s (%s)", chosen, why)
    positive = metrics.positive_index(model.class_names, params.positive_class)  # by name, never by position
    trained = reports.read(model_dir / paths.TRAINING_INFO_NAME, TrainingInfo, "train")
    with precision.rewrite(chosen):
        test_files = dataset.shard_files(processed, "Test")
        pred = predict_split(model, test_files, params.batch_size, params.brightness_delta, params.sample_images)
        scaling = temperature_scaling(model, processed, pred, positive, params) if params.temperature_scaling else None
        evaluation = quality(
            pred,
            model.class_names,
            positive,
            params,
            scaling=scaling,
            checks=behaviour(model, pred, params.brightness_delta),
            computed_in=chosen,
            model_info=ModelInfo(**vars(trained), fingerprint=tree_hash(model_dir)),
        )
    outputs = {
        "evaluation_file": evaluation_file,
        "roc_file": roc_file,
        "predictions_file": predictions_file,
        "figures": figures,
    }
    write_outputs(evaluation, pred, model.class_names, positive, outputs)
    lo, hi = evaluation.accuracy_ci95
    print(
        f"Test accuracy: {evaluation.accuracy:.4f} (95% CI {lo:.4f}-{hi:.4f}) on {evaluation.images} images, ROC AUC "
        f"{metrics.shown(evaluation.roc_auc)} ({evaluation.roc_positive_class}), ECE {evaluation.calibration.ece:.4f}"
    )
    return EvaluateResult(evaluation=evaluation)


STAGE = Stage(
    "evaluate",
    evaluate,
    deps={"processed": paths.PROCESSED_DIR, "model_dir": paths.MODEL_DIR},
    outs={
        "evaluation_file": Output(paths.EVALUATION),
        "roc_file": Output(paths.ROC, "plots", plot={"x": "fpr", "y": "tpr"}),
        "predictions_file": Output(
            paths.PREDICTIONS, "plots", plot={"template": "confusion", "x": "true_label", "y": "predicted_label"}
        ),
        "figures": Output(paths.FIGURES_DIR, "plots"),
    },
    params={"params": "evaluate"},
)
