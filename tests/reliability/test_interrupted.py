"""Interrupted work: killed processes and full disks leave nothing that DVC or the next stage accepts."""

from __future__ import annotations

import errno
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tasks import download as dl
from tasks import paths
from tasks.errors import StageError
from tasks.train import checkpoint_folder
from tests.helpers.data import run_stage, tiny_synthetic
from tests.helpers.processes import kill_when, run_command, start_command


def test_a_download_killed_midway_leaves_no_output_and_the_next_run_restarts_cleanly(tmp_path):
    params = {"data": {"synthetic": {"train": 3000, "validation": 10, "test": 10}}}
    proc = start_command("download", tmp_path, params)
    kill_when(proc, lambda: any((tmp_path / "data").glob(".raw.tmp-*/Dataset.zip")))
    assert not (tmp_path / paths.RAW_DIR).exists()  # nothing that DVC or validate would accept
    params["data"]["synthetic"]["train"] = 20
    run_command("download", tmp_path, params)
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
    changed = _key_in(repo_copy, processed, str(backbone))
    with (repo_copy / "tasks" / "evaluate.py").open("a") as fh:
        fh.write("# an edit of code that train does not import\n")
    assert _key_in(repo_copy, processed, str(backbone)) == changed  # the key's code is train's code deps


def test_checkpoints_of_another_run_are_removed_saying_so(tmp_path, caplog):
    checkpoints = tmp_path / paths.CHECKPOINTS_DIR
    (checkpoints / "other").mkdir(parents=True)
    (checkpoints / "mine").mkdir()
    with caplog.at_level("INFO", logger="pipeline"):
        assert checkpoint_folder(checkpoints, "mine") == checkpoints / "mine"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["mine"]
    assert f"removed {checkpoints / 'other'}: checkpoints of another run" in caplog.text
    assert f"resuming from {checkpoints / 'mine'}" in caplog.text
