"""Evaluation arithmetic on small known examples: metrics, gate, intervals, calibration, slices."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.files import StageError
from tasks.metrics import (
    apply_temperature,
    bootstrap_intervals,
    calibration,
    class_slices,
    classification_metrics,
    failed_checks,
    fit_temperature,
    gate,
    positive_index,
    quantile_slices,
    roc_auc,
    roc_curve,
)
from tasks.params import PromoteParams


@pytest.mark.parametrize(
    ("y", "score", "auc"),
    [
        ([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], 0.75),  # the textbook example
        ([0, 1], [0.2, 0.9], 1.0),
        ([0, 1], [0.9, 0.2], 0.0),
        ([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5], 0.5),  # ties count half
    ],
)
def test_roc_auc_known_values(y, score, auc):
    assert roc_auc(np.array(y), np.array(score)) == pytest.approx(auc)


def test_roc_curve_runs_from_origin_to_one():
    fpr, tpr = roc_curve(np.array([0, 1, 1, 0]), np.array([0.1, 0.9, 0.6, 0.3]))
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0, 0, 1, 1)
    assert (np.diff(fpr) >= 0).all() and (np.diff(tpr) >= 0).all()


def test_classification_metrics_on_a_small_example():
    y = np.array([0, 0, 0, 1, 1])
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6], [0.6, 0.4]])
    m = classification_metrics(y, probs, ["Female", "Male"], positive=1)
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["confusion_matrix"]["rows_true_columns_predicted"] == [[2, 1], [1, 1]]
    assert m["per_class"]["Female"]["precision"] == pytest.approx(2 / 3)
    assert m["per_class"]["Male"]["recall"] == pytest.approx(1 / 2)
    assert m["per_class"]["Male"]["f1"] == pytest.approx(0.5)
    expected_loss = -np.mean(np.log([0.9, 0.8, 0.3, 0.6, 0.4]))
    assert m["log_loss"] == pytest.approx(expected_loss)
    assert m["images"] == 5 and m["roc_positive_class"] == "Male"


@pytest.mark.parametrize("class_names", [["Female", "Male"], ["Male", "Female"]])
def test_the_positive_class_is_chosen_by_name_in_either_order(class_names):
    """The same predictions, with the columns in either order, give Male's ROC AUC and reliability."""
    male_first = class_names[0] == "Male"
    y_male = np.array([0, 0, 1, 1, 1, 0])
    p_male = np.array([0.2, 0.6, 0.7, 0.9, 0.4, 0.1])
    probs = np.stack([p_male, 1 - p_male] if male_first else [1 - p_male, p_male], axis=1)
    y = np.where(y_male == 1, class_names.index("Male"), class_names.index("Female"))
    positive = positive_index(class_names, "Male")
    m = classification_metrics(y, probs, class_names, positive)
    assert m["roc_positive_class"] == "Male"
    assert m["roc_auc"] == pytest.approx(roc_auc(y_male, p_male)) == pytest.approx(8 / 9)
    bins = calibration(y, probs, 2, positive)["bins"]
    assert [(b["images"], b["predicted"], b["observed"]) for b in bins] == [
        (3, pytest.approx(0.7 / 3), pytest.approx(1 / 3)),
        (3, pytest.approx(2.2 / 3), pytest.approx(2 / 3)),
    ]


def test_an_unknown_positive_class_is_refused_by_name():
    with pytest.raises(StageError, match="evaluate.positive_class: 'Man' is not one of the model's classes"):
        positive_index(["Female", "Male"], "Man")


@pytest.mark.parametrize(("accuracy", "passed"), [(0.95, True), (0.9, True), (0.89, False)])
def test_gate_uses_the_absolute_floor(accuracy, passed):
    verdict = gate({"accuracy": accuracy}, PromoteParams(min_accuracy=0.9))
    assert verdict["passed"] is passed
    assert verdict["checks"] == [
        {"name": "accuracy", "value": accuracy, "op": ">=", "threshold": 0.9, "passed": passed}
    ]


def _metrics(accuracy: float, female: float, male: float) -> dict:
    return {"accuracy": accuracy, "per_class": {"Female": {"recall": female}, "Male": {"recall": male}}}


BLESSED = _metrics(0.95, 0.96, 0.94)


@pytest.mark.parametrize(
    ("candidate", "passed", "failed"),
    [
        (_metrics(0.95, 0.96, 0.94), True, []),  # as good as the blessed model
        (_metrics(0.945, 0.955, 0.935), True, []),  # within max_regression (0.01) everywhere
        (_metrics(0.97, 0.99, 0.95), True, []),  # better
        (_metrics(0.93, 0.96, 0.94), False, ["accuracy vs blessed"]),  # accuracy dropped 0.02
        (_metrics(0.95, 0.99, 0.92), False, ["Male recall vs blessed"]),  # one class got worse
        (
            _metrics(0.89, 0.9, 0.88),
            False,
            ["accuracy", "accuracy vs blessed", "Female recall vs blessed", "Male recall vs blessed"],
        ),
    ],
)
def test_gate_against_the_blessed_baseline(candidate, passed, failed):
    verdict = gate(candidate, PromoteParams(min_accuracy=0.9, max_regression=0.01), baseline=BLESSED)
    assert verdict["passed"] is passed
    assert [c["name"] for c in verdict["checks"] if not c["passed"]] == failed
    by_name = {c["name"]: c for c in verdict["checks"]}
    assert by_name["accuracy vs blessed"]["threshold"] == pytest.approx(0.94)
    assert by_name["Male recall vs blessed"]["threshold"] == pytest.approx(0.93)
    assert len(failed_checks(verdict)) == len(failed)


def test_gate_without_a_baseline_has_only_the_floor():
    verdict = gate(_metrics(0.5, 0.5, 0.5), PromoteParams(min_accuracy=0.4, max_regression=0.0))
    assert verdict["passed"] and [c["name"] for c in verdict["checks"]] == ["accuracy"]


def _predictions(n: int, accuracy: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    right = rng.permutation(n) < round(accuracy * n)  # exactly this accuracy
    return y, np.where(right, y, 1 - y)


def test_bootstrap_interval_contains_the_estimate_and_shrinks_with_more_data():
    widths = []
    for n in (200, 5000):
        y, pred = _predictions(n, 0.9)
        ci = bootstrap_intervals(y, pred, 2, samples=1000, seed=1)
        lo, hi = ci["accuracy"]
        assert lo <= (pred == y).mean() <= hi
        for k in (0, 1):
            recall = (pred[y == k] == k).mean()
            assert ci["recall"][k][0] <= recall <= ci["recall"][k][1]
        widths.append(hi - lo)
    assert widths[1] < widths[0] / 3  # about 1/sqrt(25) = 1/5 as wide
    # roughly the normal approximation 2 * 1.96 * sqrt(p(1-p)/n)
    assert widths[0] == pytest.approx(2 * 1.96 * np.sqrt(0.09 / 200), rel=0.25)


def test_bootstrap_is_seeded():
    y, pred = _predictions(300, 0.8)
    assert bootstrap_intervals(y, pred, 2, 500, seed=3) == bootstrap_intervals(y, pred, 2, 500, seed=3)
    assert bootstrap_intervals(y, pred, 2, 500, seed=3) != bootstrap_intervals(y, pred, 2, 500, seed=4)


def test_ece_on_a_known_example():
    # 10 images with P(Male) 0.1 of which 2 are Male (gap 0.1), 10 with P(Male) 0.6 of which 6 are Male (gap 0):
    # ECE = 10/20 * 0.1 + 10/20 * 0 = 0.05
    probs = np.array([[0.9, 0.1]] * 10 + [[0.4, 0.6]] * 10)
    y = np.array([1] * 2 + [0] * 8 + [1] * 6 + [0] * 4)
    result = calibration(y, probs, bins=10, positive=1)
    assert result["ece"] == pytest.approx(0.05)
    assert [(b["images"], b["observed"]) for b in result["bins"]] == [
        (10, pytest.approx(0.2)),
        (10, pytest.approx(0.6)),
    ]
    assert [(b["lo"], b["hi"]) for b in result["bins"]] == [
        (pytest.approx(0.0), pytest.approx(0.1)),
        (pytest.approx(0.5), pytest.approx(0.6)),
    ]


def test_ece_is_zero_when_the_predicted_probability_matches_the_share():
    probs = np.array([[0.75, 0.25]] * 8)
    y = np.array([0, 0, 0, 1, 0, 0, 0, 1])
    assert calibration(y, probs, bins=4, positive=1)["ece"] == pytest.approx(0.0)


def test_temperature_scaling_recovers_a_known_temperature():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (20000, 2))
    true_probs = apply_temperature(np.exp(logits) / np.exp(logits).sum(1, keepdims=True), 2.0)
    y = (rng.random(20000) < true_probs[:, 1]).astype(int)  # labels drawn from the calibrated model
    overconfident = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    t = fit_temperature(y, overconfident)
    assert t == pytest.approx(2.0, rel=0.08)
    after, before = (
        calibration(y, p, 10, positive=1)["ece"] for p in (apply_temperature(overconfident, t), overconfident)
    )
    assert after < before / 2
    assert (apply_temperature(overconfident, t).argmax(1) == overconfident.argmax(1)).all()


def test_slices_add_up_to_the_whole():
    rng = np.random.default_rng(2)
    y, pred = _predictions(503, 0.85, seed=2)
    correct = pred == y
    values = rng.normal(120, 30, 503)
    for rows in (
        class_slices(y, correct, ["Female", "Male"]),
        quantile_slices("brightness", values, correct, 4, "luma"),
    ):
        assert sum(r["images"] for r in rows) == 503
        assert sum(r["images"] * r["accuracy"] for r in rows) == pytest.approx(correct.sum())
    rows = quantile_slices("brightness", values, correct, 4, "luma")
    assert len(rows) == 4 and max(r["images"] for r in rows) - min(r["images"] for r in rows) <= 1


def test_slices_keep_tied_values_in_one_bin():
    correct = np.array([True, False, True, True])
    rows = quantile_slices("jpeg_size", np.array([5.0, 5.0, 5.0, 5.0]), correct, 4, "kB")
    assert [(r["images"], r["accuracy"]) for r in rows] == [(4, 0.75)]
