"""Interrupted work: killed processes and full disks leave nothing that DVC or the next stage accepts."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from flows.pipeline import start_fresh
from tasks import download as dl
from tasks import paths
from tasks.errors import StageError
from tasks.train import checkpoint_folder
from tests.helpers.data import run_stage, tiny_synthetic
from tests.helpers.repo import REPO

ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def _start(module: str, cwd: Path, params: dict) -> subprocess.Popen:
    """Start ``python -m module`` in ``cwd`` with ``params`` as its params.yaml."""
    (cwd / "params.yaml").write_text(yaml.safe_dump(params))
    return subprocess.Popen(
        [sys.executable, "-m", module], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV
    )


def _run(module: str, cwd: Path, params: dict) -> subprocess.CompletedProcess:
    """Run ``python -m module`` to the end in ``cwd`` with ``params`` as its params.yaml."""
    (cwd / "params.yaml").write_text(yaml.safe_dump(params))
    done = subprocess.run([sys.executable, "-m", module], cwd=cwd, capture_output=True, text=True, env=ENV)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _kill_when(proc: subprocess.Popen, ready, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, "the process ended before it could be killed"
        assert time.monotonic() < deadline, "timed out waiting to kill"
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_a_download_killed_midway_leaves_no_output_and_the_next_run_restarts_cleanly(tmp_path):
    params = {"data": {"synthetic": {"train": 3000, "validation": 10, "test": 10}}}
    proc = _start("tasks.download", tmp_path, params)
    _kill_when(proc, lambda: any((tmp_path / "data").glob(".raw.tmp-*/Dataset.zip")))
    assert not (tmp_path / paths.RAW_DIR).exists()  # nothing that DVC or validate would accept
    params["data"]["synthetic"]["train"] = 20
    _run("tasks.download", tmp_path, params)
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["raw"]  # the killed run's temp folder is gone
    assert json.loads((tmp_path / paths.RAW_DIR / paths.SOURCE_NAME).read_text())["images"] == 40


@pytest.mark.parametrize("stage", ["download", "validate"])
def test_a_full_disk_fails_with_a_clear_message_and_no_partial_output(stage, dataset_folder, tmp_path, monkeypatch):
    from tasks.params.validate import ValidateParams

    raw = tmp_path / "data" / "raw"
    if stage == "validate":
        dl.download(raw, tiny_synthetic(train=10, validation=4, test=4))

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("tasks.files.write_json", full)  # each stage writes its report through it
    with pytest.raises(StageError, match="disk full while writing; free space and rerun"):
        if stage == "download":
            dl.download(raw, tiny_synthetic())
        else:
            run_stage("validate", tmp_path, validate=ValidateParams(min_per_class=1, workers=1))
    expected = ["raw"] if stage == "validate" else []
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == expected


@pytest.mark.slow
def test_training_killed_in_each_phase_resumes_to_exactly_the_uninterrupted_run(tmp_path):
    from tasks import dataset
    from tasks.inference import load_model, predict_split
    from tasks.params.config import parse
    from tests.helpers.tiny_model import TINY_MODEL_PARAMS, prepare

    as_yaml = {**TINY_MODEL_PARAMS, "train": {**TINY_MODEL_PARAMS["train"], "epochs": 3, "fine_tune_epochs": 6}}
    params = parse(as_yaml)
    prepare(tmp_path / "whole", params)
    shutil.copytree(tmp_path / "whole", tmp_path / "killed", symlinks=True)  # the same data, its own outputs
    _run("tasks.train", tmp_path / "whole", as_yaml)

    killed = tmp_path / "killed"

    def epochs_done(phase: str) -> int:
        return len(list((killed / paths.CHECKPOINTS_DIR).glob(f"*/{phase}/epoch-*.json")))

    _kill_when(_start("tasks.train", killed, as_yaml), lambda: epochs_done("head") >= 1)
    _kill_when(_start("tasks.train", killed, as_yaml), lambda: epochs_done("fine_tune") >= 3)
    assert not (killed / paths.MODEL_DIR).exists()
    resumed = _run("tasks.train", killed, as_yaml)
    assert "head: resuming after epoch 3 of 3" in resumed.stderr  # the head had finished: restored, not retrained
    assert "fine_tune: resuming after epoch " in resumed.stderr

    a = json.loads((killed / paths.HISTORY).read_text())
    b = json.loads((tmp_path / "whole" / paths.HISTORY).read_text())
    assert a == b  # every epoch's metrics, to the last digit
    test_files = dataset.shard_files(killed / paths.PROCESSED_DIR, "Test")
    probs = [predict_split(load_model(r / paths.MODEL_DIR), test_files, 64).probs for r in (killed, tmp_path / "whole")]
    assert np.array_equal(*probs)  # the same weights: the same answers on Test


def _key_in(repo: Path, processed: Path, handle: str, epochs: int = 2, excluded: tuple[str, ...] = ()) -> str:
    """train.run_key as ``repo``'s code computes it, in a fresh process."""
    code = (
        "import sys; from pathlib import Path; from tasks.train import run_key; from tasks.params.config import parse;"
        f"p = parse({{'train': {{'epochs': {epochs}}}}});"
        f"print(run_key(p.model, p.train, Path({str(processed)!r}), {handle!r}, frozenset({excluded!r})))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_a_checkpoint_is_resumed_only_with_the_same_params_data_code_and_backbone(repo_copy, tmp_path):
    processed, backbone = tmp_path / "processed", tmp_path / "backbone"
    for folder in (processed, backbone / "variables"):
        folder.mkdir(parents=True)
    (processed / paths.PREPROCESS_SUMMARY_NAME).write_text('{"images": 40}')
    (backbone / "saved_model.pb").write_bytes(b"graph")
    (backbone / "variables" / "variables.index").write_bytes(b"index")
    key = _key_in(repo_copy, processed, str(backbone))
    assert _key_in(repo_copy, processed, str(backbone)) == key
    assert _key_in(repo_copy, processed, str(backbone), epochs=3) != key  # params
    assert _key_in(repo_copy, processed, str(backbone), excluded=("Train/Male/000001.jpg",)) != key  # left out
    (backbone / "variables" / "variables.index").write_bytes(b"other weights")
    assert _key_in(repo_copy, processed, str(backbone)) != key  # backbone
    changed = _key_in(repo_copy, processed, str(backbone))
    (processed / paths.PREPROCESS_SUMMARY_NAME).write_text('{"images": 41}')
    assert _key_in(repo_copy, processed, str(backbone)) != changed  # data
    changed = _key_in(repo_copy, processed, str(backbone))
    with (repo_copy / "tasks" / "dataset.py").open("a") as fh:
        fh.write("# an edit\n")
    assert _key_in(repo_copy, processed, str(backbone)) != changed  # code


def test_checkpoints_of_another_run_are_removed_saying_so_and_a_forced_flow_stage_starts_fresh(tmp_path, caplog):
    checkpoints = tmp_path / paths.CHECKPOINTS_DIR
    (checkpoints / "other").mkdir(parents=True)
    (checkpoints / "mine").mkdir()
    with caplog.at_level("INFO", logger="pipeline"):
        assert checkpoint_folder(checkpoints, "mine") == checkpoints / "mine"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["mine"]
    assert f"removed {checkpoints / 'other'}: checkpoints of another run" in caplog.text
    assert f"resuming from {checkpoints / 'mine'}" in caplog.text

    start_fresh(tmp_path, "download")  # a stage without checkpoints leaves train's alone
    assert (checkpoints / "mine").is_dir()
    start_fresh(tmp_path, "train")
    assert not checkpoints.exists()
