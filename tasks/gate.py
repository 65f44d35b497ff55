"""Stage ``gate``: the quality gate against the production model, and the model card. It never promotes.

The gate compares the evaluated candidate with the registry's production model (``tasks.registry``,
fetched into ``models/production/`` before the stage runs), re-evaluated on the same Test images. It
writes the verdict to ``reports/gate.json``, the headline numbers with the verdict to
``reports/metrics.json`` (the DVC metrics file, kept in git, that ``dvc exp show`` reads) and the model
card. So every run and every ``dvc exp run`` shows its verdict, and none changes what is in production:
that is ``make promote`` (``ops.promote``), which refuses a candidate whose verdict failed.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from tasks import dataset, metrics, model_card, paths, registry, reports, verdict
from tasks.contract import Output, Stage, StageResult
from tasks.errors import StageError, logger
from tasks.files import atomic_outputs, tree_hash, write_json
from tasks.inference import load_model, predict_split
from tasks.params.gate import GateParams
from tasks.reports.evaluation import Difference, Evaluation
from tasks.reports.label_audit import LabelAudit
from tasks.reports.source import Source
from tasks.reports.validation import ValidationReport
from tasks.reports.verdict import Baseline, ConfigIdentity, DatasetIdentity, Identity

log = logger("gate")


@dataclass(frozen=True)
class GateResult(StageResult):
    """Whether the candidate may be promoted (``make promote``), and why not."""

    passed: bool
    reasons: list[str] = field(default_factory=list)
    fingerprint: str = ""


def identity(evaluation: Evaluation, source: Source) -> Identity:
    """What makes two models comparable: the dataset they were trained on and the configuration that matters."""
    return Identity(
        dataset=DatasetIdentity(
            source=source.source, slug=source.slug, dataset_version=source.dataset_version, sha256=source.sha256
        ),
        config=ConfigIdentity(
            handle=evaluation.model.handle,
            image_size=evaluation.model.image_size,
            class_names=list(evaluation.per_class),
            backbone_sha256=evaluation.model.backbone_sha256,
        ),
    )


def why_not_comparable(candidate: Identity, production: Identity) -> str | None:
    """Why the production model's figures are not comparable with the candidate's, in words; None when they are."""

    def name(data: DatasetIdentity) -> str:
        return f"{data.slug or data.source}, sha256 {str(data.sha256)[:12]}…"

    if production.dataset.sha256 != candidate.dataset.sha256:
        return (
            f"the production model was trained on another dataset ({name(production.dataset)}) than this one "
            f"({name(candidate.dataset)})"
        )
    was, now = vars(production.config), vars(candidate.config)
    changed = [f"{k} {v!r} → {now[k]!r}" for k, v in was.items() if now[k] != v]
    return "the production model has another configuration: " + "; ".join(changed) if changed else None


def read_answers(predictions_file: Path, class_names: list[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The candidate's Test answers from ``reports/predictions.csv``: paths, true labels, right or wrong."""
    with predictions_file.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    y = np.array([class_names.index(r["true_label"]) for r in rows], dtype=int)
    return [r["path"] for r in rows], y, np.array([r["true_label"] == r["predicted_label"] for r in rows])


def read_production(folder: Path) -> tuple[registry.Production, Identity, Path] | None:
    """The production model's pointer, the identity it was trained with, and its folder; None when none exists.

    Raises:
        StageError: when the copy is not the whole model its pointer names (never a silent fall-back to the floor).
    """
    if not folder.exists():
        return None
    pointer = registry.read_pointer(folder)
    model = folder / paths.PRODUCTION_MODEL_NAME
    if pointer is None:
        problem = f"{paths.PRODUCTION_POINTER_NAME} is missing or unreadable"
    elif not (model / "saved_model.pb").is_file():
        problem = f"the model {pointer.model_version} is missing"
    elif tree_hash(model) != pointer.fingerprint:
        problem = f"the model's files are not those of {pointer.model_version}"
    else:
        evaluation = reports.read(folder / paths.PRODUCTION_EVALUATION_NAME, Evaluation, "evaluate")
        source = reports.read(folder / paths.PRODUCTION_SOURCE_NAME, Source, "download")
        return pointer, identity(evaluation, source), model
    raise StageError(
        f"{folder}: not a whole copy of the production model ({problem}); delete it and rerun: the stage "
        "fetches it again from the registry"
    )


def production_answers(folder: Path, processed: Path, names: list[str], batch_size: int) -> np.ndarray:
    """Whether the model in ``folder`` is right on each Test image ``names`` (in that order)."""
    model = load_model(folder)
    pred = predict_split(model, dataset.shard_files(processed, "Test"), batch_size)
    right = dict(zip(pred.names, pred.probs.argmax(axis=1) == pred.y_true))
    return np.array([right[n] for n in names])


def compare_with_production(
    production_dir: Path,
    evaluation: Evaluation,
    candidate: Identity,
    predictions_file: Path,
    processed: Path,
    params: GateParams,
) -> tuple[Baseline | None, dict[str, Difference] | None]:
    """The production model on the candidate's Test images, compared with the candidate image by image.

    Returns:
        ``(baseline, differences)``: ``(None, None)`` when no model is in production; otherwise the
        production model, saying whether the comparison decides the gate (``gating``, from
        ``gate.baseline``) and in words why it is not comparable (``reason``), and the paired
        differences (None when its class names differ).
    """
    found = read_production(production_dir)
    if found is None:
        return None, None
    pointer, trained_on, folder = found
    baseline = Baseline(
        model=f"{registry.ARTIFACT}@{pointer.model_version}",
        fingerprint=pointer.fingerprint,
        promoted_at=pointer.assigned_at,
        trained_on=trained_on,
        gating=False,
        commit=pointer.commit,
    )
    class_names = candidate.config.class_names
    names, y, candidate_correct = read_answers(predictions_file, class_names)
    if baseline.fingerprint == evaluation.model.fingerprint:
        production_correct = candidate_correct  # the same export: the same answers
    else:
        production_classes = load_model(folder).class_names
        if production_classes != class_names:
            reason = f"its class names {production_classes} differ from the candidate's {class_names}"
            return replace(baseline, reason=reason), None
        production_correct = production_answers(folder, processed, names, params.batch_size)
    reason = why_not_comparable(candidate, baseline.trained_on)
    if params.baseline == "never":
        reason = "gate.baseline is never"
    differences = metrics.paired_differences(
        y, candidate_correct, production_correct, class_names, params.bootstrap_samples, params.seed
    )
    gating = params.baseline == "always" or reason is None  # the reason is kept under always
    return replace(baseline, accuracy=float(production_correct.mean()), gating=gating, reason=reason), differences


def _scope(baseline: Baseline | None) -> str:
    """What the gate was against, in words."""
    if baseline is None:
        return "absolute floor only: no model in production yet"
    if baseline.gating:
        return f"against the production model {baseline.model}"
    return f"absolute floor only: {baseline.reason}; the comparison is shown, it does not decide"


def gate(
    evaluation_file: Path,
    predictions_file: Path,
    model_dir: Path,
    processed: Path,
    source_file: Path,
    validation_report: Path,
    label_audit: Path,
    production_dir: Path,
    gate_file: Path,
    metrics_file: Path,
    card_file: Path,
    params: GateParams,
) -> GateResult:
    """Gate the candidate against the production model; write the verdict, the metrics and the model card.

    Raises:
        StageError: when the metrics were computed for another model than the one in ``model_dir``.
    """
    evaluation = reports.read(evaluation_file, Evaluation, "evaluate")
    fingerprint = tree_hash(model_dir)
    if evaluation.model.fingerprint != fingerprint:
        raise StageError(
            f"{evaluation_file}: evaluated another model than {model_dir}; "
            "run the evaluate stage first (dvc repro evaluate)"
        )
    source = reports.read(source_file, Source, "download")
    candidate = identity(evaluation, source)
    baseline, differences = compare_with_production(
        production_dir, evaluation, candidate, predictions_file, processed, params
    )
    found = verdict.decide(evaluation.accuracy, params, differences, baseline, verdict.undefined_metrics(evaluation))
    card = model_card.render(
        evaluation,
        found,
        source,
        reports.read(validation_report, ValidationReport, "validate"),
        reports.read(label_audit, LabelAudit, "audit"),
    )
    with atomic_outputs([gate_file, metrics_file, card_file]) as tmp:
        reports.write(tmp / gate_file.name, found)
        write_json(tmp / metrics_file.name, verdict.headline(evaluation, found))
        (tmp / card_file.name).write_text(card, encoding="utf-8")
    reasons = verdict.failed_checks(found)
    if found.passed:
        print(f"quality gate passed ({_scope(baseline)}); `make promote` makes {model_dir} the production model")
    else:
        print(f"quality gate FAILED: {'; '.join(reasons)} ({_scope(baseline)}); it cannot be promoted")
    return GateResult(passed=found.passed, reasons=reasons, fingerprint=fingerprint)


STAGE = Stage(
    "gate",
    gate,
    deps={
        "evaluation_file": paths.EVALUATION,
        "predictions_file": paths.PREDICTIONS,
        "model_dir": paths.MODEL_DIR,
        "processed": paths.PROCESSED_DIR,
        "source_file": paths.SOURCE_FILE,
        "validation_report": paths.VALIDATION_REPORT,
        "label_audit": paths.LABEL_AUDIT,
    },
    # The verdict and the card depend on which model is in production (the registry, not a DVC dep), so none
    # of these is byte-reproducible. The metrics file is small and kept in git (cache: false): a fresh clone's
    # `dvc exp show` and `dvc metrics diff` have main's figures.
    outs={
        "gate_file": Output(paths.GATE, reproducible=False),
        "metrics_file": Output(paths.METRICS, "metrics", cache=False, reproducible=False),
        "card_file": Output(paths.MODEL_CARD, reproducible=False),
    },
    params={"params": "gate"},
    work={"production_dir": paths.PRODUCTION_DIR},
    prepare=registry.prepare,
)
