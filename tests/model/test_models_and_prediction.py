"""Models and prediction inputs that a determined user brings: each gets one clear line, nothing is lost.

* a damaged copy of the production model (folder missing, a file changed, the pointer unreadable) stops
  the gate instead of a silent fall-back to the floor;
* a truncated SavedModel, or a SavedModel with another signature, given to evaluate or predict;
* FIFOs, devices and oversized files given to predict are not read, and the other files are predicted;
* a photo stored sideways is turned upright as its EXIF orientation says;
* single-colour images of any colour are refused.
"""

from __future__ import annotations

import os
import shutil
import signal

import numpy as np
import pytest
import yaml
from PIL import Image, ImageOps

from flows import predict
from tasks import images as images_module
from tasks import paths
from tasks.errors import StageError
from tasks.evaluate import BLANK_COLOURS
from tasks.inference import load_model
from tests.helpers.data import digest
from tests.helpers.production import put_in_production
from tests.model.test_quality import _gate, _judge, _run, _stage_root

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        ("model folder missing", "the model v0.0.1 is missing"),
        ("a model file changed", "the model's files are not those of v0.0.1"),
        ("pointer unreadable", "production.json is missing or unreadable"),
    ],
)
def test_a_damaged_production_copy_stops_the_gate_instead_of_falling_back_to_the_floor(
    damage, expected, trained, tmp_path
):
    prepared_root, _, result = trained
    root = _stage_root(tmp_path, prepared_root, result.model_dir)
    _run(root)
    assert _judge(root, min_accuracy=0.0).passed
    put_in_production(root)
    copy = root / paths.PRODUCTION_MODEL
    if damage == "model folder missing":
        shutil.rmtree(copy)
    elif damage == "a model file changed":
        (copy / "saved_model.pb").write_bytes(b"\0" * 64)
    else:
        (root / paths.PRODUCTION_POINTER).write_text("{not json")
    before = digest(root, paths.PRODUCTION_DIR)
    gate_before = _gate(root)
    with pytest.raises(StageError, match=f"not a whole copy of the production model \\({expected}\\); delete it"):
        _judge(root, min_accuracy=0.0)
    assert digest(root, paths.PRODUCTION_DIR) == before
    assert _gate(root) == gate_before  # nothing written


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
    assert code == 1
    assert len(out.strip().splitlines()) == 1 + 10  # the header, and every readable image still predicted
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
    assert a["label"] == b["label"]
    assert a["probability"] == pytest.approx(b["probability"], abs=0.03)
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
