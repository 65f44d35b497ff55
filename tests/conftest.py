"""Shared fixtures (helpers are in tests/helpers/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.download import download
from tasks.params.data import DataParams
from tasks.params.validate import ValidateParams
from tests.helpers.data import write_folder
from tests.helpers.repo import copy_repo


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


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """A temporary git copy of the repository (see :func:`copy_repo`)."""
    return copy_repo(tmp_path / "repo")
