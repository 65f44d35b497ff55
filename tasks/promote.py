"""Stage ``promote``: the quality gate against the blessed model, the model card, and the promotion.

The gate compares the evaluated candidate with the blessed model, re-evaluated on the same Test
images, and writes its verdict to ``reports/gate.json`` and the headline numbers with the verdict to
``reports/metrics.json`` (the DVC metrics file that ``dvc exp show`` reads); the model card (``reports/model_card.md``)
is rendered with it. Only a passing candidate becomes the blessed model.

``models/blessed/`` (this stage's DVC output, kept between runs) holds the blessed model: ``model/``
(a copy of ``models/model``), ``evaluation.json`` (its evaluation), ``validation.json`` (the validation
report of the data it was trained on, the reference of validate's drift check) and ``blessed.json`` (the pointer:
the model's fingerprint, when it was promoted and the gate's checks). A failing gate leaves the
folder exactly as it was and says why; before the first pass the folder holds only a
``blessed.json`` that says no model is blessed yet.

The gate lives here, not in evaluate, because the blessed model is this stage's own output: so
evaluate depends only on what DVC tracks, and the one stage that reads ``models/blessed`` owns it.
"""

from __future__ import annotations

import csv
import datetime as dt
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from tasks import dataset, gate, metrics, model_card, paths, reports
from tasks.contract import Output, Stage, StageResult
from tasks.errors import StageError, logger
from tasks.files import atomic_dir, atomic_outputs, tree_hash, write_json
from tasks.inference import load_model, predict_split
from tasks.params.promote import PromoteParams
from tasks.reports.evaluation import Difference, Evaluation
from tasks.reports.label_audit import LabelAudit
from tasks.reports.source import Source
from tasks.reports.validation import ValidationReport
from tasks.reports.verdict import Baseline, Blessed, ConfigIdentity, DatasetIdentity, Identity

log = logger("promote")


@dataclass(frozen=True)
class PromoteResult(StageResult):
    """Whether the candidate became the blessed model, and why not."""

    promoted: bool
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


def why_not_comparable(candidate: Identity, blessed: Identity | None) -> str | None:
    """Why the blessed model's figures are not comparable with the candidate's, in words; None when they are."""
    if not blessed:
        return "the blessed model does not record the dataset it was trained on (blessed by an older version)"

    def name(data: DatasetIdentity) -> str:
        return f"{data.slug or data.source}, sha256 {str(data.sha256)[:12]}…"

    if blessed.dataset.sha256 != candidate.dataset.sha256:
        return (
            f"the blessed model was trained on another dataset ({name(blessed.dataset)}) than this one "
            f"({name(candidate.dataset)})"
        )
    was, now = vars(blessed.config), vars(candidate.config)
    changed = [f"{k} {v!r} → {now[k]!r}" for k, v in was.items() if now[k] != v]
    return "the blessed model has another configuration: " + "; ".join(changed) if changed else None


def read_answers(predictions_file: Path, class_names: list[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The candidate's Test answers from ``reports/predictions.csv``: paths, true labels, right or wrong."""
    with predictions_file.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    y = np.array([class_names.index(r["true_label"]) for r in rows], dtype=int)
    return [r["path"] for r in rows], y, np.array([r["true_label"] == r["predicted_label"] for r in rows])


RESTORE_HELP = (
    "restore it with `dvc checkout models/blessed` (the blessed model dvc.lock names), or start over without "
    "a baseline: rm -r models/blessed"
)


def read_blessed(blessed_dir: Path) -> tuple[Blessed, Path] | None:
    """The blessed model's pointer and folder; None when no model is blessed yet.

    Raises:
        StageError: when the pointer names a blessed model whose files are missing or not the ones
            it names (never a silent fall-back to the floor), or the pointer itself is unreadable.
    """
    folder = blessed_dir / paths.BLESSED_MODEL_NAME
    pointer_file = blessed_dir / paths.BLESSED_POINTER_NAME
    if not pointer_file.is_file():
        if folder.exists():
            raise StageError(f"{folder}: a blessed model without {pointer_file.name}; {RESTORE_HELP}")
        return None
    pointer = reports.read(pointer_file, Blessed, "promote", remedy=RESTORE_HELP)
    if not pointer.blessed:
        return None  # written by a failing first gate: nothing blessed yet
    expected = str(pointer.fingerprint)
    if not (folder / "saved_model.pb").is_file():
        raise StageError(f"{pointer_file} names blessed model {expected[:12]}… but {folder} is missing; {RESTORE_HELP}")
    if tree_hash(folder) != expected:
        raise StageError(
            f"{folder}: its files are not those of blessed model {expected[:12]}… named in {pointer_file} (changed "
            f"or corrupt); {RESTORE_HELP}"
        )
    return pointer, folder


def blessed_answers(folder: Path, processed: Path, names: list[str], batch_size: int) -> np.ndarray:
    """Whether the blessed model in ``folder`` is right on each Test image ``names`` (in that order)."""
    blessed = load_model(folder)
    pred = predict_split(blessed, dataset.shard_files(processed, "Test"), batch_size)
    right = dict(zip(pred.names, pred.probs.argmax(axis=1) == pred.y_true))
    return np.array([right[n] for n in names])


def compare_with_blessed(
    blessed_dir: Path,
    evaluation: Evaluation,
    candidate: Identity,
    predictions_file: Path,
    processed: Path,
    params: PromoteParams,
) -> tuple[Baseline | None, dict[str, Difference] | None]:
    """The blessed model on the candidate's Test images, compared with the candidate image by image.

    Returns:
        ``(baseline, differences)``: ``(None, None)`` before any model was promoted; otherwise the
        blessed model, saying whether the comparison decides the gate (``gating``, from
        ``promote.baseline``) and in words why it is not comparable (``reason``), and the paired
        differences (None when its class names differ).
    """
    found = read_blessed(blessed_dir)
    if found is None:
        return None, None
    pointer, folder = found
    baseline = Baseline(
        model=folder.as_posix(),
        fingerprint=str(pointer.fingerprint),
        promoted_at=pointer.promoted_at,
        trained_on=pointer.identity,
        gating=False,
    )
    class_names = candidate.config.class_names
    names, y, candidate_correct = read_answers(predictions_file, class_names)
    if baseline.fingerprint == evaluation.model.fingerprint:
        blessed_correct = candidate_correct  # the same export: the same answers
    else:
        blessed_classes = load_model(folder).class_names
        if blessed_classes != class_names:
            reason = f"its class names {blessed_classes} differ from the candidate's {class_names}"
            return replace(baseline, reason=reason), None
        blessed_correct = blessed_answers(folder, processed, names, params.batch_size)
    reason = why_not_comparable(candidate, baseline.trained_on)
    if params.baseline == "never":
        reason = "promote.baseline is never"
    differences = metrics.paired_differences(
        y, candidate_correct, blessed_correct, class_names, params.bootstrap_samples, params.seed
    )
    gating = params.baseline == "always" or reason is None  # the reason is kept under always
    return replace(baseline, accuracy=float(blessed_correct.mean()), gating=gating, reason=reason), differences


def bless(model_dir: Path, evaluation_file: Path, validation_report: Path, blessed_dir: Path, pointer: Blessed) -> None:
    """Replace ``blessed_dir`` with a copy of the model, its evaluation, its data's validation report and the pointer.

    The validation report is the reference that the next datasets are compared with (validate's drift check).
    """
    with atomic_dir(blessed_dir) as tmp:
        shutil.copytree(model_dir, tmp / paths.BLESSED_MODEL_NAME)
        shutil.copy2(evaluation_file, tmp / paths.BLESSED_EVALUATION_NAME)
        shutil.copy2(validation_report, tmp / paths.BLESSED_VALIDATION_NAME)
        reports.write(tmp / paths.BLESSED_POINTER_NAME, pointer)


def _scope(baseline: Baseline | None) -> str:
    """What the gate was against, in words."""
    if baseline is None:
        return "absolute floor only: no blessed model yet"
    if baseline.gating:
        return "against the blessed model"
    return f"absolute floor only: {baseline.reason}; the comparison is shown, it does not decide"


def _hold_back(blessed_dir: Path, reasons: list[str]) -> None:
    """A failed gate: the blessed model stays; before the first pass, a pointer that says nothing is blessed."""
    if not blessed_dir.exists():  # DVC needs the output
        with atomic_dir(blessed_dir) as tmp:
            reports.write(
                tmp / paths.BLESSED_POINTER_NAME,
                Blessed(blessed=False, reason="no model has passed the quality gate yet"),
            )
    print(f"not promoted: quality gate failed ({'; '.join(reasons)}); the blessed model is unchanged")


def promote(
    evaluation_file: Path,
    predictions_file: Path,
    model_dir: Path,
    processed: Path,
    source_file: Path,
    validation_report: Path,
    label_audit: Path,
    blessed_dir: Path,
    gate_file: Path,
    metrics_file: Path,
    card_file: Path,
    params: PromoteParams,
) -> PromoteResult:
    """Gate the candidate against the blessed model; bless it when the gate passes.

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
    baseline, differences = compare_with_blessed(
        blessed_dir, evaluation, candidate, predictions_file, processed, params
    )
    verdict = gate.gate(evaluation.accuracy, params, differences, baseline, gate.undefined_metrics(evaluation))
    card = model_card.render(
        evaluation,
        verdict,
        source,
        reports.read(validation_report, ValidationReport, "validate"),
        reports.read(label_audit, LabelAudit, "audit"),
    )
    with atomic_outputs([gate_file, metrics_file, card_file]) as tmp:
        reports.write(tmp / gate_file.name, verdict)
        write_json(tmp / metrics_file.name, gate.headline(evaluation, verdict))
        (tmp / card_file.name).write_text(card, encoding="utf-8")
    reasons = gate.failed_checks(verdict)
    print(f"quality gate {'passed' if verdict.passed else 'FAILED: ' + '; '.join(reasons)} ({_scope(baseline)})")
    if not verdict.passed:
        _hold_back(blessed_dir, reasons)
        return PromoteResult(promoted=False, reasons=reasons, fingerprint=fingerprint)
    pointer = Blessed(
        blessed=True,
        fingerprint=fingerprint,
        accuracy=evaluation.accuracy,
        promoted_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        handle=evaluation.model.handle,
        identity=candidate,
        gate=verdict,
    )
    bless(model_dir, evaluation_file, validation_report, blessed_dir, pointer)
    print(f"promoted: {model_dir} is now the blessed model ({blessed_dir}, accuracy {evaluation.accuracy:.4f})")
    return PromoteResult(promoted=True, fingerprint=fingerprint)


STAGE = Stage(
    "promote",
    promote,
    deps={
        "evaluation_file": paths.EVALUATION,
        "predictions_file": paths.PREDICTIONS,
        "model_dir": paths.MODEL_DIR,
        "processed": paths.PROCESSED_DIR,
        "source_file": paths.SOURCE_FILE,
        "validation_report": paths.VALIDATION_REPORT,
        "label_audit": paths.LABEL_AUDIT,
    },
    # blessed_dir is kept when the gate fails: a failing model never replaces the blessed one. The
    # verdict and the card depend on which model is blessed (this stage's own output, e.g. a rerun after
    # a promotion compares the model with itself), so none of these is byte-reproducible.
    outs={
        "blessed_dir": Output(paths.BLESSED_DIR, persist=True, reproducible=False),
        "gate_file": Output(paths.GATE, reproducible=False),
        "metrics_file": Output(paths.METRICS, "metrics", reproducible=False),
        "card_file": Output(paths.MODEL_CARD, reproducible=False),
    },
    params={"params": "promote"},
)
