"""Evaluation arithmetic on small known examples: metrics, gate, intervals, calibration, slices."""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import numpy as np
import pytest

from tasks.errors import StageError
from tasks.metrics import (
    apply_temperature,
    bootstrap_intervals,
    calibration,
    class_slices,
    classification_metrics,
    fit_temperature,
    paired_differences,
    positive_index,
    quantile_slices,
    roc_auc,
    roc_curve,
)
from tasks.params.gate import GateParams
from tasks.reports.evaluation import Difference
from tasks.reports.verdict import Baseline, Check
from tasks.verdict import decide, failed_checks, undefined_metrics


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
    assert (np.diff(fpr) >= 0).all()
    assert (np.diff(tpr) >= 0).all()


def test_classification_metrics_on_a_small_example():
    y = np.array([0, 0, 0, 1, 1])
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6], [0.6, 0.4]])
    m = classification_metrics(y, probs, ["Female", "Male"], positive=1)
    assert m.accuracy == pytest.approx(3 / 5)
    assert m.confusion_matrix.rows_true_columns_predicted == [[2, 1], [1, 1]]
    assert m.per_class["Female"].precision == pytest.approx(2 / 3)
    assert m.per_class["Male"].recall == pytest.approx(1 / 2)
    assert m.per_class["Male"].f1 == pytest.approx(0.5)
    expected_loss = -np.mean(np.log([0.9, 0.8, 0.3, 0.6, 0.4]))
    assert m.log_loss == pytest.approx(expected_loss)
    assert m.images == 5
    assert m.roc_positive_class == "Male"


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
    assert m.roc_positive_class == "Male"
    assert m.roc_auc == pytest.approx(roc_auc(y_male, p_male)) == pytest.approx(8 / 9)
    _, bins = calibration(y, probs, 2, positive)
    assert [(b.images, b.predicted, b.observed) for b in bins] == [
        (3, pytest.approx(0.7 / 3), pytest.approx(1 / 3)),
        (3, pytest.approx(2.2 / 3), pytest.approx(2 / 3)),
    ]


def test_an_unknown_positive_class_is_refused_by_name():
    with pytest.raises(StageError, match="evaluate.positive_class: 'Man' is not one of the model's classes"):
        positive_index(["Female", "Male"], "Man")


@pytest.mark.parametrize(("accuracy", "passed"), [(0.95, True), (0.9, True), (0.89, False)])
def test_gate_uses_the_absolute_floor(accuracy, passed):
    verdict = decide(accuracy, GateParams(min_accuracy=0.9))
    assert verdict.passed is passed
    assert verdict.checks == [Check(name="accuracy", value=accuracy, op=">=", threshold=0.9, passed=passed)]


def _answers(n: int, wrong: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` Test images, 42% of class 1, and which of them a model got right (``wrong`` mistakes, spread)."""
    rng = np.random.default_rng(seed)
    y = (rng.permutation(n) < round(0.42 * n)).astype(int)
    correct = np.ones(n, bool)
    correct[rng.permutation(n)[:wrong]] = False
    return y, correct


def _also_wrong(correct: np.ndarray, extra: int, where: np.ndarray | None = None, seed: int = 1) -> np.ndarray:
    """``correct`` with ``extra`` more mistakes (among the images in ``where``)."""
    candidates = np.flatnonzero(correct & (True if where is None else where))
    worse = correct.copy()
    worse[np.random.default_rng(seed).choice(candidates, extra, replace=False)] = False
    return worse


def _verdict(y, candidate, baseline, gating=True):
    differences = paired_differences(y, candidate, baseline, ["Female", "Male"], samples=2000, seed=3)
    baseline = Baseline(model="blessed", fingerprint="0" * 64, promoted_at=None, trained_on=None, gating=gating)
    return decide(float(candidate.mean()), GateParams(min_accuracy=0.5, max_regression=0.01), differences, baseline)


@pytest.mark.parametrize("extra", [1, 2])
def test_one_or_two_more_mistakes_are_noise_and_pass(extra):
    y, blessed = _answers(1000, 50)
    verdict = _verdict(y, _also_wrong(blessed, extra), blessed)
    assert verdict.passed, failed_checks(verdict)
    acc = next(c for c in verdict.checks if c.name == "accuracy vs production")
    assert acc.difference == pytest.approx(-extra / 1000)
    assert acc.interval[0] < acc.difference < acc.interval[1]


def test_a_real_regression_of_five_points_fails():
    y, blessed = _answers(1000, 50)
    verdict = _verdict(y, _also_wrong(blessed, 50), blessed)  # accuracy 0.95 -> 0.90
    assert not verdict.passed
    acc = next(c for c in verdict.checks if c.name == "accuracy vs production")
    assert acc.difference == pytest.approx(-0.05)
    assert acc.interval[1] < -0.01
    assert failed_checks(verdict)[0].startswith("accuracy vs production -0.0500 (95% upper bound -0.0")


def test_a_regression_confined_to_one_class_fails_on_that_class_only():
    y, blessed = _answers(1000, 30)
    candidate = _also_wrong(blessed, 40, where=y == 1)  # 40 more Male mistakes of 420 Male images: ~9.5 points
    failed = {c.name for c in _verdict(y, candidate, blessed).checks if not c.passed}
    assert "Male recall vs production" in failed
    assert "Female recall vs production" not in failed


def test_the_interval_narrows_with_more_images_and_is_zero_for_the_same_answers():
    widths = []
    for n in (300, 3000):
        y, blessed = _answers(n, n // 20)
        d = paired_differences(y, _also_wrong(blessed, n // 100), blessed, ["Female", "Male"], samples=2000, seed=1)
        widths.append(d["accuracy"].interval[1] - d["accuracy"].interval[0])
    assert widths[1] < widths[0] / 2.5  # about 1/sqrt(10)
    same = paired_differences(y, blessed, blessed, ["Female", "Male"], samples=200, seed=1)
    assert same["accuracy"] == Difference(difference=0.0, interval=[0.0, 0.0])


def test_a_comparison_that_does_not_gate_is_shown_but_does_not_decide():
    y, blessed = _answers(1000, 50)
    verdict = _verdict(y, _also_wrong(blessed, 50), blessed, gating=False)
    assert verdict.passed
    assert not failed_checks(verdict)
    shown = [c for c in verdict.checks if c.difference is not None]
    assert len(shown) == 3
    assert not all(c.passed for c in shown)
    assert not any(c.gating for c in shown)


def test_gate_without_a_baseline_has_only_the_floor():
    verdict = decide(0.5, GateParams(min_accuracy=0.4, max_regression=0.0))
    assert verdict.passed
    assert [c.name for c in verdict.checks] == ["accuracy"]


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
        lo, hi = ci.accuracy
        assert lo <= (pred == y).mean() <= hi
        for k in (0, 1):
            recall = (pred[y == k] == k).mean()
            assert ci.recall[k][0] <= recall <= ci.recall[k][1]
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
    ece, bins = calibration(y, probs, bins=10, positive=1)
    assert ece == pytest.approx(0.05)
    assert [(b.images, b.observed) for b in bins] == [
        (10, pytest.approx(0.2)),
        (10, pytest.approx(0.6)),
    ]
    assert [(b.lo, b.hi) for b in bins] == [
        (pytest.approx(0.0), pytest.approx(0.1)),
        (pytest.approx(0.5), pytest.approx(0.6)),
    ]


def test_ece_is_zero_when_the_predicted_probability_matches_the_share():
    probs = np.array([[0.75, 0.25]] * 8)
    y = np.array([0, 0, 0, 1, 0, 0, 0, 1])
    assert calibration(y, probs, bins=4, positive=1)[0] == pytest.approx(0.0)


def test_temperature_scaling_recovers_a_known_temperature():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (20000, 2))
    true_probs = apply_temperature(np.exp(logits) / np.exp(logits).sum(1, keepdims=True), 2.0)
    y = (rng.random(20000) < true_probs[:, 1]).astype(int)  # labels drawn from the calibrated model
    overconfident = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    t = fit_temperature(y, overconfident)
    assert t == pytest.approx(2.0, rel=0.08)
    after, before = (calibration(y, p, 10, positive=1)[0] for p in (apply_temperature(overconfident, t), overconfident))
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
        assert sum(r.images for r in rows) == 503
        assert sum(r.images * r.accuracy for r in rows) == pytest.approx(correct.sum())
    rows = quantile_slices("brightness", values, correct, 4, "luma")
    assert len(rows) == 4
    assert max(r.images for r in rows) - min(r.images for r in rows) <= 1


def test_slices_keep_tied_values_in_one_bin():
    correct = np.array([True, False, True, True])
    rows = quantile_slices("jpeg_size", np.array([5.0, 5.0, 5.0, 5.0]), correct, 4, "kB")
    assert [(r.images, r.accuracy) for r in rows] == [(4, 0.75)]


def test_metrics_that_a_test_split_without_male_images_cannot_measure_are_undefined_not_zero():
    y = np.zeros(50, dtype=int)  # no Male image in Test
    probs = np.tile([0.8, 0.2], (50, 1))
    probs[:5] = [0.3, 0.7]  # 5 predicted Male, all wrong
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "All-NaN slice encountered" leaks
        point = classification_metrics(y, probs, ["Female", "Male"], positive=1)
        intervals = bootstrap_intervals(y, probs.argmax(axis=1), 2, samples=200, seed=0)
        slices = class_slices(y, probs.argmax(axis=1) == y, ["Female", "Male"])
    male = point.per_class["Male"]
    assert (male.recall, male.f1, male.precision, point.roc_auc) == (None, None, 0.0, None)
    assert point.per_class["Female"].recall == pytest.approx(0.9)
    assert intervals.recall[1] == [] and len(intervals.recall[0]) == 2
    assert [s.accuracy for s in slices] == [pytest.approx(0.9), None]


def test_the_gate_never_blesses_on_an_undefined_headline_metric():
    male = SimpleNamespace(recall=None)
    evaluation = SimpleNamespace(per_class={"Female": SimpleNamespace(recall=0.9), "Male": male}, roc_auc=None)
    undefined = undefined_metrics(evaluation)
    assert undefined == ["Male recall", "ROC AUC"]
    verdict = decide(0.9, GateParams(min_accuracy=0.5, max_regression=0.01), undefined=undefined)
    assert not verdict.passed
    assert failed_checks(verdict) == [
        "Male recall is undefined on this Test split (a class without images)",
        "ROC AUC is undefined on this Test split (a class without images)",
    ]
    assert decide(0.9, GateParams(min_accuracy=0.5, max_regression=0.01), undefined=[]).passed
