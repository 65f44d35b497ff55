"""atomic_outputs: a stage that shares its parent folder replaces only its own outputs."""

from __future__ import annotations

import pytest

from tasks.files import atomic_outputs


def _tree(folder):
    return {p.relative_to(folder).as_posix(): p.read_text() for p in folder.rglob("*") if p.is_file()}


def test_only_the_named_outputs_are_replaced(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "old.txt").write_text("old")
    (tmp_path / "blessed").mkdir()
    (tmp_path / "blessed" / "keep.txt").write_text("another stage's output")
    with atomic_outputs([tmp_path / "model", tmp_path / "history.json"]) as staging:
        (staging / "model").mkdir()
        (staging / "model" / "new.txt").write_text("new")
        (staging / "history.json").write_text("[]")
    assert _tree(tmp_path) == {
        "model/new.txt": "new",
        "history.json": "[]",
        "blessed/keep.txt": "another stage's output",
    }


def test_a_failure_leaves_every_output_as_it_was(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "old.txt").write_text("old")
    before = _tree(tmp_path)
    with pytest.raises(RuntimeError), atomic_outputs([tmp_path / "model"]) as staging:
        (staging / "model").mkdir()
        raise RuntimeError("training failed")
    assert _tree(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_outputs_in_different_folders_are_refused(tmp_path):
    with pytest.raises(ValueError, match="share one folder"), atomic_outputs([tmp_path / "a" / "x", tmp_path / "y"]):
        pass
