"""A temporary git copy of the repository, its params, and the real ``dvc`` command line in it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tasks import paths

REPO = Path(__file__).resolve().parents[2]
BACKBONES = REPO / paths.BACKBONES_DIR  # the built-in backbones' cache, shared by the whole suite
# params.yaml changes for a whole pipeline run in well under a minute (end-to-end tests)
TINY_PARAMS = {
    "data": {"synthetic": {"train": 160, "validation": 40, "test": 40}},
    "validate": {"min_per_class": 1},
    "model": {"image_size": 32},
    "train": {"epochs": 1, "fine_tune_epochs": 1},
    "evaluate": {"bootstrap_samples": 200},
    # the gate always passes (each test that needs a failing gate sets it so)
    "gate": {"min_accuracy": 0.0, "max_regression": 1.0},
}


def copy_repo(dest: Path) -> Path:
    """Copy the repository's files (tracked or not ignored) into ``dest`` as a fresh git repository.

    Outputs, caches and the DVC remote are not copied; ``.venv`` is linked, and so is the cache of
    built-in backbones (``data/backbones``): pretraining ``small_cnn`` takes half a minute, once
    per size and seed for the whole suite.
    """
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, check=True, capture_output=True, text=True
    ).stdout.split()
    for rel in listed:
        src = REPO / rel
        if src.is_file() and not src.is_symlink():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    (dest / ".venv").symlink_to(REPO / ".venv")
    share_backbones(dest)
    for cmd in (
        ["git", "init", "-q"],
        ["git", "add", "-A"],
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "copy"],
    ):
        subprocess.run(cmd, cwd=dest, check=True)
    return dest


def tiny_backbone() -> Path:
    """``small_cnn`` as the :data:`TINY_PARAMS` pipelines load it (32 px, params.yaml's seed), exported into
    :data:`BACKBONES`: also the suite's one local SavedModel folder, so a fresh clone pretrains it once."""
    from tasks.backbones import export_builtin
    from tasks.params.train import TrainParams

    return export_builtin("small_cnn", TINY_PARAMS["model"]["image_size"], TrainParams().seed, BACKBONES)


def share_backbones(root: Path) -> None:
    """Make ``root``'s cache of built-in backbones the suite's one (:data:`BACKBONES`)."""
    BACKBONES.mkdir(parents=True, exist_ok=True)
    (root / paths.BACKBONES_DIR).parent.mkdir(parents=True, exist_ok=True)
    (root / paths.BACKBONES_DIR).symlink_to(BACKBONES)


def set_params(repo: Path, changes: dict) -> None:
    """Update ``repo``'s params.yaml with ``changes`` (nested one level below each section)."""
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for section, values in changes.items():
        for key, value in values.items():
            if isinstance(value, dict):
                params[section][key].update(value)
            else:
                params[section][key] = value
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def dvc(repo: Path, *args: str) -> str:
    """Run the real ``dvc`` CLI in ``repo``; fail the test with its output if it fails."""
    done = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=repo, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def ran(dvc_output: str) -> list[str]:
    """The stages that a ``dvc repro`` output says it ran."""
    return [line.split("'")[1] for line in dvc_output.splitlines() if line.startswith("Running stage")]
