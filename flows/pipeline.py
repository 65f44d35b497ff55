"""The Prefect 3 flow ``gender-pipeline``: download -> validate -> preprocess -> train -> evaluate -> promote.

Each stage is the same function that ``dvc repro`` runs, called through its contract
(``tasks.stages.STAGES``, the same declarations ``dvc.yaml`` is generated from), wrapped as a task.
Before a stage runs, the flow asks DVC whether it is up to date; if so, its task run ends in a
``Skipped`` state that says why. A stale stage runs in-process and is then recorded in dvc.lock
(``dvc commit``), exactly as ``dvc repro`` would record it. Retries are the download stage's own
(network errors only), so the tasks themselves do not retry. Task runs carry the git commit as
their version and the stage's DVC input hash as a tag. A failed quality gate ends the ``promote``
task in a ``Not promoted`` state with the reasons.
The run publishes artifacts with stable keys: validation summary, metrics, the quality gate and
promotion, slices, the comparison with the previous metrics and links to the outputs.

``python -m flows.pipeline`` runs it with no server started (Prefect's temporary local server on
SQLite); set PREFECT_API_URL to record runs in a running server instead (``make ui``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.states import Completed

from flows.dvc_state import DvcState, git_version
from tasks import model_card, paths
from tasks.metrics import failed_checks
from tasks.params import load
from tasks.quiet import add_verbose_flag
from tasks.stages import BY_NAME

STAGES = tuple(BY_NAME)  # DAG order, as in dvc.yaml


@contextlib.contextmanager
def stage_logs_to_prefect() -> Iterator[None]:
    """Forward the stages' own loggers (``pipeline.*``) to the task run's logs."""
    run_logger = get_run_logger()

    class Forward(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            run_logger.log(record.levelno, "%s", record.getMessage())

    handler, stage_logger = Forward(), logging.getLogger("pipeline")
    stage_logger.addHandler(handler)
    stage_logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        stage_logger.removeHandler(handler)


def _summary(result: Any) -> dict[str, Any]:
    """A JSON-able view of a stage's result: the fields its dataclass shows in its repr."""
    shown = {f.name: getattr(result, f.name) for f in dataclasses.fields(result) if f.repr}
    return json.loads(json.dumps(shown, default=str))


def run_stage(stage: str, root: str, reasons: list[str]) -> Any:
    """Run one stage, or end in a ``Skipped`` state when there is no reason to (DVC: up to date)."""
    logger = get_run_logger()
    if not reasons:
        message = f"{stage}: skipped, up to date in dvc.lock (same code, params and inputs)"
        logger.info(message)
        return Completed(name="Skipped", message=message)
    logger.info("%s: running because %s", stage, "; ".join(reasons))
    with stage_logs_to_prefect():
        result = BY_NAME[stage].run(Path(root), load(Path(root) / paths.PARAMS_FILE))
    if getattr(result, "promoted", None) is False:
        message = "not promoted: " + "; ".join(result.reasons)
        logger.warning("%s; the blessed model is unchanged", message)
        return Completed(name="Not promoted", message=message)
    return _summary(result)


def stage_task(stage: str, version: str, inputs_hash: str) -> Any:
    """The Prefect task for one stage, versioned by git commit and tagged with its DVC input hash."""
    return task(
        run_stage,
        name=stage,
        task_run_name=stage,
        log_prints=True,
        version=version,
        tags=[f"stage:{stage}", f"git:{version}", f"dvc:{inputs_hash}"],
    )


def _read(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None


def _gate_markdown(root: Path, metrics: dict[str, Any], gate: dict[str, Any]) -> str:
    pointer = _read(root / paths.BLESSED_POINTER) or {}
    if not gate["passed"]:
        outcome = "not promoted: " + "; ".join(failed_checks(gate))
    elif pointer.get("fingerprint") == metrics["model"]["fingerprint"]:
        outcome = "promoted: this model is now the blessed one"
    else:
        outcome = "not promoted"
    return (
        f"# Quality gate: {'passed' if gate['passed'] else 'FAILED'}\n\n{outcome}\n\n{model_card.gate_section(gate)}\n"
    )


def publish_artifacts(root: Path, previous_metrics: dict[str, Any] | None) -> None:
    """Artifacts with stable keys, so the UI keeps their history across runs."""
    report = _read(root / paths.VALIDATION_REPORT)
    if report:
        rows = "\n".join(f"| {group} | {n} |" for group, n in report["counts"].items())
        failed = (
            "\n".join(
                f"- {f['type']}({f['column']}): {f['unexpected_count']} bad, e.g. {f['offenders'][:3]}"
                for f in report["failed"]
            )
            or "none"
        )
        create_markdown_artifact(
            key="validation-summary",
            markdown=f"# Validation\n\n{'passed' if report['success'] else 'FAILED'}: {report['kept']} images kept, "
            f"{len(report['dropped'])} dropped\n\n| split/class | images |\n|---|---|\n{rows}\n\n"
            f"Failed expectations: {failed}\n",
            description="Counts per split and class, and failed expectations",
        )
    metrics, gate = _read(root / paths.METRICS), _read(root / paths.GATE)
    if not metrics or not gate:
        return
    table = [
        {"metric": "accuracy", "value": round(metrics["accuracy"], 4)},
        {"metric": "accuracy 95% CI", "value": " - ".join(f"{v:.4f}" for v in metrics["accuracy_ci95"])},
        {"metric": "ECE", "value": round(metrics["calibration"]["ece"], 4)},
        {"metric": "roc_auc", "value": round(metrics["roc_auc"], 4)},
        {"metric": "log_loss", "value": round(metrics["log_loss"], 4)},
        {"metric": "gate", "value": "passed" if gate["passed"] else "failed"},
    ]
    for name, m in metrics["per_class"].items():
        table += [{"metric": f"{name} {k}", "value": round(m[k], 4)} for k in ("precision", "recall", "f1")]
    create_table_artifact(key="metrics", table=table, description="Test-split metrics")
    create_markdown_artifact(
        key="quality-gate",
        markdown=_gate_markdown(root, metrics, gate),
        description="The gate's checks and whether the model was promoted",
    )
    create_table_artifact(
        key="slices",
        table=metrics["slices"],
        description="Test accuracy per class, brightness bin and JPEG-size bin, with counts",
    )
    if previous_metrics:
        lines = [
            f"| {k} | {previous_metrics[k]:.4f} | {metrics[k]:.4f} | {metrics[k] - previous_metrics[k]:+.4f} |"
            for k in ("accuracy", "roc_auc", "log_loss")
        ]
        comparison = "| metric | previous | this run | change |\n|---|---|---|---|\n" + "\n".join(lines)
    else:
        comparison = "No previous metrics: this is the first evaluation."
    create_markdown_artifact(key="metrics-comparison", markdown=f"# Compared with the previous run\n\n{comparison}\n")
    links = [
        ("Data Docs", f"{paths.DATA_DOCS}/index.html"),
        ("Exported model", paths.MODEL_DIR),
        ("Blessed model", paths.BLESSED_DIR),
        ("Model card", paths.MODEL_CARD),
        ("Training curves", paths.CURVES),
        *((f"Plot: {p.stem}", str(p.relative_to(root))) for p in sorted((root / paths.FIGURES_DIR).glob("*.png"))),
    ]
    create_markdown_artifact(
        key="pipeline-outputs",
        markdown="# Outputs\n\n" + "\n".join(f"- [{name}]({(root / rel).as_uri()}) `{rel}`" for name, rel in links),
        description="Where the plots, Data Docs and model are",
    )


@flow(name="gender-pipeline", log_prints=True)
def gender_pipeline(root: str = ".", force: list[str] | None = None) -> dict[str, Any]:
    """Run the stages in order, skipping those DVC reports up to date.

    Args:
        root: the repository (holding dvc.yaml and params.yaml).
        force: stages to rerun even when up to date (e.g. ``["download"]`` for a new Kaggle version).
    """
    state = DvcState(Path(root))
    unknown = sorted(set(force or ()) - set(STAGES))
    if unknown:
        raise ValueError(f"force: unknown stage(s) {unknown}; use some of {list(STAGES)}")
    load(state.root / paths.PARAMS_FILE)  # bad params stop the run before any stage
    previous_metrics = _read(state.root / paths.METRICS)
    version, results, previous = git_version(state.root), {}, None
    with state.locked():
        for stage in STAGES:
            reasons = [json.dumps(c, default=str) for c in state.changes(stage)]
            reasons += ["forced by the force parameter"] if stage in (force or ()) else []
            run = stage_task(stage, version, state.inputs_hash(stage))
            # wait_for records the DAG's edge, so the UI's flow-run graph draws the stages as a chain
            previous = run(stage, str(state.root), reasons, wait_for=[previous] if previous else None, return_state=True)
            results[stage] = previous.result()
            if reasons:
                state.record(stage)  # dvc.lock now says what dvc repro would have written
                print(f"{stage}: recorded in dvc.lock")
    publish_artifacts(state.root, previous_metrics)
    print(
        f"Results: {state.root / paths.METRICS}, {state.root / paths.FIGURES_DIR}, model {state.root / paths.MODEL_DIR}"
    )
    return results


def main(argv: list[str] | None = None) -> None:
    """``python -m flows.pipeline [--root DIR] [--force STAGE ...]``."""
    parser = argparse.ArgumentParser(description="Run the gender-pipeline flow.")
    parser.add_argument("--root", default=".", help="the repository (default: current folder)")
    parser.add_argument("--force", nargs="*", default=[], choices=STAGES, help="stages to rerun anyway")
    add_verbose_flag(parser)
    args = parser.parse_args(argv)
    gender_pipeline(root=args.root, force=args.force)


if __name__ == "__main__":
    from tasks.cli import run_cli

    run_cli(main)
