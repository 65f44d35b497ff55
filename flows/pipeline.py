"""The Prefect 3 flow ``gender-pipeline``: download -> validate -> preprocess -> train -> evaluate -> promote.

Each stage is the same function that ``dvc repro`` runs, called through its contract
(``tasks.stages.STAGES``, the same declarations ``dvc.yaml`` is generated from), wrapped as a task.
Before a stage runs, the flow asks DVC whether it is up to date; if so, its task run ends in a
``Skipped`` state that says why. A stale stage runs in-process and is then recorded in dvc.lock
(``dvc commit``), exactly as ``dvc repro`` would record it, unless its params changed while it ran
or its code changed since the flow started (``tasks.snapshot``): then the run stops with nothing
recorded. Retries are the download stage's own
(network errors only), so the tasks themselves do not retry. Task runs carry the git commit as
their version and the stage's DVC input hash as a tag. A failed quality gate ends the ``promote``
task in a ``Not promoted`` state with the reasons (the stage result's ``outcome``).
The run publishes artifacts with stable keys (flows/artifacts.py): validation summary, metrics, the quality gate and
promotion, slices, the comparison with the previous metrics, the plots embedded as images and where the outputs are.

``python -m flows.pipeline`` runs it with no server started: a temporary local server on SQLite that
ends with the run, however it ends (``flows.server``); set PREFECT_API_URL to record runs in a
running server instead (``make ui``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.states import Completed

from flows.artifacts import publish_artifacts, read_if_present
from flows.dvc_state import DvcState, git_version
from flows.events import emit_for
from flows.server import prefect_api
from tasks import paths, quiet
from tasks.cli import run_cli, setup
from tasks.doctor import HELP as DOCTOR_HELP
from tasks.doctor import keep_last_good, problems
from tasks.errors import StageError
from tasks.params.config import load, parse
from tasks.quiet import add_verbose_flag
from tasks.reports import Evaluation
from tasks.snapshot import Snapshot, code_hashes
from tasks.stages import BY_NAME

STAGE_NAMES = tuple(BY_NAME)  # DAG order, as in dvc.yaml


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


def run_stage(stage: str, root: str, reasons: list[str], snapshot: Snapshot) -> Any:
    """Run one stage with the params ``snapshot`` read, or end ``Skipped`` with no reason to (DVC: up to date)."""
    logger = get_run_logger()
    if not reasons:
        message = f"{stage}: skipped, up to date in dvc.lock (same code, params and inputs)"
        logger.info(message)
        return Completed(name="Skipped", message=message)
    logger.info("%s: running because %s", stage, "; ".join(reasons))
    with stage_logs_to_prefect():
        result = BY_NAME[stage].run(Path(root), parse(snapshot.raw, str(snapshot.params_file)))
    emit_for(stage, Path(root), result)  # promote: model promoted, or promotion blocked (flows/events.py)
    outcome = result.outcome()
    if outcome is not None:  # the stage held back (promote: the gate failed); its outputs are whole
        logger.warning("%s: %s", stage, outcome.message)
        return Completed(name=outcome.state, message=outcome.message)
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


def start_fresh(root: Path, stage: str) -> None:
    """A forced stage resumes nothing: its checkpoints (train's, after an interrupted run) are removed."""
    if paths.CHECKPOINTS_DIR in BY_NAME[stage].work.values() and (root / paths.CHECKPOINTS_DIR).exists():
        shutil.rmtree(root / paths.CHECKPOINTS_DIR)
        print(f"{stage}: forced, so it starts fresh: removed {paths.CHECKPOINTS_DIR}")


@flow(name="gender-pipeline", log_prints=True)
def gender_pipeline(root: str = ".", force: list[str] | None = None) -> dict[str, Any]:
    """Run the stages in order, skipping those DVC reports up to date.

    Args:
        root: the repository (holding dvc.yaml and params.yaml).
        force: stages to rerun even when up to date (e.g. ``["download"]`` for a new Kaggle version).
    """
    quiet.install()  # before any stage imports TensorFlow (a worker imports this flow without main())
    load(Path(root) / paths.PARAMS_FILE)  # bad params stop the run before any stage
    broken = problems(Path(root))
    if broken:
        raise StageError(f"{Path(root).resolve()}: {'; '.join(broken)}; {DOCTOR_HELP}")
    state = DvcState(Path(root))
    unknown = sorted(set(force or ()) - set(STAGE_NAMES))
    if unknown:
        raise ValueError(f"force: unknown stage(s) {unknown}; use some of {list(STAGE_NAMES)}")
    previous_metrics = read_if_present(state.root / paths.EVALUATION, Evaluation, "evaluate")
    version, results, previous = git_version(state.root), {}, None
    imported = code_hashes(state.root)  # the code this run imported: it runs that, whatever the files say later
    with state.locked():
        for stage in STAGE_NAMES:
            reasons = [json.dumps(c, default=str) for c in state.changes(stage)]
            if stage in (force or ()):
                reasons.append("forced by the force parameter")
                start_fresh(state.root, stage)
            run = stage_task(stage, version, state.inputs_hash(stage))
            snapshot = Snapshot.take(stage, state.root, code=imported)
            # wait_for records the DAG's edge, so the UI's flow-run graph draws the stages as a chain
            previous = run(
                stage, str(state.root), reasons, snapshot, wait_for=[previous] if previous else None, return_state=True
            )
            results[stage] = previous.result()
            if reasons:
                snapshot.check("run the flow again")  # dvc.lock must describe what made the outputs
                state.record(stage)  # dvc.lock now says what dvc repro would have written
                keep_last_good(state.root)  # for `make doctor`
                print(f"{stage}: recorded in dvc.lock")
    publish_artifacts(state.root, previous_metrics)
    print(
        f"Results: {paths.METRICS}, {paths.EVALUATION}, {paths.FIGURES_DIR}, model {paths.MODEL_DIR} (in {state.root})"
    )
    return results


def main(argv: list[str] | None = None) -> None:
    """``python -m flows.pipeline [--root DIR] [--force STAGE ...]``."""
    parser = argparse.ArgumentParser(description="Run the gender-pipeline flow.")
    parser.add_argument("--root", default=".", help="the repository (default: current folder)")
    parser.add_argument("--force", nargs="*", default=[], choices=STAGE_NAMES, help="stages to rerun anyway")
    add_verbose_flag(parser)
    args = parser.parse_args(argv)
    setup()
    with prefect_api():  # PREFECT_API_URL, or a temporary server that ends with this process
        gender_pipeline(root=args.root, force=args.force)


if __name__ == "__main__":
    run_cli(main)
