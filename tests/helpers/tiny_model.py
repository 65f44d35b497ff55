"""A tiny pipeline run shared by the model tests: synthetic data, small CNN, 48 px."""

from __future__ import annotations

import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from tasks import paths
from tasks.params.config import Params, parse
from tasks.stages import BY_NAME, run_through
from tests.helpers.repo import BACKBONES, share_backbones

# params.yaml content for a pipeline that trains in well under a minute on 2 cores
TINY_MODEL_PARAMS = {
    "data": {"synthetic": {"train": 480, "validation": 100, "test": 100, "seed": 11}},
    "model": {"image_size": 48},
    "validate": {"min_per_class": 1, "workers": 1},
    "train": {
        "batch_size": 32,
        "epochs": 2,
        "learning_rate": 0.01,
        "fine_tune_epochs": 25,
        "fine_tune_learning_rate": 0.003,
        "seed": 5,
    },
}


def tiny_params(**train_overrides) -> Params:
    """:data:`TINY_MODEL_PARAMS`, typed, with ``train`` keys overridden."""
    p = parse(TINY_MODEL_PARAMS)
    return replace(p, train=replace(p.train, **train_overrides)) if train_overrides else p


def prepare(root: Path, params: Params) -> Path:
    """Run the stages before train under ``root`` (with the suite's backbone cache); return the processed folder."""
    share_backbones(root)
    run_through("audit", root, params)
    return root / paths.PROCESSED_DIR


@pytest.fixture(scope="session")
def prepared(tmp_path_factory) -> tuple[Path, Params]:
    root = tmp_path_factory.mktemp("prepared")
    params = tiny_params()
    prepare(root, params)
    return root, params


@pytest.fixture(scope="session")
def trained(prepared):
    """The tiny model, trained once for the session: (root, params, TrainResult)."""
    root, params = prepared
    return root, params, BY_NAME["train"].run(root, params)


def link_prepared(root: Path, prepared_root: Path) -> None:
    """Give ``root`` what the train stage reads, as links to what :func:`prepare` wrote under ``prepared_root``,
    and the suite's backbone cache: a training run with outputs (and checkpoints) of its own, on the same data."""
    share_backbones(root)
    for rel in BY_NAME["train"].deps.values():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).symlink_to(prepared_root / rel)


def train_at(out_root: Path, prepared_root: Path, params: Params):
    """The train stage with its outputs (and checkpoints) under ``out_root``, reading what :func:`prepare`
    wrote under ``prepared_root``."""
    stage = BY_NAME["train"]
    inputs = {name: prepared_root / path for name, path in stage.deps.items()}
    return stage.fn(**{**stage.arguments(out_root, params), **inputs, "backbone_cache": BACKBONES})


@pytest.fixture
def images(trained, tmp_path):
    """Five Test images of each class from the trained fixture's data, as files under ``tmp_path/in``."""
    root, _, _ = trained
    with zipfile.ZipFile(root / paths.RAW_DIR / paths.RAW_ARCHIVE_NAME) as zf:
        for label in ("Male", "Female"):
            names = sorted(n for n in zf.namelist() if f"/Test/{label}/" in n)[:5]
            for i, name in enumerate(names):
                (tmp_path / "in" / label).mkdir(parents=True, exist_ok=True)
                (tmp_path / "in" / label / f"{i}.jpg").write_bytes(zf.read(name))
    return tmp_path / "in"
