"""Model tests: it learns, it names classes right, the export reloads, phase 1 is cheap, resume works."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest

from tasks import backbones, dataset, paths
from tasks.feature_files import load
from tasks.files import tree_hash
from tasks.inference import load_model, predict_split
from tasks.stages import BY_NAME
from tests.helpers.data import run_stage
from tests.helpers.processes import kill_when, run_command, start_command
from tests.helpers.repo import BACKBONES
from tests.helpers.tiny_model import TINY_MODEL_PARAMS, link_prepared, prepare, tiny_params, train_at

pytestmark = pytest.mark.slow


def test_the_model_learns_the_synthetic_signal(trained):
    root, params, result = trained
    metrics = asdict(run_stage("evaluate", root, evaluate=params.evaluate).evaluation)
    majority = max(c["support"] for c in metrics["per_class"].values()) / metrics["images"]  # one answer for all
    assert metrics["accuracy"] >= max(0.8, majority + 0.2)
    assert metrics["roc_auc"] >= 0.9
    assert json.loads((root / paths.EVALUATION).read_text())["accuracy"] == metrics["accuracy"]
    rows = (root / paths.PREDICTIONS).read_text().splitlines()
    assert rows[0] == "path,true_label,predicted_label,probability"
    assert len(rows) == 101
    for name in ("confusion_matrix.png", "roc.png", "sample_predictions.png"):
        assert (root / paths.FIGURES_DIR / name).stat().st_size > 1000


def test_history_covers_both_phases_and_curves_are_plotted(trained):
    root, params, result = trained
    history = json.loads((root / paths.HISTORY).read_text())
    assert [h["phase"] for h in history] == ["head"] * params.train.epochs + [
        "fine_tune"
    ] * params.train.fine_tune_epochs
    assert [h["step"] for h in history] == list(range(1, len(history) + 1))
    assert (root / paths.CURVES).stat().st_size > 1000
    assert any((root / paths.TENSORBOARD_DIR / "fine_tune").rglob("events.out.tfevents.*"))
    assert not (root / paths.CHECKPOINTS_DIR).exists() or not any((root / paths.CHECKPOINTS_DIR).iterdir())


def _known_images(root: Path, label: str, n: int = 12) -> np.ndarray:
    """Test images of a known class, decoded like training does."""
    import zipfile

    import tensorflow as tf

    from tasks.dataset import decode_and_resize

    with zipfile.ZipFile(root / paths.RAW_DIR / paths.RAW_ARCHIVE_NAME) as zf:
        names = sorted(n_ for n_ in zf.namelist() if f"/Test/{label}/" in n_)[:n]
        return np.stack([decode_and_resize(tf.constant(zf.read(x)), 48).numpy() for x in names])


def test_labels_by_name_are_right_for_known_images(trained):
    root, _, _ = trained
    model = load_model(root / paths.MODEL_DIR)
    assert model.class_names == ["Female", "Male"]
    for label in ("Male", "Female"):
        names = [model.class_names[i] for i in model.predict(_known_images(root, label)).argmax(axis=1)]
        assert names.count(label) >= 9, (label, names)


def test_the_saved_model_reloads_with_the_same_predictions(trained):
    root, _, result = trained
    images = np.concatenate([_known_images(root, "Male", 4), _known_images(root, "Female", 4)])
    in_memory = result.model(images, training=False).numpy()
    first, second = (load_model(root / paths.MODEL_DIR).predict(images) for _ in range(2))
    np.testing.assert_allclose(first, in_memory, atol=1e-5)
    np.testing.assert_array_equal(first, second)
    # the serving signature takes raw images of any size and resizes them itself
    import tensorflow as tf

    big = tf.image.resize(images, (96, 96)).numpy().round().astype(np.uint8)
    assert (load_model(root / paths.MODEL_DIR).predict(big).argmax(1) == first.argmax(1)).mean() >= 0.75


def test_label_order_comes_from_class_names_json(tmp_path):
    """Reversed class order (the seed notebook's bug): names still follow the label map. The head on the
    frozen pretrained backbone tells the classes apart (10 and 12 of 12 when written), so no fine-tuning."""
    params = tiny_params(fine_tune_epochs=0)
    params = replace(params, validate=replace(params.validate, class_names=["Male", "Female"]))
    processed = prepare(tmp_path, params)
    assert json.loads((processed / paths.CLASS_NAMES_NAME).read_text()) == ["Male", "Female"]
    train_at(tmp_path, tmp_path, params)
    model = load_model(tmp_path / paths.MODEL_DIR)
    assert model.class_names == ["Male", "Female"]
    for label in ("Male", "Female"):
        names = [model.class_names[i] for i in model.predict(_known_images(tmp_path, label)).argmax(axis=1)]
        assert names.count(label) >= 9, (label, names)


def _counting(layer):
    """Wrap a backbone layer so that it counts the images passing through it."""
    import tensorflow as tf
    import tf_keras

    class Counting(tf_keras.layers.Layer):
        def __init__(self):
            super().__init__()
            self.inner = layer
            self.images = tf.Variable(0, dtype=tf.int64, trainable=False)

        def call(self, x, training=None):
            self.images.assign_add(tf.cast(tf.shape(x)[0], tf.int64))
            return self.inner(x, training=training)

    return Counting()


def test_every_image_passes_the_frozen_backbone_once_in_the_features_stage_and_never_in_phase_1(
    prepared, tmp_path, monkeypatch
):
    root, params = prepared
    params = replace(params, train=replace(params.train, epochs=4, fine_tune_epochs=0))
    real, made = backbones.load_backbone, []
    monkeypatch.setattr(backbones, "load_backbone", lambda *a, **k: made.append(_counting(real(*a, **k))) or made[-1])
    stage = BY_NAME["features"]
    stage.fn(
        **{**stage.arguments(tmp_path, params), "processed": root / paths.PROCESSED_DIR, "backbone_cache": BACKBONES}
    )
    assert int(made[-1].images.numpy()) == 480 + 100 + 100  # Train, Validation, Test: each image once
    result = train_at(tmp_path, root, params)
    assert int(made[-1].images.numpy()) == 0  # the head's 4 epochs read the features stage's vectors
    assert len(made) == 2 and len(result.history) == 4
    assert np.array_equal(load(tmp_path / paths.FEATURES_DIR, "Test").x, load(root / paths.FEATURES_DIR, "Test").x)


class _Interrupt(Exception):
    pass


def test_resume_after_an_interruption_continues_from_the_last_complete_epoch(prepared, tmp_path, monkeypatch):
    import tf_keras

    root, params = prepared
    params = replace(params, train=replace(params.train, fine_tune_epochs=10))  # 6 stayed at the majority answer
    started: list[tuple[str, int]] = []

    class Spy(tf_keras.callbacks.TensorBoard):  # the one callback of every epoch (its folder is the phase)
        def on_epoch_begin(self, epoch, logs=None):
            started.append((Path(self.log_dir).name, epoch))
            super().on_epoch_begin(epoch, logs)

        def on_epoch_end(self, epoch, logs=None):
            super().on_epoch_end(epoch, logs)
            if Path(self.log_dir).name == "fine_tune" and epoch == 4 and not resumed:
                raise _Interrupt  # killed in fine-tuning epoch 5, after epoch 4 was saved

    monkeypatch.setattr(tf_keras.callbacks, "TensorBoard", Spy)
    resumed = False
    with pytest.raises(_Interrupt):
        train_at(tmp_path, root, params)
    assert not (tmp_path / paths.MODEL_DIR).exists()  # nothing half-exported
    assert started[-1] == ("fine_tune", 4)
    started.clear()
    resumed = True
    result = train_at(tmp_path, root, params)
    assert started == [("fine_tune", e) for e in range(4, 10)]  # the head phase and 4 epochs were not redone
    assert [h["epoch"] for h in result.history] == [1, 2, *range(1, 11)]
    assert result.history[-1]["val_accuracy"] > 0.6


def test_same_params_give_the_same_metrics(prepared, tmp_path):
    root, params = prepared
    params = replace(params, train=replace(params.train, fine_tune_epochs=2))
    a = train_at(tmp_path, root, params).history  # exports the built-in backbone
    b = train_at(tmp_path, root, params).history  # loads it from the cache
    assert a == b  # op determinism is on for a single device: the same numbers, not close ones


def test_training_killed_in_each_phase_resumes_to_exactly_the_uninterrupted_run(prepared, tmp_path):
    """The session's prepared data (the train section's epochs play no part in it), linked into two folders."""
    root, _ = prepared
    as_yaml = {**TINY_MODEL_PARAMS, "train": {**TINY_MODEL_PARAMS["train"], "epochs": 3, "fine_tune_epochs": 6}}
    for run_root in (tmp_path / "whole", tmp_path / "killed"):  # the same data, each its own outputs
        link_prepared(run_root, root)
    whole = run_command("train", tmp_path / "whole", as_yaml)
    epochs = [line.split("pipeline.train INFO ")[1] for line in whole.stderr.splitlines() if ": epoch " in line]
    assert [e.split(":")[0] + ":" + e.split(":")[1] for e in epochs] == [
        *(f"head: epoch {n}/3" for n in (1, 2, 3)),
        *(f"fine_tune: epoch {n}/6" for n in range(1, 7)),
    ]  # one line per epoch, with its metrics ...
    assert all("val_accuracy" in e for e in epochs) and "Epoch 1/1" not in whole.stderr  # ... and no Keras' own

    killed = tmp_path / "killed"

    def epochs_done(phase: str) -> int:
        return len(list((killed / paths.CHECKPOINTS_DIR).glob(f"*/{phase}/epoch-*.json")))

    kill_when(start_command("train", killed, as_yaml), lambda: epochs_done("head") >= 1)
    kill_when(start_command("train", killed, as_yaml), lambda: epochs_done("fine_tune") >= 3)
    assert not (killed / paths.MODEL_DIR).exists()
    resumed = run_command("train", killed, as_yaml)
    assert "head: resuming after epoch 3 of 3" in resumed.stderr  # the head had finished: restored, not retrained
    assert "fine_tune: resuming after epoch " in resumed.stderr

    a = json.loads((killed / paths.HISTORY).read_text())
    b = json.loads((tmp_path / "whole" / paths.HISTORY).read_text())
    assert a == b  # every epoch's metrics, to the last digit
    test_files = dataset.shard_files(root / paths.PROCESSED_DIR, "Test")
    probs = [predict_split(load_model(r / paths.MODEL_DIR), test_files, 64).probs for r in (killed, tmp_path / "whole")]
    assert np.array_equal(*probs)  # the same weights: the same answers on Test
    # and the same variables in the export, byte for byte: no optimizer slots or metrics of a phase that ran here
    variables = [r / paths.MODEL_DIR / "variables" for r in (killed, tmp_path / "whole")]
    assert tree_hash(variables[0]) == tree_hash(variables[1])
