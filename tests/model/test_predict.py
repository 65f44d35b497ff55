"""flows.predict: one line per image, by name; bad files reported, the rest still predicted."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from flows import predict
from tasks import dataset, paths
from tasks.errors import StageError
from tasks.files import tree_hash
from tasks.inference import load_model

pytestmark = pytest.mark.slow


def test_prints_label_and_probability_per_image(trained, images, capsys):
    import tensorflow as tf

    root, _, _ = trained
    assert predict.main([str(images), "--model", str(root / paths.MODEL_DIR)]) == 0
    captured = capsys.readouterr()
    header, *lines = captured.out.strip().splitlines()
    assert header == "path\tlabel\tprobability"
    assert len(lines) == 10
    # the model it used, named on stderr by its folder and the hash of its export
    assert f"model: {root / paths.MODEL_DIR} (sha256 of the export {tree_hash(root / paths.MODEL_DIR)[:12]})" in (
        captured.err
    )
    model = load_model(root / paths.MODEL_DIR)
    right = 0
    for line in lines:
        path, label, prob = line.split("\t")
        # the printed figure is the model's probability of the printed label for this very image
        image = tf.io.decode_jpeg(Path(path).read_bytes(), channels=3)
        expected = model.predict(dataset.resize(image, model.image_size).numpy()[None])[0]
        assert label == model.class_names[int(expected.argmax())]
        assert float(prob) == pytest.approx(float(expected[model.class_names.index(label)]), abs=1e-4)
        right += f"/{label}/" in path
    assert right >= 8


def test_a_bad_file_gets_a_message_and_the_others_are_predicted(trained, images, capsys):
    root, _, _ = trained
    (images / "Male" / "broken.jpg").write_text("not an image")
    code = predict.main([str(images), "--model", str(root / paths.MODEL_DIR), "--json"])
    captured = capsys.readouterr()
    results = json.loads(captured.out)
    assert code == 1
    assert len(results) == 11
    assert sum("label" in r for r in results) == 10
    assert "broken.jpg: error: cannot read this image" in captured.err


def test_a_folder_that_is_not_a_model_is_refused(tmp_path):
    with pytest.raises(StageError, match="not a SavedModel folder"):
        load_model(tmp_path)


def test_without_a_production_model_the_default_says_how_to_get_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    subprocess.run(["git", "init", "-q"], check=True)  # a clone whose registry has no model yet
    (tmp_path / "a.jpg").write_bytes(b"not read")
    with pytest.raises(
        StageError, match="models/production/model: no model in production yet; run make demo.*--model models/model"
    ):
        predict.main([str(tmp_path / "a.jpg")])
