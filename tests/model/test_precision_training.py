"""Training and evaluating in reduced precision (the CPU's bfloat16 graph rewrite here)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from tasks import dataset, paths, precision
from tasks.inference import load_model, predict_split
from tests.helpers.tiny_model import tiny_params, train_at

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not precision.cpu_has_bfloat16(), reason="this CPU has no bfloat16 instructions"),
]


def _test_accuracy(model_dir, processed) -> tuple[float, np.ndarray]:
    pred = predict_split(load_model(model_dir), dataset.shard_files(processed, "Test"), 64)
    answers = pred.probs.argmax(axis=1)
    return float((answers == pred.y_true).mean()), answers


def test_training_in_bfloat16_stays_in_the_float32_band_and_exports_float32(prepared, trained, tmp_path, caplog):
    import tensorflow as tf

    root, _ = prepared
    _, _, full = trained
    caplog.set_level(logging.INFO, logger="pipeline")
    reduced = train_at(tmp_path, root, tiny_params(mixed_precision=True))
    assert "precision: bfloat16 (oneDNN bfloat16 graph rewrite" in caplog.text  # the run log names it
    assert "phase 1 (bfloat16)" in caplog.text
    assert "phase 2 (bfloat16)" in caplog.text
    saved = tf.train.load_checkpoint(str(reduced.model_dir / "variables" / "variables")).get_variable_to_dtype_map()
    assert tf.float32 in saved.values()
    assert not {tf.float16, tf.bfloat16} & set(saved.values())  # export: float32
    a, _ = _test_accuracy(full.model_dir, root / paths.PROCESSED_DIR)
    b, _ = _test_accuracy(reduced.model_dir, root / paths.PROCESSED_DIR)
    assert b >= 0.8, (a, b)
    assert abs(a - b) <= 0.05, (a, b)  # 100 Test images: 5 points is 5 images


def test_the_same_model_answers_the_same_in_bfloat16(trained):
    root, _, full = trained
    a, answers = _test_accuracy(full.model_dir, root / paths.PROCESSED_DIR)
    with precision.rewrite("bfloat16"):
        b, reduced = _test_accuracy(full.model_dir, root / paths.PROCESSED_DIR)
    assert (answers == reduced).mean() >= 0.99, ((answers == reduced).mean(), a, b)
    assert abs(a - b) <= 0.01 + 1e-9, ((answers == reduced).mean(), a, b)  # one image in 100; floats
