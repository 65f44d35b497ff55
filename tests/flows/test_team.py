"""A retrain that starts from nothing: a process worker in an empty folder clones a bare repository (Prefect's
``git_clone`` pull step), pulls what the S3 team remote (moto's server) holds, sends train to a second worker of
the ``gpu`` pool in another empty folder, records it from DVC's run-cache, promotes and publishes a branch; a
teammate's clone elsewhere fetches the branch and gets the run's outputs byte for byte."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from ops.s3_local import CREDENTIALS, s3_server
from tasks import paths
from tests.flows.test_flow import _deployment, _wait_for
from tests.helpers.prefect_server import Server, prefect_home, run
from tests.helpers.repo import TINY_PARAMS, copy_repo, dvc, set_params

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def team_server(tmp_path_factory):
    """A server of its own: the session's serves other modules whose checks read "the newest gender-pipeline run"."""
    with Server(prefect_home(tmp_path_factory, "team-prefect-home")) as server:
        yield server


def git(cwd, *args) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_a_worker_in_an_empty_folder_retrains_promotes_and_publishes_what_a_teammate_pulls(
    team_server, tmp_path, monkeypatch
):
    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    with s3_server() as endpoint:
        # the team's repository: a tiny run pushed to the S3 remote, then a commit that makes the gate stale
        work = copy_repo(tmp_path / "work")
        set_params(work, TINY_PARAMS)
        dvc(work, "remote", "add", "-d", "team", "s3://dvc-team/dvc")
        dvc(work, "remote", "modify", "team", "endpointurl", endpoint)
        dvc(work, "repro")
        dvc(work, "push")
        git(work, "add", "-A")
        git(work, "commit", "-qm", "a tiny run, pushed to the team remote")
        set_params(work, {"train": {"epochs": 2}, "gate": {"min_accuracy": 0.1}})
        git(work, "commit", "-qam", "two head epochs and a floor: train, evaluate and the gate are stale")
        branch = git(work, "rev-parse", "--abbrev-ref", "HEAD")
        origin = tmp_path / "origin.git"
        git(tmp_path, "clone", "-q", "--bare", str(work), str(origin))

        env = {**team_server.env, **CREDENTIALS, "PIPELINE_PYTHON": sys.executable}
        for pool in ("team", "gpu"):
            run([sys.executable, "-m", "prefect", "work-pool", "create", pool, "--type", "process"], tmp_path, env)
        run([sys.executable, "-m", "flows.team", str(origin), "--branch", branch], work, env)
        deployment = _deployment(team_server, "gender-pipeline/team-retrain")
        assert deployment["pull_steps"][0]["prefect.deployments.steps.git_clone"]["repository"] == str(origin)
        created = team_server.post(f"/deployments/{deployment['id']}/create_flow_run", {})
        worker_a, worker_b = tmp_path / "worker-a", tmp_path / "worker-b"  # empty: no checkout, no data, no .venv
        for folder in (worker_a, worker_b):
            folder.mkdir()
        gpu = subprocess.Popen(
            [sys.executable, "-m", "prefect", "worker", "start", "--pool", "gpu"],
            cwd=worker_b,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            run([sys.executable, "-m", "prefect", "worker", "start", "--pool", "team", "--run-once"], worker_a, env)
            finished = _wait_for(team_server, created["id"], timeout=600)
        finally:
            os.killpg(gpu.pid, signal.SIGTERM)
            gpu.wait(60)
        logs = team_server.logs(created["id"])
        assert finished["state"]["type"] == "COMPLETED", logs
        tasks = {t["name"]: t for t in team_server.task_runs(created["id"])}
        states = {name: t["state"]["name"] for name, t in tasks.items()}
        assert states["pull"] == "Completed"
        # pulled, not recomputed: every stage before train; train on the gpu pool; evaluate and the gate here
        skipped = [s for s, state in states.items() if state == "Skipped"]
        assert skipped == ["download", "validate", "preprocess", "features", "audit"], states
        assert (states["train"], states["evaluate"], states["gate"]) == ("Completed",) * 3, states
        (child,) = team_server.flow_runs("pipeline-stage")
        assert child["state"]["type"] == "COMPLETED", team_server.logs(child["id"])
        # linked to the parent run in the UI: its parent task run is the one run_deployment made in the parent flow
        assert team_server.get(f"/task_runs/{child['parent_task_run_id']}")["flow_run_id"] == created["id"]
        assert "Running stage 'train'" in team_server.logs(child["id"])  # trained there ...
        assert "Stage 'train' is cached - skipping run" in logs, logs  # ... and recorded here from the run-cache
        assert (states["promote"], states["publish"]) == ("Completed", "Completed"), logs
        published = f"runs/{finished['name']}"
        assert git(origin, "branch", "--list", published).strip().endswith(published)
        assert {"model@v0.0.1", "model#prod#1"} <= set(git(origin, "tag").split())
        assert git(origin, "rev-parse", "model@v0.0.1^{commit}") == git(origin, "rev-parse", published)

        # a teammate, elsewhere: the published branch and its outputs from the bucket
        mate = tmp_path / "teammate"
        git(tmp_path, "clone", "-q", str(origin), str(mate))
        (mate / ".venv").symlink_to(work / ".venv")
        git(mate, "fetch", "-q", "origin", published)
        git(mate, "checkout", "-q", "FETCH_HEAD")
        dvc(mate, "pull")
        assert "up to date" in dvc(mate, "status")  # every output is the bytes the worker's dvc.lock names
        gate = json.loads((mate / paths.GATE).read_text())
        assert gate["passed"] and next(c for c in gate["checks"] if c["name"] == "accuracy")["threshold"] == 0.1
        assert "min_accuracy: 0.1" in (mate / paths.PARAMS_FILE).read_text()
