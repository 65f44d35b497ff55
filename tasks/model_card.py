"""``reports/model_card.md``: what the model is, what it was trained and tested on, how good it is.

Rendered by the gate stage from the evaluation (evaluation.json), the quality gate's verdict, the
download record (SOURCE.json) and the validation report, so every number in the card is this run's.
"""

from __future__ import annotations

from typing import Any

from tasks import paths
from tasks.metrics import shown
from tasks.reports.evaluation import Behaviour, Evaluation, ModelInfo, TemperatureScaling
from tasks.reports.label_audit import LabelAudit
from tasks.reports.source import Source
from tasks.reports.validation import ValidationReport
from tasks.reports.verdict import Baseline, Check, Verdict

INTENDED_USE = """\
- Research and teaching: a reproducible example of transfer learning, data validation, quality gates
  and orchestration on a public face dataset.
- Aggregate statistics over many face crops where the Male/Female annotation of CelebA is the quantity
  of interest, with the error rates below in mind.
- Input: one aligned face crop per image (as in CelebA). For whole photos use
  `python -m flows.predict --detect-faces`, which finds faces first and crops them with the training margins.
"""

# what the data the model was trained on limits, by data.source
DATA_LIMITATIONS = {
    "kaggle": """\
- The labels are binary Male/Female annotations from CelebA. They describe how annotators labelled
  celebrity photos, not anyone's gender identity, and they leave out everyone the two labels do not fit.
- The photos are of celebrities (posed, well lit, mostly young, skewed in age and ethnicity); accuracy on
  other people and other photo conditions is unknown and likely lower. See the slices above.
- CelebA's attribute annotations carry known noise of about 1-2%, so accuracy above roughly 98% on its
  Test split is not meaningful.
""",
    "synthetic": """\
- The model was trained and tested on synthetic faces drawn by this project (`tasks/synthetic.py`:
  cartoon heads with noise, pose, lighting and colour variation), **not real people**. Its figures say the
  pipeline works; they say nothing of how it does on any real face. Do not use it on real photos.
- The two classes are the generator's own Male/Female drawing styles, not anyone's gender identity.
""",
    "local": """\
- The model was trained on a local dataset (see Data): its labels, the people in it and how they were
  photographed limit what the figures above mean; accuracy on other people and conditions is unknown.
- Binary Male/Female labels describe how the images were labelled, not anyone's gender identity.
""",
}
LIMITATIONS = """\
- **Not for identity, and not for any decision about a person** (hiring, access, security, moderation,
  targeting or anything else that affects them).
- A blank or faceless image still gets probabilities from the model; `flows.predict` refuses images of one
  colour, and `--detect-faces` reports images without a face (see the behaviour checks).
"""

LICENCE = """\
CelebA (Liu et al., ICCV 2015) is available for non-commercial research purposes only; the Kaggle copy
"Gender Recognition 200K Images (CelebA)" inherits that licence, and so do models trained on it.
TF Hub's ResNet50 v2 feature vector is published under Apache 2.0. The synthetic face set is drawn by
this project (`tasks/synthetic.py`) and shows no real person. The pipeline's code is this repository's.
"""


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"


def _ci(interval: list[float]) -> str:
    return f"{_pct(interval[0])} – {_pct(interval[1])}" if interval else "n/a"


def _data(source: Source, report: ValidationReport) -> str:
    where = {
        "kaggle": f"Kaggle dataset `{source.slug}`, version {source.dataset_version} "
        f"(last updated {source.last_updated})",
        "local": f"a local copy ({source.path or 'path not recorded'}) in the Kaggle layout",
        "synthetic": f"the offline synthetic face set (seed {source.seed}): drawn faces, not real people",
    }.get(source.source, source.source)
    counts = report.counts
    splits = [s for s in paths.SPLITS if any(k.startswith(f"{s}/") for k in counts)]
    classes = report.class_names
    rows = [
        [s, *(counts.get(f"{s}/{c}", 0) for c in classes), sum(counts.get(f"{s}/{c}", 0) for c in classes)]
        for s in splits
    ]
    return (
        f"- Source: {where}.\n- Archive sha256 `{source.sha256}`, {source.images} images.\n"
        f"- Validation kept {report.kept} images, dropped {len(report.dropped)}; "
        f"{'all expectations passed' if report.success else 'expectations FAILED'}.\n\n"
        + _table(["split", *classes, "total"], rows)
    )


def _model(model: ModelInfo) -> str:
    rows = [
        ["backbone handle", f"`{model.handle}`"],
        [
            "backbone sha256 (its SavedModel files)",
            f"`{model.backbone_sha256}`" if model.backbone_sha256 else "built-in",
        ],
        ["image size", f"{model.image_size} px"],
        ["head dropout", model.model.get("dropout")],
        *([f"train.{k}", v] for k, v in sorted(model.train.items())),
        ["final validation accuracy", f"{model.final_epoch.get('val_accuracy', float('nan')):.4f}"],
        ["fingerprint (sha256 of the export)", f"`{model.fingerprint[:16]}…`"],
    ]
    return _table(["", ""], rows)


def _temperature(ts: TemperatureScaling | None) -> str:
    if ts is None:
        return ""
    return (
        f"\n\nTemperature scaling fitted on Validation ({ts.validation_images} images): T = "
        f"{ts.temperature:.3f}; Test ECE {ts.test_ece_before:.4f} → {ts.test_ece_after:.4f}, "
        f"log loss {ts.test_log_loss_before:.4f} → {ts.test_log_loss_after:.4f}. "
        "Reported only: the exported model is not rescaled."
    )


def _metrics(m: Evaluation) -> str:
    rows = [["accuracy", _pct(m.accuracy), _ci(m.accuracy_ci95)]]
    for name, c in m.per_class.items():
        rows += [
            [f"{name} recall", _pct(c.recall), _ci(c.recall_ci95)],
            [f"{name} precision", _pct(c.precision), ""],
            [f"{name} F1", shown(c.f1), ""],
        ]
    rows += [
        [f"ROC AUC ({m.roc_positive_class})", shown(m.roc_auc), ""],
        ["log loss", f"{m.log_loss:.4f}", ""],
        ["expected calibration error", f"{m.calibration.ece:.4f}", ""],
    ]
    text = (
        f"On the Test split ({m.images} images, never used for training or model selection). "
        f"Intervals: {int(100 * m.bootstrap.level)}% percentile bootstrap, {m.bootstrap.samples} "
        f"resamples, seed {m.bootstrap.seed}.\n\n" + _table(["metric", "value", "95% interval"], rows)
    )
    return (
        text
        + _temperature(m.calibration.temperature_scaling)
        + "\n\nReliability diagram: `reports/figures/reliability.png`."
    )


def _behaviour(b: Behaviour) -> str:
    blanks = ", ".join(f"{x.colour} → {x.label} {x.probability:.2f}" for x in b.blank)
    return _table(
        ["check", "result"],
        [
            ["horizontal flip changes the prediction", f"{_pct(b.flip_changed)} of {b.images} images"],
            [
                f"brightness ±{b.brightness_delta:.0%} of full scale changes it",
                f"{_pct(b.brightness_changed)} of {b.images} images",
            ],
            ["blank images (model output)", blanks],
        ],
    )


def _check_row(c: Check) -> list[str]:
    result = ("pass" if c.passed else "FAIL") + ("" if c.gating else " (shown only)")
    if c.difference is None:
        return [c.name, f"{c.value:.4f}", f"{c.op} {c.threshold:.4f}", result]
    lo, hi = c.interval
    return [c.name, f"{c.difference:+.4f} ({lo:+.4f} to {hi:+.4f})", f"upper end ≥ {c.threshold:+.4f}", result]


def _against(base: Baseline | None) -> str:
    """What the gate compared the candidate with, and the rule of the comparison."""
    rule = (
        "A check against the production model compares both models on the same Test images, image by image "
        "(paired bootstrap): the difference (candidate − production) with its 90% interval, whose upper end is "
        "the one-sided 95% bound. It fails only when the candidate is worse by more than `gate.max_regression` "
        "with 95% confidence: a smaller drop, or one the Test split cannot tell from noise, passes."
    )
    if base is None:
        return "No model was in production yet, so only the absolute floor applied."
    blessed = f"the production model {base.model} `{base.fingerprint[:16]}…` (promoted {base.promoted_at})"
    figure = f", accuracy {base.accuracy:.4f} on the same Test images" if base.accuracy is not None else ""
    if not base.gating:
        return f"Only the absolute floor decided: {base.reason}. Compared for information: {blessed}{figure}."
    despite = f" (`gate.baseline: always`, although {base.reason})" if base.reason else ""
    return f"Baseline: {blessed}{figure}{despite}. {rule}"


def gate_section(g: Verdict) -> str:
    """The gate's verdict, its baseline and a table of its checks (the card's section, the flow's artifact)."""
    verdict = (
        "**passed**: `make promote` may make this the production model"
        if g.passed
        else "**failed**: `make promote` refuses it; the production model stays as it is"
    )
    rows = [_check_row(c) for c in g.checks]
    return f"Verdict: {verdict}. {_against(g.baseline)}\n\n" + _table(["check", "value", "threshold", "result"], rows)


def _audit(audit: LabelAudit) -> str:
    test_flagged, test_images = audit.total("Test"), audit.images["Test"]
    rows = [[split, audit.images[split], audit.total(split), *audit.flagged[split].values()] for split in audit.images]
    classes = list(next(iter(audit.flagged.values())))
    return (
        f"Confident learning (cleanlab) on {audit.folds}-fold out-of-sample probabilities of a light head on the "
        "frozen backbone's features flagged these given labels as contradicted by the data "
        "(`reports/label_issues.csv`, most suspect first). They are suspects to review, not verdicts: on real "
        "data, human review confirmed about half of such flags (Northcutt et al., NeurIPS 2021).\n\n"
        + _table(["split", "images", "flagged", *[f"flagged, given {c}" for c in classes]], rows)
        + f"\n\n{test_flagged} of {test_images} Test labels are suspect ({_pct(test_flagged / max(1, test_images))}): "
        "where they are wrong, the Test accuracy above, and the gate that reads it, are off by up to that much. "
        "Test is audited and reported only; nothing trains on it.\n\n![The top label suspects](label_issues.png)"
    )


def render(
    evaluation: Evaluation, verdict: Verdict, source: Source, report: ValidationReport, audit: LabelAudit
) -> str:
    """The model card as Markdown."""
    sections = [
        ("Model", _model(evaluation.model)),
        ("Data", _data(source, report)),
        ("Label audit", _audit(audit)),
        ("Metrics", _metrics(evaluation)),
        (
            "Slices",
            "Accuracy per true class, per brightness bin (mean luma of the input, quantile bins) and per "
            "JPEG-size bin (a proxy for compression quality); the counts add up to the Test split.\n\n"
            + _table(
                ["slice", "bin", "images", "accuracy"],
                [[r.slice, r.bin, r.images, _pct(r.accuracy)] for r in evaluation.slices],
            ),
        ),
        ("Behaviour checks", _behaviour(evaluation.behaviour)),
        ("Quality gate", gate_section(verdict)),
        ("Intended use", INTENDED_USE),
        ("Limitations", DATA_LIMITATIONS[source.source] + LIMITATIONS),
        ("Licence", LICENCE),
    ]
    body = "\n\n".join(f"## {title}\n\n{text.strip()}" for title, text in sections)
    return (
        "# Model card: Male/Female classifier for aligned face crops\n\n"
        "Generated by the gate stage (`tasks/gate.py`) from this run's figures; do not edit by hand.\n\n" + body + "\n"
    )
