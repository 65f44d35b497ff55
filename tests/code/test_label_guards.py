"""A class the audit or training would have no image of is one line naming it, not a library's traceback."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.audit import out_of_sample
from tasks.errors import StageError
from tasks.feature_files import SplitFeatures
from tasks.params.audit import AuditParams
from tasks.train import kept_train_rows

CLASSES = ["Female", "Male"]


@pytest.mark.parametrize("present", [0, 1])
def test_the_audit_refuses_a_class_absent_from_train_and_validation_naming_it(present):
    x = np.random.default_rng(0).normal(size=(40, 4))
    y = np.full(40, present)
    with pytest.raises(StageError, match=f"audit.folds: .* {CLASSES[1 - present]} has 0. Lower audit.folds"):
        out_of_sample(x, y, AuditParams(), CLASSES)


def _rows(labels: list[int]) -> SplitFeatures:
    return SplitFeatures(np.zeros((len(labels), 3)), np.array(labels), [f"Train/x/{i}.jpg" for i in range(len(labels))])


def test_an_exclusion_that_leaves_no_train_images_is_refused():
    rows = _rows([0, 1, 1])
    with pytest.raises(StageError, match="reports/label_issues.csv leaves no Train images; check that list"):
        kept_train_rows(rows, frozenset(rows.paths), CLASSES, "reports/label_issues.csv")


def test_an_exclusion_that_empties_one_class_is_refused_naming_it():
    rows = _rows([0, 1, 1])
    with pytest.raises(StageError, match="leaves no Train image of Female"):
        kept_train_rows(rows, frozenset(rows.paths[:1]), CLASSES, "reports/label_issues.csv")
    assert kept_train_rows(rows, frozenset(rows.paths[1:2]), CLASSES, "x").paths == [rows.paths[0], rows.paths[2]]
