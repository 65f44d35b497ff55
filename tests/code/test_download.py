"""The download stage: each source, the Kaggle client faked at its boundary, atomic output."""

from __future__ import annotations

import csv
import json
import shutil
import zipfile
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests

from tasks import archive, paths, retry
from tasks import download as dl
from tasks.errors import StageError
from tasks.files import sha256_file
from tasks.params.data import DataParams
from tests.helpers.data import TINY, tiny_synthetic

SLUG = "ashishjangra27/gender-recognition-200k-images-celeba"


class FakeKaggleApi:
    """Stands in for kaggle's KaggleApi: writes a real dataset zip where the real client would."""

    def __init__(self, folder: Path, failures: int = 0):
        self.folder, self.failures, self.calls = folder, failures, []

    def dataset_download_files(self, dataset, path=None, force=False, quiet=True, unzip=False, licenses=()):
        self.calls.append(("dataset_download_files", dataset, dict(path=path, force=force, quiet=quiet, unzip=unzip)))
        if self.failures:
            self.failures -= 1
            raise requests.exceptions.ConnectionError("connection reset")
        archive.pack_folder(self.folder, Path(path) / f"{dataset.split('/')[1]}.zip")

    def dataset_list(self, search=None, user=None, **kw):
        self.calls.append(("dataset_list", search, user))
        return [
            SimpleNamespace(ref="someone/else", current_version_number=9, last_updated="x"),
            SimpleNamespace(ref=SLUG, current_version_number=1, last_updated="2021-06-01 10:00:00"),
        ]


@pytest.fixture
def creds(monkeypatch, tmp_path):
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "kaggle-config"))
    monkeypatch.setenv("KAGGLE_USERNAME", "alice")
    monkeypatch.setenv("KAGGLE_KEY", "s3cr3t-key-value")
    monkeypatch.delenv("KAGGLE_API_TOKEN", raising=False)


def test_kaggle_source_calls_the_client_and_records_provenance(dataset_folder, tmp_path, creds, capsys):
    api = FakeKaggleApi(dataset_folder)
    result = dl.download(tmp_path / "raw", DataParams(source="kaggle"), api_factory=lambda: api)
    name, slug, kwargs = api.calls[0]
    assert (name, slug) == ("dataset_download_files", SLUG)
    # progress shown, zip kept, and no force: the client resumes a partial file from an earlier run
    assert kwargs == dict(path=kwargs["path"], force=False, quiet=False, unzip=False)
    assert Path(kwargs["path"]) == tmp_path / "downloads" / SLUG  # beside the output, not inside it
    assert not Path(kwargs["path"]).exists()  # removed once the output is in place
    assert api.calls[1] == ("dataset_list", "gender-recognition-200k-images-celeba", "ashishjangra27")
    source = json.loads((tmp_path / "raw" / paths.SOURCE_NAME).read_text())
    assert source["slug"] == SLUG
    assert source["dataset_version"] == 1
    assert source["last_updated"].startswith("2021-06-01")
    assert source["sha256"] == sha256_file(result.archive)
    assert source["images"] == sum(TINY.values())
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == [paths.RAW_ARCHIVE_NAME, paths.SOURCE_NAME]
    out = capsys.readouterr()
    assert "s3cr3t" not in out.out + out.err


def test_kaggle_network_errors_are_retried_with_backoff(dataset_folder, tmp_path, creds, monkeypatch):
    slept = []
    monkeypatch.setattr(retry.time, "sleep", slept.append)
    api = FakeKaggleApi(dataset_folder, failures=2)
    dl.download(tmp_path / "raw", DataParams(source="kaggle"), api_factory=lambda: api)
    assert slept == [2.0, 5.0]
    assert [c[0] for c in api.calls].count("dataset_download_files") == 3


def test_kaggle_gives_up_with_a_clear_error_and_no_output(dataset_folder, tmp_path, creds, monkeypatch):
    monkeypatch.setattr(retry.time, "sleep", lambda s: None)
    api = FakeKaggleApi(dataset_folder, failures=10)
    with pytest.raises(StageError, match="network error after 4 attempts"):
        dl.download(tmp_path / "raw", DataParams(source="kaggle"), api_factory=lambda: api)
    assert sorted(tmp_path.iterdir()) == [tmp_path / "downloads", tmp_path / "src"]  # no raw/, no temp folder


def test_the_stage_retries_are_the_only_retry_layer():
    """Prefect does not retry on top of the stage: 4 attempts stay 4, not 4 x (1 + task retries)."""
    from flows.pipeline import STAGE_NAMES, stage_task

    assert {stage: stage_task(stage, "v", "h").retries for stage in STAGE_NAMES} == dict.fromkeys(STAGE_NAMES, 0)


def test_missing_credentials_say_how_to_provide_them(tmp_path, monkeypatch, no_kaggle_env):
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "empty"))
    called = []
    with pytest.raises(StageError) as err:
        dl.download(tmp_path / "raw", DataParams(source="kaggle"), api_factory=lambda: called.append(1))
    assert "put kaggle.json in ~/.kaggle (chmod 600)" in str(err.value)
    assert "KAGGLE_USERNAME and KAGGLE_KEY" in str(err.value)
    assert not called
    assert not (tmp_path / "raw").exists()


def test_kaggle_json_readable_by_others_gets_a_chmod_hint(tmp_path, monkeypatch, caplog, no_kaggle_env):
    conf = tmp_path / "kcfg"
    conf.mkdir()
    (conf / "kaggle.json").write_text('{"username": "a", "key": "k"}')
    (conf / "kaggle.json").chmod(0o644)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(conf))
    assert dl.check_credentials() == str(conf / "kaggle.json")
    assert "chmod 600" in caplog.text


def test_local_zip_is_copied(dataset_folder, tmp_path):
    zipped = tmp_path / "dl.zip"
    archive.pack_folder(dataset_folder, zipped)
    result = dl.download(tmp_path / "raw", DataParams(source="local", path=str(zipped)))
    assert sha256_file(result.archive) == sha256_file(zipped)
    assert result.source.counts["Train"] == {"Female": 7, "Male": 5}


def test_local_folder_is_packed_either_as_parent_or_as_dataset_folder(dataset_folder, tmp_path):
    a = dl.download(tmp_path / "a", DataParams(source="local", path=str(dataset_folder)))
    b = dl.download(tmp_path / "b", DataParams(source="local", path=str(dataset_folder / "Dataset")))
    assert a.source.sha256 == b.source.sha256
    with zipfile.ZipFile(a.archive) as zf:
        assert "Dataset/Train/Male/000001.jpg" in zf.namelist()


def test_synthetic_is_deterministic_by_seed_and_in_the_kaggle_layout(tmp_path):
    one = dl.download(tmp_path / "one", tiny_synthetic())
    two = dl.download(tmp_path / "two", tiny_synthetic())
    other = dl.download(tmp_path / "other", tiny_synthetic(seed=4))
    assert one.source.sha256 == two.source.sha256 != other.source.sha256
    assert one.source.counts == {
        "Train": {"Female": 23, "Male": 17},
        "Validation": {"Female": 9, "Male": 7},
        "Test": {"Female": 9, "Male": 7},
    }
    from PIL import Image

    with zipfile.ZipFile(one.archive) as zf:
        with zf.open("Dataset/Test/Male/000001.jpg") as fh, Image.open(fh) as img:
            assert (img.format, img.size, img.mode) == ("JPEG", (178, 218), "RGB")


def test_label_noise_moves_images_to_the_other_class_and_keys_them_outside_the_dataset(tmp_path):
    clean = dl.download(tmp_path / "clean", tiny_synthetic())
    noisy = dl.download(tmp_path / "noisy", tiny_synthetic(label_noise=0.25))
    key = list(csv.DictReader((tmp_path / "noisy" / paths.NOISE_KEY_NAME).open()))
    assert not (tmp_path / "clean" / paths.NOISE_KEY_NAME).exists()
    assert sorted(Counter(row["split"] for row in key).items()) == [("Test", 4), ("Train", 10), ("Validation", 4)]

    def images(archive_path):
        with zipfile.ZipFile(archive_path) as zf:
            return {name: zf.read(name) for name in zf.namelist() if name.endswith(".jpg")}

    before, after = images(clean.archive), images(noisy.archive)
    assert sorted(before.values()) == sorted(after.values())  # the same images, nothing lost or added
    where = {data: name.split("/")[2] for name, data in before.items()}  # image -> its true class
    flipped = {name for name, data in after.items() if where[data] != name.split("/")[2]}
    assert flipped == {row["path"] for row in key}
    assert all(row["given_label"] == row["path"].split("/")[2] != row["true_label"] for row in key)
    assert not any(name.startswith(paths.DATASET_TOP) and paths.NOISE_KEY_NAME in name for name in after)


def test_synthetic_classes_differ_by_more_than_colour(tmp_path):
    """Mean colour per class is nearly the same: the cue is shape (hair, jaw, beard), not a tint."""
    import numpy as np
    from PIL import Image

    result = dl.download(tmp_path / "raw", tiny_synthetic(train=100, validation=2, test=2))
    means = {"Male": [], "Female": []}
    with zipfile.ZipFile(result.archive) as zf:
        for name in zf.namelist():
            if "/Train/" in name:
                with zf.open(name) as fh, Image.open(fh) as img:
                    means[name.split("/")[2]].append(np.asarray(img, dtype=float).mean(axis=(0, 1)))
    gap = np.abs(np.mean(means["Male"], axis=0) - np.mean(means["Female"], axis=0))
    spread = np.std(means["Male"] + means["Female"], axis=0)
    assert (gap < spread).all()


def test_failed_run_leaves_previous_output_untouched(dataset_folder, tmp_path, monkeypatch):
    raw = tmp_path / "raw"
    first = dl.download(raw, DataParams(source="local", path=str(dataset_folder)))

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr("tasks.files.write_json", boom)  # the report is the last file written
    with pytest.raises(KeyboardInterrupt):
        dl.download(raw, DataParams(source="local", path=str(dataset_folder)))
    assert sha256_file(raw / paths.RAW_ARCHIVE_NAME) == first.source.sha256
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw", "src"]


def test_empty_folder_is_refused(tmp_path):
    (tmp_path / "empty" / "Dataset").mkdir(parents=True)
    with pytest.raises(StageError, match="holds no images"):
        dl.download(tmp_path / "raw", DataParams(source="local", path=str(tmp_path / "empty")))
    assert not (tmp_path / "raw").exists()


def test_folder_outside_the_layout_is_refused(dataset_folder, tmp_path):
    shutil.copy(next(dataset_folder.rglob("*.jpg")), dataset_folder / "Dataset" / "stray.jpg")
    with pytest.raises(StageError, match="not in the Kaggle layout"):
        dl.download(tmp_path / "raw", DataParams(source="local", path=str(dataset_folder)))
