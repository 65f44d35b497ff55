"""The flow run's Prefect artifacts, with stable keys so the UI keeps their history across runs.

``validation-summary``, ``metrics``, ``quality-gate``, ``slices`` and ``metrics-comparison`` come
from the stages' reports. ``plots`` embeds the pictures themselves as ``data:image/png;base64``
URIs, which the Prefect UI renders (it will not open ``file://`` links): the training curves, the
confusion matrix, the ROC curve, the reliability diagram and the sample predictions, each
downscaled to at most ``MAX_IMAGE_BYTES``. ``pipeline-outputs`` lists where everything is, as text.
"""

from __future__ import annotations

import base64
import csv
import io
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from tasks import model_card, near_duplicates, paths, reports
from tasks.errors import StageError
from tasks.metrics import shown
from tasks.registry import read_pointer
from tasks.reports import R
from tasks.reports.evaluation import Evaluation
from tasks.reports.label_audit import LabelAudit
from tasks.reports.validation import Drift, ValidationReport
from tasks.reports.verdict import Verdict
from tasks.verdict import failed_checks

MAX_IMAGE_BYTES = 200_000  # each embedded PNG, before base64
MAX_IMAGE_SIDE = 900  # pixels; larger figures (the sample grid) are downscaled first
PLOTS = (  # (title, path) in the order the artifact shows them
    ("Training curves", paths.CURVES),
    ("Confusion matrix", f"{paths.FIGURES_DIR}/confusion_matrix.png"),
    ("ROC curve", f"{paths.FIGURES_DIR}/roc.png"),
    ("Reliability diagram", f"{paths.FIGURES_DIR}/reliability.png"),
    ("Sample predictions", f"{paths.FIGURES_DIR}/sample_predictions.png"),
)


def read_if_present(path: Path, cls: type[R], stage: str) -> R | None:
    """The ``cls`` report at ``path``; None when there is none yet, or one this code cannot read (said in the log).

    Artifacts only show what the stages wrote: an old report (another version) must not fail the run.
    """
    if not path.is_file():
        return None
    try:
        return reports.read(path, cls, stage)
    except StageError as exc:
        logging.getLogger("pipeline.artifacts").warning("%s", exc)
        return None


def png_data_uri(path: Path, max_bytes: int = MAX_IMAGE_BYTES, max_side: int = MAX_IMAGE_SIDE) -> str:
    """``path`` as a ``data:image/png;base64`` URI, downscaled until the PNG is at most ``max_bytes``."""
    from PIL import Image

    with Image.open(path) as opened:
        image = opened.convert("RGB")
    scale = min(1.0, max_side / max(image.size))
    while True:
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        buffer = io.BytesIO()
        image.resize(size, Image.LANCZOS).save(buffer, format="PNG", optimize=True)
        if buffer.tell() <= max_bytes:
            return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
        scale *= 0.8


def plots_markdown(root: Path) -> str:
    """The plots that exist, embedded; a line for each one that does not (yet)."""
    parts = ["# Plots"]
    for title, rel in PLOTS:
        path = root / rel
        body = f"![{title}]({png_data_uri(path)})" if path.is_file() else "_not written yet_"
        parts.append(f"## {title}\n\n{body}\n\n`{rel}`")
    return "\n\n".join(parts) + "\n"


def _gate_markdown(root: Path, evaluation: Evaluation, verdict: Verdict) -> str:
    pointer = read_pointer(root / paths.PRODUCTION_DIR)
    if not verdict.passed:
        outcome = "cannot be promoted: " + "; ".join(failed_checks(verdict))
    elif pointer is not None and pointer.fingerprint == evaluation.model.fingerprint:
        outcome = f"this model is the production model (model@{pointer.model_version})"
    else:
        outcome = "may be promoted: `make promote` makes it the production model"
    return (
        f"# Quality gate: {'passed' if verdict.passed else 'FAILED'}\n\n{outcome}\n\n"
        f"{model_card.gate_section(verdict)}\n"
    )


def _drift_markdown(record: Drift | None) -> str:
    if not record:
        return ""
    lines = [f"\n## Drift {record.scope}\n"]
    if record.rows:
        lines.append(f"Population stability index per feature (fails above {record.max_psi}):\n")
        lines.append("| feature | PSI | |\n|---|---|---|")
        lines += [
            f"| {r.feature} | {r.psi:.3f} | {'ok' if r.psi <= record.max_psi else 'SHIFTED'} |" for r in record.rows
        ]
    return "\n".join(lines) + "\n"


def _validation_markdown(report: ValidationReport, drift_record: Drift | None) -> str:
    rows = "\n".join(f"| {group} | {n} |" for group, n in report.counts.items())
    failed = (
        "\n".join(f"- {f.type}({f.column}): {f.unexpected_count} bad, e.g. {f.offenders[:3]}" for f in report.failed)
        or "none"
    )
    near = report.near_duplicates
    return (
        f"# Validation\n\n{'passed' if report.success else 'FAILED'}: {report.kept} images kept, "
        f"{len(report.dropped)} dropped\n\n| split/class | images |\n|---|---|\n{rows}\n\n"
        f"Failed expectations: {failed}\n\nNear-duplicate pairs across splits: {near.pairs}"
        + f" (the {len(near.first)} listed, by check and orientation: {near_duplicates.kinds(near.first)})"
        * bool(near.first)
        + "\n"
        + _drift_markdown(drift_record)
    )


def _audit_markdown(root: Path, audit: LabelAudit, top: int = 10) -> str:
    rows = "\n".join(
        f"| {split} | {audit.images[split]} | {audit.total(split)} | "
        + ", ".join(f"{name} {n}" for name, n in audit.flagged[split].items())
        + " |"
        for split in audit.images
    )
    with (root / paths.LABEL_ISSUES).open(newline="", encoding="utf-8") as fh:
        suspects = list(csv.DictReader(fh))[:top]
    listed = "\n".join(
        f"| `{r['path']}` | {r['given_label']} | {r['suggested_label']} | {float(r['given_label_probability']):.3f} |"
        for r in suspects
    )
    grid = root / paths.LABEL_ISSUES_GRID
    return (
        "# Label audit\n\nGiven labels that the data contradicts (confident learning on out-of-sample "
        "probabilities): suspects to review, not verdicts. Test is reported only.\n\n"
        f"| split | images | flagged | flagged by given label |\n|---|---|---|---|\n{rows}\n\n"
        f"## Most suspect first (top {len(suspects)})\n\n| path | given | suggested | P(given) |\n|---|---|---|---|\n"
        f"{listed}\n\n"
        + (f"![The top label suspects]({png_data_uri(grid)})\n\n" if grid.is_file() else "")
        + f"`{paths.LABEL_ISSUES}`, `{paths.LABEL_ISSUES_GRID}`\n"
    )


def _comparison_markdown(previous: Evaluation | None, evaluation: Evaluation) -> str:
    if not previous:
        return "# Compared with the previous run\n\nNo previous metrics: this is the first evaluation.\n"
    lines = [
        f"| {k} | {shown(before)} | {shown(now)} | {shown(None if None in (before, now) else now - before, '+.4f')} |"
        for k in ("accuracy", "roc_auc", "log_loss")
        for before, now in [(getattr(previous, k), getattr(evaluation, k))]
    ]
    return (
        "# Compared with the previous run\n\n| metric | previous | this run | change |\n|---|---|---|---|\n"
        + "\n".join(lines)
    )


def _value(metric: float | None) -> float | str:
    return "n/a" if metric is None else round(metric, 4)


def _metrics_table(evaluation: Evaluation, verdict: Verdict) -> list[dict[str, Any]]:
    table = [
        {"metric": "accuracy", "value": round(evaluation.accuracy, 4)},
        {"metric": "accuracy 95% CI", "value": " - ".join(f"{v:.4f}" for v in evaluation.accuracy_ci95)},
        {"metric": "ECE", "value": round(evaluation.calibration.ece, 4)},
        {"metric": "roc_auc", "value": _value(evaluation.roc_auc)},
        {"metric": "log_loss", "value": round(evaluation.log_loss, 4)},
        {"metric": "gate", "value": "passed" if verdict.passed else "failed"},
    ]
    for name, m in evaluation.per_class.items():
        table += [{"metric": f"{name} {k}", "value": _value(getattr(m, k))} for k in ("precision", "recall", "f1")]
    return table


def _publish_audit(root: Path) -> None:
    audit = read_if_present(root / paths.LABEL_AUDIT, LabelAudit, "audit")
    if audit:
        create_markdown_artifact(
            key="label-audit",
            markdown=_audit_markdown(root, audit),
            description="Labels the data contradicts, per split and class, with the top suspects' pictures",
        )


def publish_artifacts(root: Path, previous_evaluation: Evaluation | None, ran: set[str]) -> None:
    """Publish the artifacts of the stages that ``ran`` in this flow run, and where the outputs are.

    A skipped stage publishes nothing new: its artifact's latest version, from the run that made it, stays
    the one shown (with that run's link and time), so no artifact of this run repeats old text as new.
    """
    report = read_if_present(root / paths.VALIDATION_REPORT, ValidationReport, "validate")
    if report and "validate" in ran:
        create_markdown_artifact(
            key="validation-summary",
            markdown=_validation_markdown(report, read_if_present(root / paths.DRIFT, Drift, "validate")),
            description="Counts per split and class, failed expectations, drift against the production model's data",
        )
    if "audit" in ran:
        _publish_audit(root)
    if ran & {"train", "evaluate"}:
        create_markdown_artifact(
            key="plots", markdown=plots_markdown(root), description="Training curves and the evaluation's plots"
        )
    outputs = [
        ("Metrics (DVC)", paths.METRICS),
        ("Full evaluation", paths.EVALUATION),
        ("Quality gate", paths.GATE),
        ("Model card", paths.MODEL_CARD),
        ("Data Docs", f"{paths.DATA_DOCS}/index.html"),
        ("Label suspects", paths.LABEL_ISSUES),
        ("Exported model", paths.MODEL_DIR),
        ("Production model (registry copy)", paths.PRODUCTION_DIR),
        *((title, rel) for title, rel in PLOTS),
    ]
    create_markdown_artifact(
        key="pipeline-outputs",
        markdown=f"# Outputs\n\nUnder `{root}`:\n\n| output | path |\n|---|---|\n"
        + "\n".join(f"| {name} | `{rel}` |" for name, rel in outputs)
        + "\n",
        description="Where the reports, plots, Data Docs and models are (paths relative to the repository)",
    )
    evaluation = read_if_present(root / paths.EVALUATION, Evaluation, "evaluate")
    verdict = read_if_present(root / paths.GATE, Verdict, "gate")
    if evaluation and verdict and ran & {"evaluate", "gate", "promote"}:
        table = _metrics_table(evaluation, verdict)
        create_table_artifact(key="metrics", table=table, description="Test-split metrics")
    if evaluation and verdict and ran & {"gate", "promote"}:
        create_markdown_artifact(
            key="quality-gate",
            markdown=_gate_markdown(root, evaluation, verdict),
            description="The gate's checks and whether the model is in production",
        )
    if evaluation and "evaluate" in ran:
        create_table_artifact(
            key="slices",
            table=[asdict(r) for r in evaluation.slices],
            description="Test accuracy per class, brightness bin and JPEG-size bin, with counts",
        )
        comparison = _comparison_markdown(previous_evaluation, evaluation)
        create_markdown_artifact(key="metrics-comparison", markdown=comparison)
