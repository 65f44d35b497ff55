"""Evaluation arithmetic on small known examples."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.evaluate import classification_metrics, gate, roc_auc, roc_curve
from tasks.params import EvaluateParams


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
    m = classification_metrics(y, probs, ["Female", "Male"])
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["confusion_matrix"]["rows_true_columns_predicted"] == [[2, 1], [1, 1]]
    assert m["per_class"]["Female"]["precision"] == pytest.approx(2 / 3)
    assert m["per_class"]["Male"]["recall"] == pytest.approx(1 / 2)
    assert m["per_class"]["Male"]["f1"] == pytest.approx(0.5)
    expected_loss = -np.mean(np.log([0.9, 0.8, 0.3, 0.6, 0.4]))
    assert m["log_loss"] == pytest.approx(expected_loss)
    assert m["images"] == 5 and m["roc_positive_class"] == "Male"


@pytest.mark.parametrize(("accuracy", "passed"), [(0.95, True), (0.9, True), (0.89, False)])
def test_gate_uses_the_absolute_floor(accuracy, passed):
    verdict = gate({"accuracy": accuracy}, EvaluateParams(min_accuracy=0.9))
    assert verdict["passed"] is passed
    assert verdict["checks"] == [{"name": "accuracy", "value": accuracy, "op": ">=", "threshold": 0.9, "passed": passed}]
