"""The Prefect 3 flow ``gender-pipeline``: each task runs its stage with ``dvc repro``, in dvc.yaml's order.

A task asks DVC whether its stage is stale; if not, it ends ``Skipped`` with the reason and starts
nothing. Otherwise it runs ``dvc repro --single-item STAGE`` in a subprocess and streams the output
into the task's logs, line by line with its level. DVC alone writes dvc.lock, and the stage's command
(``python -m tasks.run``) refuses to end well when its params or code changed while it ran, so both
routes record only what ran. gate ends ``Gate failed`` when reports/gate.json says so. With
``promote=True`` (the scheduled retrain) a last task runs ``make promote``'s step (``ops.promote``);
otherwise the flow changes nothing in production. Events and artifacts are built from the stages'
report files, so this process imports neither TensorFlow nor any stage module: a worker that
orchestrates stays small.

``python -m flows.pipeline`` runs it with no server started (a temporary local one, ``flows.server``);
set PREFECT_API_URL to record runs in a running server instead (``make ui``).
"""

from __future__ import annotations

import argparse
import logging
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import yaml
from prefect import flow, get_run_logger, task
from prefect.runtime import flow_run
from prefect.states import Completed

from flows.artifacts import publish_artifacts, read_if_present
from flows.dvc_state import busy, dvc_status, git_version, inputs_hash
from flows.events import emit_promotion_event
from flows.server import prefect_api
from tasks import paths
from tasks.cli import run_cli, setup
from tasks.doctor import HELP as DOCTOR_HELP
from tasks.doctor import problems
from tasks.errors import StageError
from tasks.params.config import load
from tasks.quiet import add_verbose_flag
from tasks.reports import read
from tasks.reports.evaluation import Evaluation
from tasks.reports.verdict import Verdict
from tasks.verdict import failed_checks

REPO = Path(__file__).resolve().parents[1]
# a stage's log line (tasks.cli.setup's format), DVC's own "ERROR: ...", a command's "error: ..."
_STAGE_LINE = re.compile(r"^\S+ \S+ \S+ (DEBUG|INFO|WARNING|ERROR|CRITICAL) ")
_TOOL_LINE = re.compile(r"^(ERROR|WARNING|error|warning): ")
_UP_TO_DATE = "didn't change, skipping"  # dvc repro's line for a stage another run has just brought up to date
_LOCKED = "Unable to acquire lock"
STAGE_FLOW = "pipeline-stage"  # the flow that runs one stage on another pool (flows/team.py); a deployment per pool


def stage_names(root: Path) -> tuple[str, ...]:
    """The stages of ``root``'s dvc.yaml, in its (DAG) order."""
    return tuple(yaml.safe_load((root / "dvc.yaml").read_text(encoding="utf-8"))["stages"])


STAGE_NAMES = stage_names(REPO)


def level_of(line: str) -> int:
    """The logging level a line of ``dvc repro``'s output carries (INFO when it names none)."""
    found = _STAGE_LINE.match(line) or _TOOL_LINE.match(line)
    return logging.getLevelName(found.group(1).upper()) if found else logging.INFO


def dvc_streamed(root: Path, what: str, *args: str) -> list[str]:
    """``dvc ARGS`` in ``root`` for ``what`` (a stage, "pull"), each output line logged as it comes with its level.

    Raises:
        PipelineBusy: when another process holds the repository's DVC lock.
        StageError: with DVC's first error line when it fails.
    """
    logger = get_run_logger()
    lines = []
    with subprocess.Popen(
        [sys.executable, "-m", "dvc", *args],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    ) as proc:
        for line in proc.stdout:
            line = line.rstrip()
            if line:
                lines.append(line)
                logger.log(level_of(line), "%s", line)
    if proc.returncode != 0:
        if any(_LOCKED in line for line in lines):
            raise busy(root)
        errors = [line for line in lines if level_of(line) >= logging.ERROR] or lines[-1:]
        raise StageError(f"{what} failed (dvc {args[0]} exit {proc.returncode}): {errors[0] if errors else ''}")
    return lines


def repro(stage: str, root: Path, force: bool) -> list[str]:
    """``dvc repro --single-item stage`` in ``root``, streamed (:func:`dvc_streamed`); its lines."""
    return dvc_streamed(root, stage, "repro", "--single-item", *(["--force"] if force else []), stage)


def gate_state(root: Path) -> Completed | None:
    """``Gate failed`` with the failed checks when reports/gate.json says so (and the blocked event), else None."""
    verdict = read(root / paths.GATE, Verdict, "gate")
    if verdict.passed:
        return None
    emit_promotion_event(root)
    message = "cannot be promoted: " + "; ".join(failed_checks(verdict))
    get_run_logger().warning("gate: %s", message)
    return Completed(name="Gate failed", message=message)


def on_pool(stage: str, root: Path, pool: str) -> list[str]:
    """Run ``stage`` on a worker of ``pool`` in its own clone (``flows.team.pipeline_stage``), then record it here.

    The inputs go to the DVC remote first; the other worker pulls them, runs the stage at this commit and pushes
    its outputs with DVC's run-cache; here ``dvc repro --pull`` then finds the run in the run-cache and checks
    out those outputs instead of running it: the same bytes, recorded by DVC in this dvc.lock.

    Raises:
        StageError: when code here differs from the commit (the other worker would run other code), or the run
            on the pool fails.
    """
    from prefect.deployments import run_deployment

    from ops.record import git

    # what the other worker's clone would not have (dvc.lock and the metrics are this run's to write)
    differ = sorted(set(git(root, "diff", "--name-only", "HEAD").splitlines()) - {"dvc.lock", paths.METRICS})
    if differ:
        raise StageError(
            f"{stage}: {', '.join(differ)} differ from the commit that pool {pool}'s worker runs; commit them first"
        )
    commit = git(root, "rev-parse", "HEAD")
    dvc_streamed(root, "push", "push")  # this stage's inputs, where the other worker pulls them
    child = run_deployment(f"{STAGE_FLOW}/{pool}", parameters={"stage": stage, "commit": commit}, timeout=None)
    if not child.state or not child.state.is_completed():
        message = child.state.message if child.state else "no state"
        raise StageError(f"{stage} on pool {pool} (flow run {child.name}) did not complete: {message}")
    lines = dvc_streamed(root, stage, "repro", "--pull", "--single-item", stage)
    if not any("is cached" in line for line in lines):
        get_run_logger().warning("%s: not found in DVC's run-cache; it ran here instead of on pool %s", stage, pool)
    return lines


def run_stage(stage: str, root: str, reasons: list[str], force: bool, pool: str | None = None) -> Completed | None:
    """Run one stage through DVC (on a worker of ``pool`` when given), or end ``Skipped`` with no reason to."""
    logger, where = get_run_logger(), Path(root)
    skipped = Completed(
        name="Skipped", message=f"{stage}: skipped, up to date in dvc.lock (same code, params and inputs)"
    )
    if not reasons:
        logger.info(skipped.message)
        return skipped
    logger.info("%s: running because %s%s", stage, "; ".join(reasons), f", on pool {pool}" * bool(pool))
    lines = on_pool(stage, where, pool) if pool else repro(stage, where, force)
    if any(_UP_TO_DATE in line for line in lines):  # another run brought it up to date meanwhile
        return skipped
    print(f"{stage}: recorded in dvc.lock")
    return gate_state(where) if stage == "gate" else None


def _team_step(root: str, step: Callable[[Path], str], refused: str) -> Completed:
    """Run ``step`` (an ``ops`` function that returns its line or refuses with one); ``refused`` names its state."""
    try:
        line = step(Path(root))
    except StageError as exc:
        get_run_logger().warning("%s", exc)
        return Completed(name=refused, message=str(exc))
    print(line)
    return Completed(message=line)


@task(name="pull", task_run_name="pull", log_prints=True)
def pull_task(root: str) -> None:
    """The registry's tags from origin, and what the DVC remote holds of the outputs dvc.lock names, so that
    the gate compares with the production model and up-to-date stages are not recomputed."""
    fetched = subprocess.run(["git", "fetch", "--tags", "--force", "origin"], cwd=root, capture_output=True, text=True)
    if fetched.returncode != 0:
        raise StageError(f"git fetch --tags origin failed: {fetched.stderr.strip()}")
    dvc_streamed(Path(root), "pull", "pull", "--allow-missing")


@task(name="promote", task_run_name="promote", log_prints=True)
def promote_task(root: str) -> Completed:
    """``make promote``'s step: the gated model becomes the production model (or ``Not promoted``, and why)."""
    from ops.promote import promote

    state = _team_step(root, promote, "Not promoted")
    if state.message.startswith("promoted"):
        emit_promotion_event(Path(root))
    return state


@task(name="publish", task_run_name="publish", log_prints=True)
def publish_task(root: str, branch: str) -> Completed:
    """The outputs into the DVC remote, then the run's record to origin as ``branch`` (``ops.publish``)."""
    from ops.publish import publish

    return _team_step(root, lambda where: publish(where, branch), "Not published")


def stage_task(stage: str, version: str, inputs: str):
    """The Prefect task for one stage, versioned by git commit and tagged with its DVC input hash."""
    return task(
        run_stage,
        name=stage,
        task_run_name=stage,
        log_prints=True,
        version=version,
        tags=[f"stage:{stage}", f"git:{version}", f"dvc:{inputs}"],
    )


@flow(name="gender-pipeline", log_prints=True)
def gender_pipeline(
    root: str = ".",
    force: list[str] | None = None,
    promote: bool = False,
    pull: bool = False,
    publish: bool = False,
    pools: dict[str, str] | None = None,
) -> dict[str, str]:
    """Run the stages in order through DVC, skipping those it reports up to date; then promote and publish when asked.

    Args:
        root: the repository (holding dvc.yaml and params.yaml).
        force: stages to rerun even when up to date (e.g. ``["download"]`` for a new Kaggle version).
        promote: make the model the production one when the gate passed (``make promote``'s step).
        pull: first fetch what the DVC remote holds (a worker's fresh clone), so up-to-date stages only check out.
        publish: last, push the outputs and the run's record to origin as the branch ``runs/<flow run name>``.
        pools: stages to run on a worker of another work pool, e.g. ``{"train": "gpu"}`` (:func:`on_pool`).

    Returns:
        Each stage's final state name (``Completed``, ``Skipped``, ``Gate failed``), and promote's and publish's
        (``Completed``, ``Not promoted``, ``Not published``) when asked.
    """
    where = Path(root).resolve()
    load(where / paths.PARAMS_FILE)  # bad params stop the run before any stage
    broken = problems(where)
    if broken:
        raise StageError(f"{where}: {'; '.join(broken)}; {DOCTOR_HELP}")
    names = stage_names(where)
    for given, what in ((force or (), "force"), (pools or {}, "pools")):
        unknown = sorted(set(given) - set(names))
        if unknown:
            raise ValueError(f"{what}: unknown stage(s) {unknown}; use some of {list(names)}")
    previous_metrics = read_if_present(where / paths.EVALUATION, Evaluation, "evaluate")
    version, states, previous = git_version(where), {}, None
    if pull:
        previous = pull_task(str(where), return_state=True)
        previous.result()
    for stage in names:
        reasons = dvc_status(where, stage)
        forced = stage in (force or ())
        if forced:
            reasons.append("forced by the force parameter")
        run = stage_task(stage, version, inputs_hash(where, stage))
        # wait_for records the DAG's edge, so the UI's flow-run graph draws the stages as a chain
        previous = run(
            stage,
            str(where),
            reasons,
            forced,
            (pools or {}).get(stage),
            wait_for=[previous] if previous else None,
            return_state=True,
        )
        states[stage] = previous.name
        previous.result()  # a failed stage fails the flow here
    if promote:
        previous = promote_task(str(where), wait_for=[previous], return_state=True)
        states["promote"] = previous.name
    if publish:
        branch = f"runs/{flow_run.get_name() or 'local'}"
        states["publish"] = publish_task(str(where), branch, wait_for=[previous], return_state=True).name
    publish_artifacts(where, previous_metrics, ran={stage for stage, state in states.items() if state != "Skipped"})
    print(f"Results: {paths.METRICS}, {paths.EVALUATION}, {paths.FIGURES_DIR}, model {paths.MODEL_DIR} (in {where})")
    return states


def main(argv: list[str] | None = None) -> None:
    """``python -m flows.pipeline [--root DIR] [--force STAGE ...]``."""
    parser = argparse.ArgumentParser(description="Run the gender-pipeline flow.")
    parser.add_argument("--root", default=".", help="the repository (default: current folder)")
    parser.add_argument("--force", nargs="*", default=[], choices=STAGE_NAMES, help="stages to rerun anyway")
    parser.add_argument("--promote", action="store_true", help="then promote the model when the gate passed")
    add_verbose_flag(parser)
    args = parser.parse_args(argv)
    setup()
    with prefect_api():  # PREFECT_API_URL, or a temporary server that ends with this process
        gender_pipeline(root=args.root, force=args.force, promote=args.promote)


if __name__ == "__main__":
    run_cli(main)
