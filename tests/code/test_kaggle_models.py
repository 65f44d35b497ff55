"""A ``kaggle:`` backbone through the real ``kagglehub`` client, against the loopback Kaggle API fake
(tests/helpers/kaggle_fake.py, which also serves the dataset): a download with the dataset's credentials,
refused credentials, an unknown model, a dropped connection, a stall and a damaged cache."""

from __future__ import annotations

import logging
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import numpy as np
import pytest

from tasks import backbones, hub, retry
from tasks.errors import StageError
from tasks.files import tree_hash
from tasks.params.model import handle_kind
from tests.helpers import kaggle_fake
from tests.helpers.prefect_server import free_port

REF = "google/resnet-v2/tensorFlow2/50-feature-vector/2"
HANDLE = f"kaggle:{REF}"
USER, KEY = "fake-user", "fake-key"


@pytest.fixture
def fake(small_savedmodel, monkeypatch, tmp_path):
    """The fake serving the model; the real client pointed at it, a fresh kagglehub cache, no retry waits."""
    (tmp_path / "dataset.zip").write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip: the dataset is not used
    with kaggle_fake.serve("owner/dataset", tmp_path / "dataset.zip", USER, KEY) as served:
        served.add_model(REF, small_savedmodel)
        for name, value in kaggle_fake.client_env(served, USER, KEY).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "kaggle-config"))  # no ~/.kaggle
        monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path / "kagglehub"))
        # no waits between attempts; only the retry module's clock (the fake's stalls use time.sleep)
        monkeypatch.setattr(retry, "time", SimpleNamespace(**{**vars(time), "sleep": lambda s: None}))
        yield served


def _file_gets(fake) -> int:
    return len(fake.file_requests())


def test_the_handle_form_is_checked_before_anything_runs():
    assert handle_kind(HANDLE) == "kaggle"
    for bad in ("kaggle:google/resnet-v2/tensorFlow2/50-feature-vector", "kaggle:google/resnet-v2/tf2/fv/latest"):
        with pytest.raises(ValueError, match="kaggle:OWNER/MODEL/FRAMEWORK/VARIATION/VERSION"):
            handle_kind(bad)
    # kagglehub caches version 02 as 2: the project's cache check would look at another folder
    with pytest.raises(ValueError, match="the version 02 has a leading zero; write it as 2"):
        handle_kind("kaggle:google/resnet-v2/tensorFlow2/50-feature-vector/02")


def test_a_kaggle_models_handle_is_downloaded_by_kagglehub_with_the_dataset_credentials(
    fake, small_savedmodel, monkeypatch, tmp_path
):
    monkeypatch.delenv("KAGGLEHUB_CACHE")
    resolved = backbones.resolve(HANDLE, 32, 0, tmp_path / "backbones")
    assert resolved == str(tmp_path / "backbones" / "kagglehub" / "models" / REF)  # not ~/.cache/kagglehub
    assert tree_hash(hub.cache_folder(HANDLE)) == tree_hash(small_savedmodel)  # every file, byte for byte
    files = sorted(p.relative_to(small_savedmodel).as_posix() for p in small_savedmodel.rglob("*") if p.is_file())
    assert _file_gets(fake) == len(files)
    assert backbones.resolve(HANDLE, 32, 0, tmp_path / "backbones") == resolved  # from the checked cache
    assert _file_gets(fake) == len(files)
    assert (hub.cache_folder(HANDLE).parent / "2.tree.json").is_file()
    assert backbones.load_backbone(resolved)(np.zeros((1, 32, 32, 3), "float32")).shape == (1, 128)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"key": "wrong"}, "HTTP 401, Kaggle refused the download: check your Kaggle credentials"),
        ({"version": "3"}, "HTTP 404, no such model; check model.handle"),
    ],
)
def test_refused_credentials_and_an_unknown_model_are_one_line_each(fake, monkeypatch, change, says):
    handle = HANDLE[:-1] + change.get("version", "2")
    monkeypatch.setenv("KAGGLE_KEY", change.get("key", KEY))
    with pytest.raises(StageError) as err:
        hub.fetch(handle, 10)
    message = str(err.value)
    assert message.startswith(f"backbone {handle}: {says}"), message
    assert "\n" not in message
    assert len([r for r in fake.requests if r["path"].endswith("ListModelInstanceVersionFiles")]) == 1  # no retry
    assert not hub.cache_folder(handle).exists()


def test_a_dropped_connection_is_retried_and_the_download_completes(fake, small_savedmodel, caplog):
    fake.drop_after = 20_000  # the first file larger than that is cut there, once
    with caplog.at_level(logging.WARNING, logger="pipeline"):
        folder = hub.fetch(HANDLE, 10)
    assert "ConnectionError on attempt 1; retrying" in caplog.text
    assert tree_hash(folder) == tree_hash(small_savedmodel)


def test_a_stalled_server_fails_within_the_timeout_with_one_line(fake):
    fake.chunk_delay = 30  # after its first 16 KiB, each file stalls
    start = time.monotonic()
    with pytest.raises(StageError) as err:
        hub.fetch(HANDLE, 0.5)
    assert time.monotonic() - start < 30  # 4 attempts of 0.5 s reads (sleeps skipped)
    message = str(err.value)
    assert message.startswith(f"backbone {HANDLE}: could not download it (TimeoutError: no byte arrived in 0.5 s"), (
        message
    )
    assert "4 attempts" in message
    assert f"unpack the model into {hub.cache_folder(HANDLE)}; KAGGLEHUB_CACHE sets" in message


def test_a_slow_download_that_keeps_delivering_is_never_stopped(fake, small_savedmodel):
    """Every 16 KiB 0.3 s apart (about 53 KB/s) with a 0.5 s timeout: kagglehub writes a file 1 MiB at a time,
    so nothing reaches the disk for seconds, yet bytes keep arriving: only a silent download is stopped."""
    fake.chunk_delay = 0.3
    start = time.monotonic()
    folder = hub.fetch(HANDLE, 0.5)
    assert tree_hash(folder) == tree_hash(small_savedmodel)
    assert time.monotonic() - start > 2  # it was slow: more than four 0.5 s windows without a whole MiB


def test_a_damaged_cache_is_set_aside_and_downloaded_again(fake, small_savedmodel, caplog):
    folder = hub.fetch(HANDLE, 10)
    index = folder / "variables" / "variables.index"
    index.write_bytes(index.read_bytes()[:-1])
    with caplog.at_level(logging.WARNING, logger="pipeline"):
        again = hub.fetch(HANDLE, 10)
    assert again == folder
    assert f"the cached copy {folder} no longer matches its first download" in caplog.text
    assert f"; set aside as {folder}.bad-1, downloading again" in caplog.text
    assert tree_hash(again) == tree_hash(small_savedmodel)  # repaired, byte for byte


def test_two_workers_fetching_at_once_download_once_and_both_get_the_whole_model(fake, small_savedmodel):
    fake.chunk_delay = 0.05  # long enough for the second to arrive while the first downloads
    with ThreadPoolExecutor(2) as pool:
        folders = list(pool.map(lambda _: hub.fetch(HANDLE, 10), range(2)))
    assert folders[0] == folders[1]
    assert tree_hash(folders[0]) == tree_hash(small_savedmodel)
    files = sorted(p.relative_to(small_savedmodel).as_posix() for p in small_savedmodel.rglob("*") if p.is_file())
    assert _file_gets(fake) == len(files)  # the second found the first's checked download


def test_no_network_and_no_cache_is_one_line_with_the_two_ways_out(fake, monkeypatch):
    dead = f"http://127.0.0.1:{free_port()}"  # the Kaggle API's host through a proxy that is not there
    for name in ("http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(name, dead)
    with pytest.raises(StageError) as err:
        hub.fetch(HANDLE, 5)
    message = str(err.value)
    assert message.startswith(f"backbone {HANDLE}: could not download it (ConnectionError: "), message
    assert "4 attempts" in message
    assert "\n" not in message
    assert f"unpack the model into {hub.cache_folder(HANDLE)}" in message
    assert "set model.handle to a local SavedModel folder" in message
    assert fake.requests == []


def test_an_html_page_instead_of_the_api_is_one_line(fake):
    fake.html = True
    with pytest.raises(StageError) as err:
        hub.fetch(HANDLE, 10)
    message = str(err.value)
    assert message.startswith(f"backbone {HANDLE}: the Kaggle API answered with something that is not JSON"), message
    assert "\n" not in message
    assert len(fake.requests) == 1  # not retried
    assert not hub.cache_folder(HANDLE).exists()


def test_a_model_without_saved_model_pb_is_one_line_and_set_aside(fake, small_savedmodel, tmp_path):
    shutil.copytree(small_savedmodel / "variables", tmp_path / "not-a-savedmodel" / "variables")
    fake.add_model(REF, tmp_path / "not-a-savedmodel")
    with pytest.raises(StageError) as err:
        hub.fetch(HANDLE, 10)
    folder = hub.cache_folder(HANDLE)
    assert str(err.value).startswith(
        f"backbone {HANDLE}: the download holds no saved_model.pb at its top (set aside as {folder}.bad-1)"
    ), err.value
    assert not folder.exists()  # nothing the next run would trust
