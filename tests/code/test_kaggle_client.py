"""The download stage with the REAL kaggle client against a loopback fake of the Kaggle API.

Each run is the stage's own command line (``python -m tasks.run download``, as dvc.yaml runs it) in a
temporary project, so the client is imported and configured exactly as for a user.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tasks import download as dl
from tasks import paths
from tasks.files import sha256_file
from tests.helpers.data import tiny_synthetic
from tests.helpers.kaggle_fake import client_env, serve
from tests.helpers.repo import REPO

OWNER, NAME = "someone", "faces"
SLUG = f"{OWNER}/{NAME}"
USER, KEY = "alice", "s3cr3t-key-value"


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    """A real dataset zip in the Kaggle layout (about 3 MB: the client writes 1 MiB chunks)."""
    raw = tmp_path_factory.mktemp("served") / "raw"
    return dl.download(raw, tiny_synthetic(train=240, validation=30, test=30)).archive


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """A project folder with params for the fake's dataset; no kaggle.json, token or other proxy settings."""
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "kaggle-config"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in ("KAGGLE_API_TOKEN", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    root = tmp_path / "project"
    root.mkdir()
    params = yaml.safe_load((REPO / paths.PARAMS_FILE).read_text())
    params["data"].update(source="kaggle", kaggle_dataset=SLUG)
    (root / paths.PARAMS_FILE).write_text(yaml.safe_dump(params))
    return root


def stage(root: Path, fake, key: str = KEY, wait: bool = True):
    env = {**os.environ, **client_env(fake, USER, key)}
    cmd = [sys.executable, "-m", "tasks.run", "download"]
    if not wait:
        return subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=300)


def partial_file(root: Path) -> Path:
    return root / paths.DOWNLOADS_DIR / OWNER / NAME / f"{NAME}.zip"


def check_output(root: Path, archive: Path) -> dict:
    source = json.loads((root / paths.RAW_DIR / paths.SOURCE_NAME).read_text())
    assert source["sha256"] == sha256_file(archive) == sha256_file(root / paths.RAW_DIR / paths.RAW_ARCHIVE_NAME)
    assert not (root / paths.DOWNLOADS_DIR / OWNER / NAME).exists()  # removed once the output is in place
    return source


def test_the_real_client_downloads_with_progress_and_fills_source_json(project, archive):
    with serve(SLUG, archive, USER, KEY) as fake:
        done = stage(project, fake)
    assert done.returncode == 0, done.stderr
    source = check_output(project, archive)
    assert source["slug"] == SLUG
    assert source["dataset_version"] == 2  # from the ListDatasets answer
    assert source["last_updated"].startswith("2024-01-01 00:00:00")
    assert source["images"] == 300
    output = done.stdout + done.stderr
    assert f"Downloading {NAME}.zip" in output
    assert "100%" in output  # the client's own progress display
    assert KEY not in output
    assert [r["range"] for r in fake.file_requests()] == [None]


def test_a_dropped_connection_is_resumed_with_a_range_request(project, archive):
    size = archive.stat().st_size
    with serve(SLUG, archive, USER, KEY) as fake:
        fake.drop_after = size // 2
        done = stage(project, fake)
    assert done.returncode == 0, done.stderr
    check_output(project, archive)
    first, second = fake.file_requests()
    assert first["range"] is None
    assert first["sent"] == size // 2
    # the client keeps what it had written (whole 1 MiB chunks) and asks for the rest only
    start = int(second["range"].removeprefix("bytes=").removesuffix("-"))
    assert 0 < start <= size // 2
    assert second["sent"] == size - start


def test_a_killed_download_resumes_on_the_next_run_from_the_partial_file(project, archive):
    size = archive.stat().st_size
    with serve(SLUG, archive, USER, KEY) as fake:
        fake.chunk_delay = 0.02
        run = stage(project, fake, wait=False)
        deadline = time.monotonic() + 120
        while not (partial_file(project).is_file() and partial_file(project).stat().st_size >= size // 4):
            assert run.poll() is None, run.stdout and run.stdout.read()
            assert time.monotonic() < deadline, run.stdout and run.stdout.read()
            time.sleep(0.05)
        run.send_signal(signal.SIGKILL)
        run.wait(30)
        kept = partial_file(project).stat().st_size
        assert 0 < kept < size
        assert not (project / paths.RAW_DIR).exists()  # nothing DVC would accept
        fake.chunk_delay = 0.0
        done = stage(project, fake)
    assert done.returncode == 0, done.stderr
    check_output(project, archive)
    resumed = fake.file_requests()[-1]
    assert resumed["range"] == f"bytes={kept}-"
    assert resumed["sent"] == size - kept


def test_refusals_name_what_to_fix_and_write_nothing(project, archive):
    with serve(SLUG, archive, USER, KEY) as fake:
        wrong_key = stage(project, fake, key="not-the-key")
        params = yaml.safe_load((project / paths.PARAMS_FILE).read_text())
        params["data"]["kaggle_dataset"] = f"{OWNER}/no-such-data"
        (project / paths.PARAMS_FILE).write_text(yaml.safe_dump(params))
        wrong_slug = stage(project, fake)
    assert wrong_key.returncode == 2
    assert "Kaggle refused the credentials" in wrong_key.stderr
    assert "HTTP 401" in wrong_key.stderr
    assert "not-the-key" not in wrong_key.stdout + wrong_key.stderr
    assert wrong_slug.returncode == 2
    assert f"{OWNER}/no-such-data: no such dataset on Kaggle (HTTP 404)" in wrong_slug.stderr
    assert "Traceback" not in wrong_key.stderr + wrong_slug.stderr
    assert not (project / paths.RAW_DIR).exists()


def test_rate_limits_and_server_errors_are_retried(project, archive):
    with serve(SLUG, archive, USER, KEY) as fake:
        fake.statuses = [429, 503]
        done = stage(project, fake)
    assert done.returncode == 0, done.stderr
    check_output(project, archive)
    assert "HTTPError on attempt 1; retrying in 2 s" in done.stderr
    assert "HTTPError on attempt 2; retrying in 5 s" in done.stderr
    downloads = [r for r in fake.requests if r["path"].endswith("/DownloadDataset")]
    assert len(downloads) == 3
