"""Shared fixtures: tiny synthetic datasets made by the project's own generator."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from PIL import Image

from benchmarks.common import copy_repo
from tasks import paths, synthetic
from tasks.download import download
from tasks.params.config import Params
from tasks.params.data import DataParams, SyntheticParams
from tasks.params.validate import ValidateParams
from tasks.stages import BY_NAME

REPO = Path(__file__).resolve().parents[1]
TINY = {"Train": 12, "Validation": 6, "Test": 6}
# params.yaml changes for a whole pipeline run in well under a minute (end-to-end tests)
TINY_PARAMS = {
    "data": {"synthetic": {"train": 160, "validation": 40, "test": 40}},
    "validate": {"min_per_class": 1},
    "model": {"image_size": 32},
    "train": {"epochs": 1, "fine_tune_epochs": 1},
    "evaluate": {"bootstrap_samples": 200},
    # the gate always passes (each test that needs a failing gate sets it so)
    "promote": {"min_accuracy": 0.0, "max_regression": 1.0},
}


def run_stage(name: str, root: Path, **sections):
    """Run stage ``name`` through its contract on the layout under ``root``, with these params sections."""
    return BY_NAME[name].run(root, Params(**sections))


def digest(root: Path, rel: str) -> dict[str, str]:
    """sha256 of each file of the output ``rel`` (a file or a folder) under ``root``, keyed by path."""
    path = root / rel
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def write_folder(root: Path, counts: dict[str, int] = TINY, seed: int = 7) -> Path:
    """A dataset folder in the Kaggle layout (``root/Dataset/<Split>/<Class>/*.jpg``)."""
    seq: dict[tuple[str, str], int] = {}
    for split, label, data in synthetic.generate(counts, 0.42, seed):
        seq[split, label] = seq.get((split, label), 0) + 1
        path = root / paths.DATASET_TOP / split / label / f"{seq[split, label]:06d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def jpeg(img: Image.Image, fmt: str = "JPEG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


@pytest.fixture
def no_kaggle_env(monkeypatch) -> None:
    """No Kaggle credentials in the environment (config-file credentials are set up by each test)."""
    for var in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def dataset_folder(tmp_path: Path) -> Path:
    return write_folder(tmp_path / "src")


@pytest.fixture
def make_raw(tmp_path: Path):
    """Turn a dataset folder into a raw stage output (``data/raw``) with the real download stage."""

    def make(folder: Path) -> Path:
        raw = tmp_path / "data" / "raw"
        download(raw, DataParams(source="local", path=str(folder)))
        return raw

    return make


@pytest.fixture
def tiny_validate_params() -> ValidateParams:
    return ValidateParams(min_per_class=1, workers=1)


def tiny_synthetic(train: int = 40, validation: int = 16, test: int = 16, seed: int = 3) -> DataParams:
    return DataParams(
        source="synthetic", synthetic=SyntheticParams(train=train, validation=validation, test=test, seed=seed)
    )


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """A temporary git copy of the repository (see :func:`copy_repo`)."""
    return copy_repo(tmp_path / "repo")


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


def overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)
