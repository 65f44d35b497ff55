"""Shared fixtures (helpers are in tests/helpers/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks import quiet
from tasks.download import download
from tasks.params.data import DataParams
from tasks.params.validate import ValidateParams
from tests.helpers.data import write_folder
from tests.helpers.leftovers import left_behind, tag_this_session
from tests.helpers.prefect_server import flow_repo, prefect_server  # noqa: F401
from tests.helpers.repo import copy_repo, tiny_backbone
from tests.helpers.tiny_model import images, prepared, trained  # noqa: F401

quiet.use_tf_keras()  # as every command-line entry point does (tasks.cli.setup): here and in every child process

# flow_repo, prefect_server, images, prepared and trained are used in several folders, so they are
# registered here, once: a fixture imported into two conftest files is two fixtures, and a worker then
# trained the tiny model (or started a Prefect server) once per folder.

# The test files with the most work, longest first: seconds summed over each file's tests in a full
# run on the 2-core machine (2026-12-03, before test_pipeline_dvc shared its first repro). `make test`
# passes --no-loadscope-reorder, so pytest-xdist hands out units of work in this order (its default
# sends the files with the most tests first, which left the few long training tests for the end); the
# short files fill in the gaps at the end.
LONGEST_FIRST = (
    "tests/model/test_distribution.py",  # 425 s with the rest of tests/model/ (one unit, see below), and since
    # then the killed-training test (about 60 s), which reads the tiny model's data instead of preparing its own
    "tests/test_benchmarks.py",  # 647 in 7 units (see below); about 420 since the --small runs use small_cnn
    "tests/test_demo.py",  # 257: the demo's whole dvc repro, then a second dataset
    "tests/flows/test_flow.py",  # 214
    "tests/flows/test_events.py",  # 186
    "tests/flows/test_postgres.py",  # 177
    "tests/test_pipeline_dvc.py",  # 201 then; about 120 with its first repro shared, hence here
    "tests/reliability/test_flow_server.py",  # 127
    "tests/reliability/test_dataset_faults.py",  # 83
)
# Every test that reads the session's tiny model (the `prepared` and `trained` fixtures, built once per
# worker) is in this folder, and `--dist loadfile` hands the folder out whole: one worker trains it once.
TINY_MODEL_TESTS = "tests/model/"
# The benchmarks' smoke runs share nothing (each is a subprocess): each test is a unit of work of its own.
BY_TEST = "tests/test_benchmarks.py"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the files of :data:`LONGEST_FIRST` first, in its order; every other file after, as collected."""
    rank = {path: n for n, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))  # stable: tests keep their order


def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """``--dist loadfile``, except that :data:`TINY_MODEL_TESTS` is one unit of work and each test of
    :data:`BY_TEST` is one (see there)."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class ByFileAndTinyModel(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::")[0]
            if path == BY_TEST:
                return nodeid
            return TINY_MODEL_TESTS if path.startswith(TINY_MODEL_TESTS) else path

    return ByFileAndTinyModel(config, log)


@pytest.fixture(scope="session", autouse=True)
def no_process_left_behind():
    """Fail the session (each pytest-xdist worker's) when a process one of its tests started still runs at
    the end: every test ends what it started, also when it fails."""
    tag = tag_this_session()
    yield
    left = left_behind(tag)
    assert not left, f"processes left behind by the tests (now killed): {left}"


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


@pytest.fixture(scope="session")
def small_savedmodel() -> Path:
    """A small SavedModel folder (:func:`tiny_backbone`), for the tests of loading and serving one."""
    return tiny_backbone()


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """A temporary git copy of the repository (see :func:`copy_repo`)."""
    return copy_repo(tmp_path / "repo")
