"""A URL backbone through tensorflow_hub's real resolver, against a loopback Hub host (tests/helpers/hub_fake.py):
a download, a dropped connection, a stall, refusals, non-models, a damaged cache, no network."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from tasks import backbones, hub, paths, retry
from tasks.errors import StageError
from tasks.files import tree_hash
from tests.helpers import hub_fake
from tests.helpers.prefect_server import free_port
from tests.helpers.repo import BACKBONES, REPO


@pytest.fixture
def loopback(monkeypatch, tmp_path):
    """No proxy for loopback, no waiting between retries, a fresh TF Hub cache."""
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setattr(retry.time, "sleep", lambda s: None)
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path / "tfhub"))
    return tmp_path / "tfhub"


@pytest.fixture
def fake(small_savedmodel, loopback):
    with hub_fake.serve(small_savedmodel) as served:
        yield served


def _archive_requests(fake) -> int:
    return sum(p.startswith("/archive/") for p in fake.requests)


@pytest.mark.slow
def test_resnet50v2_is_downloaded_by_the_real_resolver_redirected_to_a_signed_url(monkeypatch, tmp_path, loopback):
    model = backbones.export_builtin("resnet50v2", 64, 0, BACKBONES)  # the one the benchmarks' smoke runs use
    monkeypatch.delenv("TFHUB_CACHE_DIR")
    with hub_fake.serve(model) as fake:
        resolved = backbones.resolve(fake.url, 64, 0, tmp_path / "backbones")
        assert os.environ["TFHUB_CACHE_DIR"] == str(tmp_path / "backbones" / "tfhub")  # not /tmp/tfhub_modules
        assert resolved == str(hub.cache_folder(fake.url))
        assert fake.requests == [hub_fake.MODEL_PATH, "/archive/1.tar.gz"]
        assert tree_hash(Path(resolved)) == tree_hash(model)  # every file, byte for byte
        assert backbones.resolve(fake.url, 64, 0, tmp_path / "backbones") == resolved  # from the checked cache
        assert len(fake.requests) == 2
    assert (tmp_path / "backbones" / "tfhub" / (hub.cache_folder(fake.url).name + ".tree.json")).is_file()


def test_a_dropped_connection_is_retried_and_the_download_completes(fake, caplog):
    fake.faults = ["drop"]
    with caplog.at_level(logging.WARNING, logger="pipeline"):
        folder = hub.fetch(fake.url, 10)
    assert (folder / "saved_model.pb").is_file()
    assert _archive_requests(fake) == 3  # cut short, looked at (a gzip start: retry), downloaded
    assert "ConnectionError on attempt 1; retrying" in caplog.text


def test_a_stalled_server_fails_within_the_timeout_with_one_line(fake, loopback):
    fake.faults = ["stall"] * 8
    start = time.monotonic()
    with pytest.raises(StageError) as err:
        hub.fetch(fake.url, 0.5)
    assert time.monotonic() - start < 20  # 4 attempts of 0.5 s reads (sleeps skipped)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"backbone {fake.url}: could not download it (")
    assert "timed out" in message and "4 attempts" in message
    assert "pre-seed the cache" in message and "local SavedModel folder" in message
    assert sorted(p.name for p in loopback.iterdir()) == []  # no lock, no temporary folder, no half model


@pytest.mark.parametrize(
    ("fault", "says"),
    [
        ("403", "HTTP 403, the model host refused the download"),
        ("html", "the server answered with an HTML page (text/html)"),
        ("no_model", "the download holds no saved_model.pb at its top"),
    ],
)
def test_an_answer_that_is_not_a_model_gets_its_own_line(fake, fault, says):
    fake.faults = [fault] * 8
    with pytest.raises(StageError, match="local SavedModel folder") as err:
        hub.fetch(fake.url, 10)
    assert str(err.value).startswith(f"backbone {fake.url}: {says}"), err.value
    assert "\n" not in str(err.value)
    assert not hub.cache_folder(fake.url).exists()  # nothing the next run would trust
    assert _archive_requests(fake) <= 2  # not retried


@pytest.mark.parametrize("damage", ["a changed file", "saved_model.pb deleted"])
def test_a_damaged_cache_is_set_aside_and_downloaded_again(fake, small_savedmodel, caplog, damage):
    folder = hub.fetch(fake.url, 10)
    if damage == "a changed file":
        index = folder / "variables" / "variables.index"
        index.write_bytes(index.read_bytes()[:-1])
    else:
        (folder / "saved_model.pb").unlink()
    with caplog.at_level(logging.WARNING, logger="pipeline"):
        again = hub.fetch(fake.url, 10)
    assert again == folder and _archive_requests(fake) == 2
    said = "no longer matches its first download" if damage == "a changed file" else "holds no saved_model.pb"
    assert f"the cached copy {folder} {said}" in caplog.text
    assert f"; set aside as {folder}.bad-1, downloading again" in caplog.text
    assert tree_hash(again) == tree_hash(small_savedmodel)  # repaired, byte for byte
    assert backbones.load_backbone(str(again))(np.zeros((1, 32, 32, 3), "float32")).shape == (1, 128)


def test_a_pre_seeded_cache_is_used_without_the_network(small_savedmodel, loopback):
    url = f"http://127.0.0.1:{free_port()}/models/offline"  # nothing listens there
    folder = hub.cache_folder(url)
    folder.parent.mkdir(parents=True)
    tarfile.open(fileobj=io.BytesIO(hub_fake.tar_gz(small_savedmodel))).extractall(folder)
    assert hub.fetch(url, 1) == folder
    assert (folder.parent / (folder.name + ".tree.json")).is_file()  # recorded at first use


def test_no_network_and_no_cache_is_one_line_with_the_two_ways_out(loopback):
    url = f"http://127.0.0.1:{free_port()}/models/offline"
    with pytest.raises(StageError) as err:
        hub.fetch(url, 1)
    message = str(err.value)
    assert message.startswith(f"backbone {url}: could not download it (ConnectionError: "), message
    assert "Connection refused" in message and "\n" not in message
    assert f"unpack the model into {hub.cache_folder(url)}" in message
    assert "set model.handle to a local SavedModel folder" in message


# the train stage's command line, its retries' waits left out (the policy is tested above)
OFFLINE_STAGE = "import time; time.sleep = lambda s: None; from tasks.run import main; main(['train'])"


def test_the_train_stage_offline_stops_with_that_one_line_and_no_traceback(loopback, tmp_path):
    url = f"http://127.0.0.1:{free_port()}/models/offline"
    params = yaml.safe_load((REPO / paths.PARAMS_FILE).read_text())
    params["model"].update(handle=url, download_timeout_s=1)
    (tmp_path / paths.PARAMS_FILE).write_text(yaml.safe_dump(params))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", OFFLINE_STAGE], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr[-3000:]
    assert errors[0].startswith(f"error: backbone {url}: could not download it (ConnectionError: "), errors
    assert f"unpack the model into {hub.cache_folder(url)}" in errors[0]
    assert "set model.handle to a local SavedModel folder" in errors[0]
    assert done.stderr.count("retrying in") == len(retry.RETRY_DELAYS)  # the dataset's policy
