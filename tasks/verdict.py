"""The quality gate's verdict from the evaluation and the paired differences, and the headline metrics file.

Only the gate stage imports this module (with the gate params), so a change to the rules reruns the gate alone;
the flows and ``ops.promote`` read its lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from tasks.params.gate import GateParams
from tasks.reports.evaluation import Difference, Evaluation
from tasks.reports.verdict import Baseline, Check, Verdict

HEADLINE_DECIMALS = 4  # of the numbers in the DVC metrics file (full precision in reports/evaluation.json)


def _check(name: str, value: float, threshold: float) -> Check:
    return Check(name=name, value=value, op=">=", threshold=threshold, passed=bool(value >= threshold))


def undefined_metrics(evaluation: Evaluation) -> list[str]:
    """The headline metrics the Test split leaves undefined: a class's recall (no image of it), the ROC AUC."""
    found = [f"{name} recall" for name, m in evaluation.per_class.items() if m.recall is None]
    return found + (["ROC AUC"] if evaluation.roc_auc is None else [])


def decide(
    accuracy: float,
    params: GateParams,
    differences: dict[str, Difference] | None = None,
    baseline: Baseline | None = None,
    undefined: Sequence[str] = (),
) -> Verdict:
    """The quality gate's verdict, with each check's value and threshold.

    Always: the candidate's Test ``accuracy`` >= ``min_accuracy``. With the paired differences from the
    production model on the same Test images (``metrics.paired_differences``), also one check each for
    accuracy and each class's recall: it fails only when the candidate is worse by more than ``max_regression`` with 95%
    confidence, i.e. when the upper end of the difference's interval is below ``-max_regression``.
    When the ``baseline`` is not comparable (``gating`` False) those checks are shown but do not decide.
    Each ``undefined`` headline metric is a failed check: no model is promoted on a metric Test cannot measure.
    """
    gating = baseline is not None and baseline.gating
    checks = [_check("accuracy", accuracy, params.min_accuracy)]
    checks += [Check(name=name, value=0.0, op="defined", threshold=0.0, passed=False) for name in undefined]
    for what, d in (differences or {}).items():
        check = _check(f"{what} vs production", d.interval[1], -params.max_regression)
        checks.append(replace(check, difference=d.difference, interval=d.interval, gating=gating))
    return Verdict(passed=all(c.passed for c in checks if c.gating), checks=checks, baseline=baseline)


def describe_check(check: Check) -> str:
    """One line for a check: ``name value < threshold``, or a difference with its bound."""
    if check.op == "defined":
        return f"{check.name} is undefined on this Test split (a class without images)"
    if check.difference is None:
        return f"{check.name} {check.value:.4f} < {check.threshold:.4f}"
    return f"{check.name} {check.difference:+.4f} (95% upper bound {check.value:+.4f} < {check.threshold:+.4f})"


def failed_checks(verdict: Verdict) -> list[str]:
    """One line per failed check that decides the verdict."""
    return [describe_check(c) for c in verdict.failed()]


def headline(evaluation: Evaluation, verdict: Verdict) -> dict[str, Any]:
    """The DVC metrics file: the few numbers ``dvc exp show`` puts side by side, one column each.

    Short names (DVC sorts the columns by name) and 4 decimals, so that the experiment's name and all
    of these fit in the first 120 columns of the table: ``acc`` Test accuracy with ``acc_lo``-``acc_hi``
    its 95% interval, ``auc`` ROC AUC, ``ece`` calibration error, ``gate`` whether the quality gate
    passed, ``logloss``, and ``recall.<class>``. The full evaluation (``reports/evaluation.json``) and
    the gate's checks (``reports/gate.json``) stay beside it. A flat table, not a report: only DVC reads it.
    """
    low, high = evaluation.accuracy_ci95
    numbers = {
        "acc": evaluation.accuracy,
        "acc_lo": low,
        "acc_hi": high,
        "auc": evaluation.roc_auc,
        "ece": evaluation.calibration.ece,
        "gate": verdict.passed,
        "logloss": evaluation.log_loss,
        "recall": {name: _round(m.recall) for name, m in evaluation.per_class.items()},
    }
    return {k: _round(v) if isinstance(v, float) else v for k, v in numbers.items()}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, HEADLINE_DECIMALS)
