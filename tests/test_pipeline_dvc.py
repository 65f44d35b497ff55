"""End to end: real `dvc repro` in a temporary git copy of the repository, on tiny synthetic data."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tasks import paths
from tasks.stages import BY_NAME
from tests.helpers.data import contents, digest
from tests.helpers.repo import TINY_PARAMS, copy_repo, dvc, ran, set_params

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def first_run(tmp_path_factory) -> tuple[Path, str]:
    """A repository copy with tiny params after its first ``dvc repro``, and that command's output."""
    repo = copy_repo(tmp_path_factory.mktemp("first-run") / "repo")
    set_params(repo, TINY_PARAMS)
    return repo, dvc(repo, "repro")


@pytest.fixture
def repo_after_first_run(first_run, tmp_path) -> Path:
    """A test's own copy of :func:`first_run`'s repository (git, DVC cache and outputs; links kept as links)."""
    return shutil.copytree(first_run[0], tmp_path / "repo", symlinks=True)


def test_dvc_repro_runs_the_pipeline_then_nothing_and_reruns_only_what_changed(first_run, repo_after_first_run):
    out, repo_copy = first_run[1], repo_after_first_run
    assert ran(out) == list(BY_NAME)  # every stage, in DAG order
    assert "Test accuracy:" in out
    assert "up to date" in dvc(repo_copy, "status")
    assert ran(dvc(repo_copy, "repro")) == []  # a second repro is a no-op
    metrics = json.loads((repo_copy / paths.EVALUATION).read_text())
    rows = [line.split(",") for line in (repo_copy / "reports" / "predictions.csv").read_text().splitlines()[1:]]
    assert metrics["images"] == len(rows) == 40
    assert metrics["accuracy"] == sum(r[1] == r[2] for r in rows) / 40  # the headline agrees with each answer
    shown = dvc(repo_copy, "metrics", "show")  # the headline numbers of reports/metrics.json
    assert shown.split("\n")[0].split() == ["Path", "acc", "acc_hi", "acc_lo", "auc", "ece", "gate", "logloss"] + [
        "recall.Female",
        "recall.Male",
    ]

    assert json.loads((repo_copy / paths.GATE).read_text())["passed"]  # the floor is 0
    assert not (repo_copy / paths.PRODUCTION_DIR).exists()  # dvc repro never promotes

    # a new candidate that fails the gate: the gate says so, DVC is clean
    set_params(repo_copy, {"train": {"epochs": 2}, "gate": {"min_accuracy": 1.0}})
    out = dvc(repo_copy, "repro")
    assert ran(out) == ["train", "evaluate", "gate"]
    assert "quality gate FAILED: accuracy" in out
    assert "up to date" in dvc(repo_copy, "status")
    assert ran(dvc(repo_copy, "repro")) == []
    # nothing outside the declared outputs was written into the repository
    status = subprocess.run(
        ["git", "status", "--porcelain", "--ignored"], cwd=repo_copy, capture_output=True, text=True
    ).stdout
    written = {line[3:].split("/")[0] for line in status.splitlines()}
    assert written <= {"params.yaml", "dvc.lock", "data", "models", "reports", ".venv", ".dvc"}, written


def test_validate_alone_from_a_fresh_copy(repo_copy):
    set_params(repo_copy, TINY_PARAMS)
    out = dvc(repo_copy, "repro", "validate")
    assert ran(out) == ["download", "validate"]
    assert "Data and pipelines are up to date" in dvc(repo_copy, "status", "validate")


def test_push_to_the_default_local_remote_and_pull_into_a_fresh_clone(repo_after_first_run, tmp_path):
    repo_copy = repo_after_first_run
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "commit", "-qam", "tiny run"], cwd=repo_copy, check=True)
    assert "pushed" in dvc(repo_copy, "push")
    storage = repo_copy / "dvc-storage"  # the default remote: ../dvc-storage relative to .dvc/
    assert any(storage.rglob("*")), "nothing was pushed"

    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo_copy), str(clone)], check=True)
    (clone / ".venv").symlink_to(repo_copy / ".venv")
    # another clone reaches the same store by pointing its (uncommitted) local config at it
    dvc(clone, "remote", "modify", "--local", "local", "url", str(storage))
    dvc(clone, "pull")
    assert (clone / "models" / "model" / "saved_model.pb").is_file()
    for rel in (paths.EVALUATION, paths.METRICS):
        assert json.loads((clone / rel).read_text()) == json.loads((repo_copy / rel).read_text())
    assert "up to date" in dvc(clone, "status")
    assert ran(dvc(clone, "repro")) == []


# the headline columns that fit beside the experiment's name in 120 columns; per-class recall follows to the right
FIRST_SCREEN = ("acc", "acc_lo", "acc_hi", "auc", "ece", "gate", "logloss")


def test_an_experiment_shows_its_headline_metrics_in_120_columns(repo_after_first_run):
    repo_copy = repo_after_first_run
    subprocess.run(["git", "add", "-A"], cwd=repo_copy, check=True, capture_output=True)
    subprocess.run(["git", "commit", "-qm", "baseline"], cwd=repo_copy, check=True, capture_output=True)
    # a stricter gate: only the gate reruns, and the experiment's verdict differs from the baseline's
    out = dvc(repo_copy, "exp", "run", "-n", "strict-gate", "-S", "gate.min_accuracy=1.0")
    assert ran(out) == ["gate"]

    shown = json.loads(dvc(repo_copy, "exp", "show", "--json"))
    baseline = next(row for row in shown if row["rev"] != "workspace")
    experiment = baseline["experiments"][0]["revs"][0]
    assert experiment["name"] == "strict-gate"
    metrics = {
        row["name"]: row["data"]["metrics"][paths.METRICS]["data"] for row in (baseline, experiment) if row["data"]
    }
    assert metrics["strict-gate"]["gate"] is False
    assert metrics[baseline["name"]]["gate"] is True
    assert metrics["strict-gate"]["acc"] == metrics[baseline["name"]]["acc"]  # the same model
    assert set(metrics["strict-gate"]) == {"acc", "acc_lo", "acc_hi", "auc", "ece", "gate", "logloss", "recall"}

    # Without flags DVC pages the full-width table with `less -S`, so a 120-column terminal shows the
    # first 120 characters of each line: the experiment names and the headline metrics, none cut short.
    table = dvc(repo_copy, "exp", "show")
    screen = [line[:120] for line in table.splitlines()]
    header = next(line for line in screen if "Experiment" in line)
    assert all(f" {name} " in header for name in FIRST_SCREEN), "\n".join(screen)
    assert "recall.Female" in table
    assert "recall.Male" in table
    # further right, params columns, as many as DVC's ~1,000-character table holds (with eight stages it
    # ends before the train section: `make experiments` shows the params that differ, whole)
    assert "model.handle" in table
    row = next(line for line in screen if "strict-gate" in line)
    assert "…" not in header + row, "\n".join(screen)
    assert str(metrics["strict-gate"]["acc"]) in row, "\n".join(screen)

    # `make experiments`: the same rows without a pager, the headline and only the params that differ
    done = subprocess.run(
        [sys.executable, "-m", "flows.experiments"], cwd=repo_copy, capture_output=True, text=True, check=True
    )
    lines = done.stdout.splitlines()
    assert max(len(line) for line in lines) <= 120, done.stdout
    assert "…" not in done.stdout, done.stdout
    metrics_header, params_header = (line.split() for line in lines if line.startswith("experiment"))
    assert metrics_header == ["experiment", *FIRST_SCREEN, "recall.Female", "recall.Male", "Δacc"]
    assert params_header == ["experiment", "gate.min_accuracy"]  # the only param that differs
    strict = next(line.split() for line in lines if "strict-gate" in line)
    assert strict[2:] == [f"{metrics['strict-gate'][k]:.4f}" for k in ("acc", "acc_lo", "acc_hi", "auc", "ece")] + [
        "False",
        f"{metrics['strict-gate']['logloss']:.4f}",
        *(f"{v:.4f}" for v in metrics["strict-gate"]["recall"].values()),
        "+0.0000",  # the same model as its baseline commit
    ]


def test_a_failed_download_says_how_to_get_the_previous_data_back(repo_after_first_run):
    repo = repo_after_first_run
    before = (repo / paths.RAW_DIR / paths.SOURCE_NAME).read_bytes()
    set_params(repo, {"data": {"source": "local", "path": str(repo / "no-such.zip")}})
    failed = subprocess.run(
        [sys.executable, "-m", "dvc", "repro", "download"], cwd=repo, capture_output=True, text=True
    )
    assert failed.returncode != 0
    assert not (repo / paths.RAW_DIR).exists()  # dvc repro removed the output before the command ran
    assert f"the previous {paths.RAW_DIR} are in DVC's cache: `dvc checkout download` brings them back" in (
        failed.stderr
    )
    dvc(repo, "checkout", "download")
    assert (repo / paths.RAW_DIR / paths.SOURCE_NAME).read_bytes() == before


def test_an_s3_team_remote_carries_the_production_model_and_the_outputs_to_a_teammate_clone(
    repo_after_first_run, tmp_path, monkeypatch
):
    """The team route on an S3 API (moto's server on loopback): `make promote` pushes to the bucket before it tags,
    a teammate's clone gets the production model by its registry name and every output, byte-identical."""
    from ops.s3_local import CREDENTIALS, s3_server

    repo = repo_after_first_run
    for key, value in CREDENTIALS.items():  # through the usual AWS variables only, never in .dvc/config
        monkeypatch.setenv(key, value)
    with s3_server() as endpoint:
        dvc(repo, "remote", "add", "-d", "team", "s3://dvc-team/dvc")
        dvc(repo, "remote", "modify", "team", "endpointurl", endpoint)
        subprocess.run(["git", "commit", "-qam", "the team remote"], cwd=repo, check=True, capture_output=True)
        done = subprocess.run([sys.executable, "-m", "ops.promote"], cwd=repo, capture_output=True, text=True)
        assert done.stdout.startswith("promoted: models/model is the production model model@v0.0.1"), done.stderr
        config = (repo / ".dvc" / "config").read_text()
        assert "testing" not in config and "secret" not in config

        clone = tmp_path / "teammate"
        subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True)
        (clone / ".venv").symlink_to(repo / ".venv")
        image = next((repo / paths.FIGURES_DIR).glob("*.png"))
        predicted = subprocess.run(
            [sys.executable, "-m", "flows.predict", "--json", str(image)], cwd=clone, capture_output=True, text=True
        )
        assert "model: model@v0.0.1 at models/production/model" in predicted.stderr, predicted.stderr
        assert contents(clone, paths.PRODUCTION_MODEL) == contents(repo, paths.MODEL_DIR)
        dvc(clone, "pull")  # the outputs dvc.lock names, from the bucket
        assert "up to date" in dvc(clone, "status")
        for rel in (paths.MODEL_DIR, paths.EVALUATION, paths.PROCESSED_DIR):
            assert digest(clone, rel) == digest(repo, rel), rel

    # the server is gone: one line that names the remote and its endpoint, at once rather than after DVC's retries
    (clone / paths.PRODUCTION_POINTER).unlink()  # make it fetch again
    failed = subprocess.run(
        [sys.executable, "-m", "flows.predict", str(image)], cwd=clone, capture_output=True, text=True
    )
    assert failed.returncode != 0
    assert failed.stderr.strip().splitlines()[-1] == (
        f"error: DVC remote 'team' (s3://dvc-team/dvc, endpoint {endpoint}) is unreachable: Connection refused; "
        "check the endpoint and the network (dvc remote modify NAME endpointurl URL)"
    )
