"""Stage ``promote``: make the evaluated model the blessed one, only if it passed the quality gate.

``models/blessed/`` (a DVC output kept between runs) holds the blessed model: ``model/`` (a copy of
``models/model``), ``metrics.json`` (its evaluation) and ``blessed.json`` (the pointer: the model's
fingerprint, when it was promoted and the gate's checks). The next evaluation compares its candidate
with this model. A failing gate leaves the folder exactly as it was and says why; before the first
pass the folder holds only a ``blessed.json`` that says no model is blessed yet.
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks import paths
from tasks.cli import run_cli, stage_params
from tasks.files import StageError, atomic_dir, logger, read_json, tree_hash, write_json
from tasks.metrics import failed_checks
from tasks.params import Params

log = logger("promote")


@dataclass(frozen=True)
class PromoteResult:
    """Whether the candidate became the blessed model, and why not."""

    promoted: bool
    reasons: list[str] = field(default_factory=list)
    fingerprint: str = ""


def promote(metrics_file: Path, model_dir: Path, blessed_dir: Path) -> PromoteResult:
    """Copy ``model_dir`` to ``blessed_dir`` when ``metrics_file`` says its gate passed.

    Raises:
        StageError: when the metrics were computed for another model than the one in ``model_dir``.
    """
    metrics = read_json(metrics_file, "evaluate")
    fingerprint = tree_hash(model_dir)
    if metrics.get("model", {}).get("fingerprint") != fingerprint:
        raise StageError(f"{metrics_file}: evaluated another model than {model_dir}; "
                         "run the evaluate stage first (dvc repro evaluate)")
    gate = metrics["gate"]
    if not gate["passed"]:
        reasons = failed_checks(gate)
        if not blessed_dir.exists():  # DVC needs the output; it says that nothing is blessed
            with atomic_dir(blessed_dir) as tmp:
                write_json(tmp / Path(paths.BLESSED_POINTER).name, {"blessed": False, "reason": "no model has passed "
                                                                    "the quality gate yet"})
        print(f"not promoted: quality gate failed ({'; '.join(reasons)}); the blessed model is unchanged")
        return PromoteResult(False, reasons, fingerprint)
    pointer: dict[str, Any] = {
        "blessed": True, "fingerprint": fingerprint, "accuracy": metrics["accuracy"],
        "promoted_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "handle": metrics["model"].get("handle"), "gate": gate,
    }
    with atomic_dir(blessed_dir) as tmp:
        shutil.copytree(model_dir, tmp / Path(paths.BLESSED_MODEL).name)
        shutil.copy2(metrics_file, tmp / Path(paths.BLESSED_METRICS).name)
        write_json(tmp / Path(paths.BLESSED_POINTER).name, pointer)
    print(f"promoted: {model_dir} is now the blessed model ({blessed_dir}, accuracy {metrics['accuracy']:.4f})")
    return PromoteResult(True, [], fingerprint)


def run(root: Path, params: Params) -> PromoteResult:
    """Run the stage on the repository at ``root`` (``params`` is unused: the verdict is in metrics.json)."""
    del params
    return promote(root / paths.METRICS, root / paths.MODEL_DIR, root / paths.BLESSED_DIR)


def main(argv: list[str] | None = None) -> None:
    """``python -m tasks.promote``: run the stage, as dvc.yaml does."""
    run(Path("."), stage_params(argv, __doc__))


if __name__ == "__main__":
    run_cli(main)
