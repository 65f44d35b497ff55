"""flows.predict: one line per image, by name; bad files reported, the rest still predicted."""

from __future__ import annotations

import json
import os
import shutil
import signal
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image, ImageOps

from flows import predict
from tasks import dataset, paths
from tasks import images as images_module
from tasks.evaluate import BLANK_COLOURS
from tasks.files import StageError
from tasks.inference import load_model

pytestmark = pytest.mark.slow


@pytest.fixture
def images(trained, tmp_path):
    root, _, _ = trained
    with zipfile.ZipFile(root / paths.RAW_DIR / paths.RAW_ARCHIVE_NAME) as zf:
        for label in ("Male", "Female"):
            names = sorted(n for n in zf.namelist() if f"/Test/{label}/" in n)[:5]
            for i, name in enumerate(names):
                (tmp_path / "in" / label).mkdir(parents=True, exist_ok=True)
                (tmp_path / "in" / label / f"{i}.jpg").write_bytes(zf.read(name))
    return tmp_path / "in"


def test_prints_label_and_probability_per_image(trained, images, capsys):
    import tensorflow as tf

    root, _, _ = trained
    assert predict.main([str(images), "--model", str(root / paths.MODEL_DIR)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 10
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
    assert len(results) == 11 and sum("label" in r for r in results) == 10
    assert "broken.jpg: error: cannot read this image" in captured.err


def test_a_folder_that_is_not_a_model_is_refused(tmp_path):
    with pytest.raises(StageError, match="not a SavedModel folder"):
        load_model(tmp_path)


def test_without_a_blessed_model_the_default_says_how_to_get_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.jpg").write_bytes(b"not read")
    with pytest.raises(
        StageError, match="models/blessed/model: no blessed model yet; run the pipeline.*--model models/model"
    ):
        predict.main([str(tmp_path / "a.jpg")])


def test_fifos_devices_and_oversized_files_are_not_read_and_the_rest_is_predicted(
    trained, images, tmp_path, capsys, monkeypatch
):
    root, _, _ = trained
    os.mkfifo(tmp_path / "pipe.jpg")  # reading it would block for ever
    (tmp_path / "big.jpg").write_bytes(b"\xff" * (2 * 2**20))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"validate": {"max_file_mb": 1}}))
    monkeypatch.chdir(tmp_path)  # predict takes its limits from the project's params.yaml
    signal.alarm(120)  # a hang fails the test instead of blocking the run
    try:
        code = predict.main(
            [
                str(tmp_path / "pipe.jpg"),
                "/dev/zero",
                str(tmp_path / "big.jpg"),
                str(images),
                "--model",
                str(root / paths.MODEL_DIR),
            ]
        )
    finally:
        signal.alarm(0)
    out, err = capsys.readouterr()
    assert code == 1 and len(out.strip().splitlines()) == 10  # every readable image still predicted
    assert "pipe.jpg: error: cannot read this image (not a regular file (a FIFO, device or socket); not read)" in err
    assert "/dev/zero: error: cannot read this image (not a regular file" in err
    assert "big.jpg: error: cannot read this image (larger than validate.max_file_mb=1; not read)" in err


def test_a_photo_stored_sideways_is_turned_upright_as_its_exif_says(trained, images, tmp_path):
    root, _, _ = trained
    model = load_model(root / paths.MODEL_DIR)
    upright = Image.open(sorted(images.rglob("*.jpg"))[0]).convert("RGB")
    upright.save(tmp_path / "upright.jpg", quality=95)
    exif = Image.Exif()
    exif[images_module.ORIENTATION_TAG] = 6  # "turn 90 degrees clockwise to show": a phone held upright
    upright.rotate(90, expand=True).save(tmp_path / "sideways.jpg", quality=95, exif=exif)
    a, b = predict.predict_files([tmp_path / "upright.jpg", tmp_path / "sideways.jpg"], model)
    assert a["label"] == b["label"] and a["probability"] == pytest.approx(b["probability"], abs=0.03)
    pixels = predict._read_image(tmp_path / "sideways.jpg", predict.project_limits())
    assert pixels.shape == (upright.height, upright.width, 3)  # as a viewer shows it


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_turns_match_pillows(orientation):
    pixels = np.random.default_rng(orientation).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    img = Image.fromarray(pixels)
    img.getexif()[images_module.ORIENTATION_TAG] = orientation
    expected = np.asarray(ImageOps.exif_transpose(img))
    assert np.array_equal(images_module.upright(pixels, orientation), expected)


def test_single_colour_images_of_any_colour_are_refused(trained, tmp_path):
    root, _, _ = trained
    for name, rgb in BLANK_COLOURS.items():
        Image.new("RGB", (178, 218), rgb).save(tmp_path / f"{name}.jpg")
    results = predict.predict_files(sorted(tmp_path.glob("*.jpg")), load_model(root / paths.MODEL_DIR))
    assert [r.get("error") for r in results] == [
        "cannot read this image (blank image (a single colour): nothing to classify)"
    ] * len(BLANK_COLOURS)


def test_a_corrupt_model_or_another_kind_of_savedmodel_gets_one_line(trained, tmp_path):
    import tensorflow as tf

    root, _, _ = trained
    broken = tmp_path / "broken"
    shutil.copytree(root / paths.MODEL_DIR, broken)
    (broken / "saved_model.pb").write_bytes((broken / "saved_model.pb").read_bytes()[:100])  # truncated
    with pytest.raises(StageError, match="cannot load this SavedModel, its files are truncated or corrupt"):
        load_model(broken)

    class Other(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
        def __call__(self, x):
            return {"y": x * 2}

    other = tmp_path / "other"
    module = Other()
    tf.saved_model.save(module, str(other), signatures={"serving_default": module.__call__})
    shutil.copy(root / paths.MODEL_DIR / paths.CLASS_NAMES_NAME, other)
    with pytest.raises(StageError, match=r"not a model exported by this pipeline: its serving signature takes \['x'\]"):
        load_model(other)
