"""Stage ``promote``: the quality gate against the blessed model, the model card, and the promotion.

The gate compares the evaluated candidate with the blessed model, re-evaluated on the same Test
images, and writes its verdict to ``reports/gate.json``; the model card (``reports/model_card.md``)
is rendered with it. Only a passing candidate becomes the blessed model.

``models/blessed/`` (this stage's DVC output, kept between runs) holds the blessed model: ``model/``
(a copy of ``models/model``), ``metrics.json`` (its evaluation) and ``blessed.json`` (the pointer:
the model's fingerprint, when it was promoted and the gate's checks). A failing gate leaves the
folder exactly as it was and says why; before the first pass the folder holds only a
``blessed.json`` that says no model is blessed yet.

The gate lives here, not in evaluate, because the blessed model is this stage's own output: so
evaluate depends only on what DVC tracks, and the one stage that reads ``models/blessed`` owns it.
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks import dataset, model_card, paths
from tasks import metrics as qm
from tasks.contract import Output, Stage
from tasks.evaluate import predict_split
from tasks.files import StageError, atomic_dir, atomic_outputs, logger, read_json, tree_hash, write_json
from tasks.inference import load_model
from tasks.params import PromoteParams

log = logger("promote")


@dataclass(frozen=True)
class PromoteResult:
    """Whether the candidate became the blessed model, and why not."""

    promoted: bool
    reasons: list[str] = field(default_factory=list)
    fingerprint: str = ""


def blessed_baseline(
    blessed_dir: Path, candidate: dict[str, Any], files: list[str], batch_size: int
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The blessed model's metrics on the same Test images (the gate's baseline), and a record of it.

    ``candidate`` is the candidate's metrics: when the blessed model is the same export (same
    fingerprint), they are the baseline and the Test split is not predicted again. Returns
    ``(None, None)`` before any model was promoted, and ``(None, record)`` when the blessed model has
    other class names (then it is no baseline: only the absolute floor applies).
    """
    folder = blessed_dir / Path(paths.BLESSED_MODEL).name
    if not (folder / "saved_model.pb").is_file():
        return None, None
    record: dict[str, Any] = {"model": paths.BLESSED_MODEL, "fingerprint": tree_hash(folder)}
    pointer = blessed_dir / Path(paths.BLESSED_POINTER).name
    if pointer.is_file():
        record["promoted_at"] = read_json(pointer, "promote").get("promoted_at")
    class_names = list(candidate["per_class"])
    if record["fingerprint"] == candidate["model"]["fingerprint"]:
        m = candidate
    else:
        blessed = load_model(folder)
        if blessed.class_names != class_names:
            record["comparable"] = False
            record["reason"] = f"its class names {blessed.class_names} differ from the candidate's {class_names}"
            return None, record
        pred = predict_split(blessed, files, batch_size)
        positive = class_names.index(candidate["roc_positive_class"])
        m = qm.classification_metrics(pred.y_true, pred.probs, blessed.class_names, positive)
    record.update(
        comparable=True, accuracy=m["accuracy"], recall={name: c["recall"] for name, c in m["per_class"].items()}
    )
    return m, record


def bless(model_dir: Path, metrics_file: Path, blessed_dir: Path, pointer: dict[str, Any]) -> None:
    """Replace ``blessed_dir`` with a copy of the model, its metrics and the pointer."""
    with atomic_dir(blessed_dir) as tmp:
        shutil.copytree(model_dir, tmp / Path(paths.BLESSED_MODEL).name)
        shutil.copy2(metrics_file, tmp / Path(paths.BLESSED_METRICS).name)
        write_json(tmp / Path(paths.BLESSED_POINTER).name, pointer)


def promote(
    metrics_file: Path,
    model_dir: Path,
    processed: Path,
    source_file: Path,
    validation_report: Path,
    blessed_dir: Path,
    gate_file: Path,
    card_file: Path,
    params: PromoteParams,
) -> PromoteResult:
    """Gate the candidate against the blessed model; bless it when the gate passes.

    Raises:
        StageError: when the metrics were computed for another model than the one in ``model_dir``.
    """
    metrics = read_json(metrics_file, "evaluate")
    fingerprint = tree_hash(model_dir)
    if metrics.get("model", {}).get("fingerprint") != fingerprint:
        raise StageError(
            f"{metrics_file}: evaluated another model than {model_dir}; "
            "run the evaluate stage first (dvc repro evaluate)"
        )
    baseline, record = blessed_baseline(blessed_dir, metrics, dataset.shard_files(processed, "Test"), params.batch_size)
    verdict = {**qm.gate(metrics, params, baseline), "baseline": record}
    card = model_card.render(
        metrics, verdict, read_json(source_file, "download"), read_json(validation_report, "validate")
    )
    with atomic_outputs([gate_file, card_file]) as tmp:
        write_json(tmp / gate_file.name, verdict)
        (tmp / card_file.name).write_text(card, encoding="utf-8")
    scope = (
        "against the blessed model"
        if baseline
        else "absolute floor only: " + ("no blessed model yet" if record is None else record["reason"])
    )
    reasons = qm.failed_checks(verdict)
    print(f"quality gate {'passed' if verdict['passed'] else 'FAILED: ' + '; '.join(reasons)} ({scope})")
    if not verdict["passed"]:
        if not blessed_dir.exists():  # DVC needs the output; it says that nothing is blessed
            with atomic_dir(blessed_dir) as tmp:
                write_json(
                    tmp / Path(paths.BLESSED_POINTER).name,
                    {"blessed": False, "reason": "no model has passed the quality gate yet"},
                )
        print(f"not promoted: quality gate failed ({'; '.join(reasons)}); the blessed model is unchanged")
        return PromoteResult(False, reasons, fingerprint)
    bless(
        model_dir,
        metrics_file,
        blessed_dir,
        {
            "blessed": True,
            "fingerprint": fingerprint,
            "accuracy": metrics["accuracy"],
            "promoted_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "handle": metrics["model"].get("handle"),
            "gate": verdict,
        },
    )
    print(f"promoted: {model_dir} is now the blessed model ({blessed_dir}, accuracy {metrics['accuracy']:.4f})")
    return PromoteResult(True, [], fingerprint)


STAGE = Stage(
    "promote",
    promote,
    deps={
        "metrics_file": paths.METRICS,
        "model_dir": paths.MODEL_DIR,
        "processed": paths.PROCESSED_DIR,
        "source_file": paths.SOURCE_FILE,
        "validation_report": paths.VALIDATION_REPORT,
    },
    # blessed_dir is kept when the gate fails: a failing model never replaces the blessed one
    outs={
        "blessed_dir": Output(paths.BLESSED_DIR, persist=True, reproducible=False),  # holds promoted_at
        "gate_file": Output(paths.GATE, "metrics"),
        "card_file": paths.MODEL_CARD,
    },
    params={"params": "promote"},
)

if __name__ == "__main__":
    STAGE.main()
