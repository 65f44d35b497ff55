"""Bad configuration and credentials: one clear line naming the key or file, never a traceback or a secret."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image

from tasks import download as dl
from tasks import paths, retry
from tasks.cli import run_cli
from tasks.files import write_json
from tasks.params.data import DataParams
from tests.helpers.data import jpeg
from tests.helpers.repo import REPO

SECRET = "kgl-3f9a7c1d5e2b8a4f6c0d"


def _cli(stage: str, params: dict, cwd: Path) -> subprocess.CompletedProcess:
    import yaml

    (cwd / "bad.yaml").write_text(yaml.safe_dump(params))
    return subprocess.run(
        [sys.executable, "-m", "tasks.run", stage, "--params", "bad.yaml"],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "HOME": str(cwd)},
    )


@pytest.mark.parametrize(
    ("module", "params", "message"),
    [
        ("download", {"data": {"sorce": "kaggle"}}, "bad.yaml: data.sorce: unknown key"),
        ("train", {"model": {"image_size": "224px"}}, "bad.yaml: model.image_size: expected int"),
        (
            "download",
            {"data": {"source": "local", "path": "missing.zip"}},
            "data.path: 'missing.zip' does not exist",
        ),
        (
            "train",
            {"model": {"handle": "."}},
            "model.handle: '.' is not a TF Hub URL, a Kaggle Models handle",
        ),
        ("validate", {"validate": {"min_per_class": -1}}, "validate.min_per_class: -1 is out of range"),
        (
            "download",
            {"data": {"synthetic": {"seed": -1}}},
            "data.synthetic.seed: -1 is out of range; it must be between 0 and 4294967295",
        ),
        (
            "download",
            {"data": {"synthetic": {"male_share": float("nan")}}},
            "data.synthetic.male_share: nan is not a finite number",
        ),
        ("download", {"data": {"synthetic": {"train": "1e12"}}}, "data.synthetic.train: '1e12' is written as a"),
        (
            "download",
            {"data": {"synthetic": {"train": 10**12}}},
            "data.synthetic.train: 1000000000000 is out of range; it must be between 2 and 1000000",
        ),
        ("train", {"train": {"learning_rate": float("nan")}}, "train.learning_rate: nan is not a finite number"),
        ("train", {"train": {"learning_rate": float("inf")}}, "train.learning_rate: inf is not a finite number"),
    ],
)
def test_bad_params_stop_the_stage_with_one_line_naming_the_key(module, params, message, tmp_path):
    done = _cli(module, params, tmp_path)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "data").exists()


def test_an_empty_params_file_is_refused_by_the_stages_and_the_flow(tmp_path):
    (tmp_path / "bad.yaml").write_text("")
    done = subprocess.run(
        [sys.executable, "-m", "tasks.run", "download", "--params", "bad.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "bad.yaml: empty; it must hold the pipeline's sections (restore it: git checkout bad.yaml" in done.stderr
    assert not (tmp_path / "data").exists()  # not the built-in defaults

    from flows.pipeline import gender_pipeline
    from tasks.errors import ParamsError

    (tmp_path / paths.PARAMS_FILE).write_text("\n")
    with pytest.raises(ParamsError, match="params.yaml: empty"):
        gender_pipeline.fn(root=str(tmp_path))


STRICT_CASES = [
    ("train:\n  epochs: 3\n  epochs: 50\n", "line 3: train.epochs: duplicate key (first at line 2); keep one of them"),
    ("train: {epochs: 3}\ntrain: {epochs: 50}\n", "line 2: train: duplicate key (first at line 1)"),
    ("- data\n- train\n", "line 1: the top level must be a mapping of sections"),
    ("train:\n  epochs: &n 3\n  fine_tune_epochs: *n\n", "line 3: train.fine_tune_epochs: an alias (*name) repeats"),
    ("base: &b {epochs: 3}\ntrain:\n  <<: *b\n", "line 3: train.<<: a merge key (<<) hides which values apply"),
]


@pytest.mark.parametrize(("text", "message"), STRICT_CASES)
def test_params_are_read_strictly_by_the_stages_the_flow_and_the_doctor(text, message, tmp_path):
    """A value DVC would read differently (or refuse) stops every entry point with one line: key and line."""
    (tmp_path / "bad.yaml").write_text(text)
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    stage = subprocess.run(
        [sys.executable, "-m", "tasks.run", "train", "--params", "bad.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
    )
    assert stage.returncode == 2
    assert f"error: bad.yaml: {message}" in stage.stderr
    assert "Traceback" not in stage.stderr
    (tmp_path / paths.PARAMS_FILE).write_text(text)
    doctor = subprocess.run(
        [sys.executable, "-m", "tasks.doctor", "--check"], cwd=tmp_path, capture_output=True, text=True, env=env
    )
    assert doctor.returncode == 1
    assert f"params.yaml: {message}" in doctor.stderr

    from flows.pipeline import gender_pipeline
    from tasks.errors import ParamsError

    with pytest.raises(ParamsError, match=re.escape(message)):
        gender_pipeline.fn(root=str(tmp_path))


def test_a_fifo_as_data_path_is_refused_without_reading_it(tmp_path):
    os.mkfifo(tmp_path / "data.zip")  # reading it would block for ever
    done = _cli("download", {"data": {"source": "local", "path": str(tmp_path / "data.zip")}}, tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "data.path: " in done.stderr
    assert "is not a regular file or a folder (a FIFO" in done.stderr


def test_a_missing_stage_input_says_which_stage_to_run(tmp_path):
    done = _cli("validate", {}, tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert f"{paths.RAW_DIR}/{paths.SOURCE_NAME}: not found; run the download stage first" in done.stderr


class _LeakyApi:
    """A fake Kaggle client that fails twice with the network, then succeeds."""

    def __init__(self, folder):
        self.folder, self.failures = folder, 2

    def dataset_download_files(self, dataset, path=None, **kw):
        if self.failures:
            self.failures -= 1
            raise requests.exceptions.ConnectionError("connection reset by peer")
        from tasks.archive import pack_folder

        pack_folder(self.folder, Path(path) / f"{dataset.split('/')[1]}.zip")

    def dataset_list(self, **kw):
        return []


def test_the_kaggle_key_never_appears_in_output_reports_or_errors(
    dataset_folder, tmp_path, monkeypatch, capsys, caplog
):
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "cfg"))
    monkeypatch.setenv("KAGGLE_USERNAME", "alice")
    monkeypatch.setenv("KAGGLE_KEY", SECRET)
    monkeypatch.setattr(retry.time, "sleep", lambda s: None)
    caplog.set_level("DEBUG")
    result = dl.download(tmp_path / "raw", DataParams(source="kaggle"), api_factory=lambda: _LeakyApi(dataset_folder))
    monkeypatch.setattr(_LeakyApi, "dataset_download_files", lambda *a, **k: (_ for _ in ()).throw(OSError(5, "I/O")))
    with pytest.raises(OSError) as failure:
        dl.download(tmp_path / "raw2", DataParams(source="kaggle"), api_factory=lambda: _LeakyApi(dataset_folder))
    out = capsys.readouterr()
    written = "".join(p.read_text(errors="replace") for p in (tmp_path / "raw").iterdir() if p.suffix == ".json")
    everything = out.out + out.err + caplog.text + written + json.dumps(asdict(result.source)) + str(failure.value)
    assert "retrying" in caplog.text  # the retries were logged...
    assert SECRET not in everything  # ...and the key appears nowhere


def test_a_world_readable_kaggle_json_gets_a_chmod_hint_without_the_key(tmp_path, monkeypatch, caplog, no_kaggle_env):
    (tmp_path / "kaggle.json").write_text(json.dumps({"username": "alice", "key": SECRET}))
    (tmp_path / "kaggle.json").chmod(0o644)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path))
    dl.check_credentials()
    assert f"chmod 600 {tmp_path / 'kaggle.json'}" in caplog.text
    assert SECRET not in caplog.text


def test_class_names_that_do_not_match_the_model_are_refused_by_predict(tmp_path, capsys):
    from benchmarks.predict import export_untrained
    from flows import predict

    model_dir = export_untrained("small_cnn", 32, 0, tmp_path / "model")
    write_json(model_dir / paths.CLASS_NAMES_NAME, ["Female", "Male", "Other"])
    pixels = np.random.default_rng(0).integers(0, 256, (218, 178, 3), dtype=np.uint8)  # not one colour
    (tmp_path / "face.jpg").write_bytes(jpeg(Image.fromarray(pixels)))
    with pytest.raises(SystemExit) as exit_:
        run_cli(lambda: predict.main([str(tmp_path / "face.jpg"), "--model", str(model_dir)]))
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "class_names.json lists 3 classes but the model outputs 2" in err
    assert "Traceback" not in err


def test_a_model_folder_that_is_not_a_savedmodel_is_refused_by_predict(tmp_path, capsys):
    from flows import predict

    (tmp_path / "not-a-model").mkdir()
    (tmp_path / "x.jpg").write_bytes(b"")
    with pytest.raises(SystemExit) as exit_:
        run_cli(lambda: predict.main([str(tmp_path / "x.jpg"), "--model", str(tmp_path / "not-a-model")]))
    assert exit_.value.code == 2
    assert "not a SavedModel folder (no saved_model.pb)" in capsys.readouterr().err
