"""The gender-pipeline flow against a real Prefect server, sharing one dvc.lock with `dvc repro`.

The tests in this module build on each other, in order, on one temporary repository copy.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from flows.deployments import BY_NAME as DEPLOYMENTS
from flows.pipeline import STAGE_NAMES
from tasks import paths
from tests.helpers.prefect_server import run
from tests.helpers.repo import dvc, ran, set_params

pytestmark = pytest.mark.slow
ARTIFACT_KEYS = ["validation-summary", "metrics", "quality-gate", "slices", "metrics-comparison", "pipeline-outputs"]


def flow(repo, server, *args, check=True):
    return run([sys.executable, "-m", "flows.pipeline", "--root", str(repo), *args], repo, server.env, check=check)


def stage_states(server, flow_run) -> list[tuple[str, str]]:
    return [(t["name"], t["state"]["name"]) for t in server.task_runs(flow_run["id"])]


CHAIN = set(zip(STAGE_NAMES, STAGE_NAMES[1:]))  # the DAG's edges, as the UI's run graph should draw them


def test_first_run_runs_every_stage_in_order_records_dvc_lock_and_promotes_when_asked(flow_repo, prefect_server):
    out = flow(flow_repo, prefect_server, "--promote").stdout + ""
    latest = prefect_server.flow_runs()[0]
    assert latest["state"]["type"] == "COMPLETED"
    assert stage_states(prefect_server, latest) == [(s, "Completed") for s in [*STAGE_NAMES, "promote"]]
    # each stage waits for the one before it, and promote for the gate
    assert prefect_server.graph_edges(latest["id"]) == CHAIN | {("gate", "promote")}
    download = prefect_server.task_runs(latest["id"])[0]
    assert download["task_version"]
    assert {t.split(":")[0] for t in download["tags"]} >= {"stage", "git", "dvc"}
    logs = prefect_server.logs(latest["id"])
    assert "wrote " in logs
    assert "Dataset.zip" in logs  # the stage's own log lines reach the run logs
    assert "Test accuracy:" in logs
    artifacts = prefect_server.post("/artifacts/filter", {"artifacts": {"key": {"any_": ARTIFACT_KEYS}}})
    assert {a["key"] for a in artifacts} == set(ARTIFACT_KEYS)
    assert "Results:" in out or "Results:" in logs
    gate = prefect_server.post("/artifacts/filter", {"artifacts": {"key": {"any_": ["quality-gate"]}}})[0]["data"]
    assert "this model is the production model (model@v0.0.1)" in gate
    assert json.loads((flow_repo / paths.PRODUCTION_POINTER).read_text())["model_version"] == "v0.0.1"
    summary = prefect_server.post("/artifacts/filter", {"artifacts": {"key": {"any_": ["validation-summary"]}}})
    assert "## Drift no reference: " in summary[0]["data"]
    assert "no model in production yet" in summary[0]["data"]
    # the invariant: after a flow run, DVC has nothing to do
    assert "up to date" in dvc(flow_repo, "status")
    assert ran(dvc(flow_repo, "repro")) == []


def test_second_run_skips_every_stage_and_says_why(flow_repo, prefect_server):
    flow(flow_repo, prefect_server)
    latest = prefect_server.flow_runs()[0]
    assert latest["state"]["type"] == "COMPLETED"
    runs = prefect_server.task_runs(latest["id"])
    assert [(t["name"], t["state"]["name"]) for t in runs] == [(s, "Skipped") for s in STAGE_NAMES]
    assert all("up to date in dvc.lock" in t["state"]["message"] for t in runs)
    assert prefect_server.graph_edges(latest["id"]) == CHAIN
    # no artifact of this run repeats an earlier run's text as new: only where the outputs are
    made = prefect_server.post("/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [latest["id"]]}}})
    assert [a["key"] for a in made] == ["pipeline-outputs"]
    assert "Under `" in made[0]["data"] and "promoted" not in made[0]["data"]


FLOW_IN_THIS_PROCESS = """
import json, sys
from flows.pipeline import gender_pipeline
states = gender_pipeline(root=sys.argv[1], force=["evaluate"])
print(json.dumps({"states": states, "modules": sorted(sys.modules)}))
"""


def test_the_flow_runs_stages_through_dvc_and_its_process_imports_neither_tensorflow_nor_a_stage(
    flow_repo, prefect_server
):
    done = run([sys.executable, "-c", FLOW_IN_THIS_PROCESS, str(flow_repo)], flow_repo, prefect_server.env)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["states"]["evaluate"] == "Completed"  # forced: evaluate ran, TensorFlow and all, elsewhere
    assert report["states"]["gate"] == "Skipped"  # evaluate wrote the same bytes
    assert "promote" not in report["states"]  # not asked: a flow run changes nothing in production
    stages = {f"tasks.{s}" for s in STAGE_NAMES} | {"tasks.stages", "tasks.run"}
    assert not [m for m in report["modules"] if m.split(".")[0] in ("tensorflow", "tf_keras") or m in stages]
    assert "prefect" in report["modules"] and "dvc.repo" in report["modules"]  # the check sees what was imported
    logs = prefect_server.logs(prefect_server.flow_runs()[0]["id"])
    assert "Running stage 'evaluate'" in logs  # dvc repro's own line, streamed into the task's logs


def test_dvc_repro_and_the_flow_agree_after_params_changes(flow_repo, prefect_server):
    set_params(flow_repo, {"train": {"epochs": 2}})
    assert ran(dvc(flow_repo, "repro")) == ["train", "evaluate", "gate"]
    flow(flow_repo, prefect_server)
    assert stage_states(prefect_server, prefect_server.flow_runs()[0]) == [(s, "Skipped") for s in STAGE_NAMES]

    set_params(flow_repo, {"train": {"epochs": 3}})
    flow(flow_repo, prefect_server)
    states = dict(stage_states(prefect_server, prefect_server.flow_runs()[0]))
    assert states == {
        "download": "Skipped",
        "validate": "Skipped",
        "preprocess": "Skipped",
        "features": "Skipped",
        "audit": "Skipped",
        "train": "Completed",
        "evaluate": "Completed",
        "gate": "Completed",
    }
    assert "up to date" in dvc(flow_repo, "status")
    assert ran(dvc(flow_repo, "repro")) == []
    comparison = prefect_server.post(
        "/artifacts/filter", {"artifacts": {"key": {"any_": ["metrics-comparison"]}}, "sort": "CREATED_DESC"}
    )
    assert "| accuracy |" in comparison[0]["data"]
    assert len(comparison) >= 2  # the history of the key is kept (one version per run that evaluated)


def _files(folder) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_a_failing_gate_leaves_the_production_model_and_the_run_says_why(flow_repo, prefect_server):
    production = flow_repo / paths.PRODUCTION_DIR
    before = _files(production)
    set_params(flow_repo, {"gate": {"min_accuracy": 1.0}})
    flow(flow_repo, prefect_server, "--promote")
    latest = prefect_server.flow_runs()[0]
    assert latest["state"]["type"] == "COMPLETED"
    metrics = json.loads((flow_repo / paths.EVALUATION).read_text())
    assert metrics["accuracy"] < 1.0
    assert not json.loads((flow_repo / paths.GATE).read_text())["passed"]
    runs = {t["name"]: t["state"] for t in prefect_server.task_runs(latest["id"])}
    # only the gate's params changed: evaluate is up to date, the gate reruns and fails, promote refuses
    assert runs["evaluate"]["name"] == "Skipped"
    assert runs["gate"]["name"] == "Gate failed"
    assert runs["gate"]["message"] == f"cannot be promoted: accuracy {metrics['accuracy']:.4f} < 1.0000"
    assert runs["promote"]["name"] == "Not promoted"
    assert runs["promote"]["message"] == (
        f"not promoted: the quality gate failed (accuracy {metrics['accuracy']:.4f} < 1.0000)"
    )
    assert _files(production) == before
    gate = prefect_server.post(
        "/artifacts/filter", {"artifacts": {"key": {"any_": ["quality-gate"]}}, "sort": "CREATED_DESC"}
    )[0]["data"]
    assert "# Quality gate: FAILED" in gate
    assert "cannot be promoted: accuracy" in gate
    assert "up to date" in dvc(flow_repo, "status")
    assert ran(dvc(flow_repo, "repro")) == []


def test_a_failing_stage_fails_the_run_and_the_next_run_starts_there(flow_repo, prefect_server):
    set_params(flow_repo, {"validate": {"min_per_class": 100000}})
    done = flow(flow_repo, prefect_server, check=False)
    assert done.returncode != 0
    latest = prefect_server.flow_runs()[0]
    assert latest["state"]["type"] == "FAILED"
    assert stage_states(prefect_server, latest) == [("download", "Skipped"), ("validate", "Failed")]
    assert "data validation failed" in prefect_server.logs(latest["id"])

    set_params(flow_repo, {"validate": {"min_per_class": 1}})
    flow(flow_repo, prefect_server)
    states = stage_states(prefect_server, prefect_server.flow_runs()[0])
    assert states[:2] == [("download", "Skipped"), ("validate", "Completed")]
    assert "up to date" in dvc(flow_repo, "status")


def test_a_second_run_while_one_holds_the_pipeline_is_refused(flow_repo, prefect_server):
    from dvc.repo import Repo, lock_repo

    with Repo(str(flow_repo)) as repo, lock_repo(repo):  # what a running dvc repro (or a flow's stage) holds
        done = flow(flow_repo, prefect_server, check=False)
    assert done.returncode != 0
    assert "pipeline already running" in done.stdout + done.stderr
    assert "up to date" in dvc(flow_repo, "status")


def _wait_for(server, flow_run_id: str, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fr = server.get(f"/flow_runs/{flow_run_id}")
        if fr["state"]["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            return fr
        time.sleep(2)
    raise TimeoutError(f"flow run {flow_run_id} did not finish")


def _deployment(server, name: str, timeout: float = 120) -> dict:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = httpx.get(f"{server.api}/deployments/name/{name}", timeout=10)
        if r.status_code == 200:
            return r.json()
        time.sleep(1)
    raise TimeoutError(f"deployment {name} never appeared")


def _crons(deployment: dict) -> list[str]:
    return [s["schedule"]["cron"] for s in deployment["schedules"]]


def _state_names(server, flow_run_id: str) -> list[str]:
    """Every state the flow run has been in, oldest first."""
    states = server.get(f"/flow_run_states/?flow_run_id={flow_run_id}")
    return [s["name"] for s in sorted(states, key=lambda s: s["timestamp"])]


def _serve(flow_repo, prefect_server) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "flows.serve", "--root", str(flow_repo)],
        cwd=flow_repo,
        env=prefect_server.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _stop(serving: subprocess.Popen) -> None:
    serving.terminate()
    serving.wait(30)


def test_served_deployments_have_their_crons_and_a_second_retrain_waits_for_the_first(flow_repo, prefect_server):
    serving = _serve(flow_repo, prefect_server)
    try:
        deployment = _deployment(prefect_server, "gender-pipeline/weekly-retrain")
        assert _crons(deployment) == [DEPLOYMENTS["weekly-retrain"].cron]
        predict = _deployment(prefect_server, "batch-predict/batch-predict")
        assert _crons(predict) == [DEPLOYMENTS["batch-predict"].cron]
    finally:
        _stop(serving)
    # triggered twice while nothing serves, then served: the runner's first poll sees both runs at once
    # (triggered while serving, a poll between the two triggers can let the first finish before the
    # second is seen, and then nothing waits), and the deployment's limit of one run lets the second
    # wait, then run
    first, second = (prefect_server.post(f"/deployments/{deployment['id']}/create_flow_run", {}) for _ in "12")
    serving = _serve(flow_repo, prefect_server)
    try:
        finished = [_wait_for(prefect_server, r["id"]) for r in (first, second)]
        for run_ in finished:
            assert run_["state"]["type"] == "COMPLETED", prefect_server.logs(run_["id"])
            states = stage_states(prefect_server, run_)
            assert states[:-1] == [(s, "Skipped") for s in STAGE_NAMES]
            # the scheduled retrain promotes: nothing new here, so "already the production model", or refused where
            # an earlier test left a failing gate (min_accuracy 1.0)
            passed = json.loads((flow_repo / paths.GATE).read_text())["passed"]
            assert states[-1] == ("promote", "Completed" if passed else "Not promoted")
            assert "Traceback" not in prefect_server.logs(run_["id"])
        waited = [
            n for n in (_state_names(prefect_server, r["id"]) for r in finished) if "AwaitingConcurrencySlot" in n
        ]
        assert len(waited) == 1, [_state_names(prefect_server, r["id"]) for r in finished]
        (a, b) = sorted(finished, key=lambda r: r["start_time"])
        assert a["end_time"] <= b["start_time"], "the two retrain runs overlapped"
    finally:
        _stop(serving)


def test_prefect_yaml_deploys_to_a_work_pool_and_a_worker_runs_it(flow_repo, prefect_server):
    env = {**prefect_server.env, "PIPELINE_ROOT": str(flow_repo)}
    run(
        [sys.executable, "-m", "prefect", "work-pool", "create", "local-process", "--type", "process", "--overwrite"],
        flow_repo,
        env,
    )
    run([sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all"], flow_repo, env)
    deployment = _deployment(prefect_server, "gender-pipeline/weekly-retrain")
    assert deployment["work_pool_name"] == "local-process"
    assert _crons(deployment) == [DEPLOYMENTS["weekly-retrain"].cron]
    flow_run = prefect_server.post(f"/deployments/{deployment['id']}/create_flow_run", {})
    run([sys.executable, "-m", "prefect", "worker", "start", "--pool", "local-process", "--run-once"], flow_repo, env)
    finished = _wait_for(prefect_server, flow_run["id"])
    assert finished["state"]["type"] == "COMPLETED", prefect_server.logs(flow_run["id"])
