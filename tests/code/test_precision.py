"""Reduced precision through TensorFlow's graph rewrite: the choice, the switch, and feature parity."""

from __future__ import annotations

import numpy as np
import pytest

from tasks import backbones, precision
from tasks.params.model import ModelParams
from tasks.params.train import TrainParams
from tests.helpers.repo import BACKBONES

BF16 = precision.cpu_has_bfloat16()


def test_the_choice_follows_the_param_and_the_hardware():
    assert precision.choose(False, gpus=1, bfloat16=True)[0] == "float32"
    assert precision.choose(True, gpus=1, bfloat16=False)[0] == "float16"
    assert precision.choose(True, gpus=0, bfloat16=True)[0] == "bfloat16"
    chosen, why = precision.choose(True, gpus=0, bfloat16=False)
    assert chosen == "float32"
    assert "no GPU and this CPU has no bfloat16 instructions" in why


def test_bfloat16_support_is_read_from_the_cpu_flags(tmp_path):
    (tmp_path / "with").write_text("processor: 0\nflags\t\t: fpu sse avx512f avx512_bf16 amx_tile\n")
    (tmp_path / "without").write_text("processor: 0\nflags\t\t: fpu sse avx2\n")
    assert precision.cpu_has_bfloat16(tmp_path / "with")
    assert not precision.cpu_has_bfloat16(tmp_path / "without")
    assert not precision.cpu_has_bfloat16(tmp_path / "missing")


def test_the_rewrite_is_switched_on_inside_and_restored_after():
    import tensorflow as tf

    option = "auto_mixed_precision_onednn_bfloat16"
    assert not tf.config.optimizer.get_experimental_options().get(option, False)
    with precision.rewrite("bfloat16"):
        assert tf.config.optimizer.get_experimental_options()[option] is True
    assert not tf.config.optimizer.get_experimental_options().get(option, False)


@pytest.mark.slow
@pytest.mark.skipif(not BF16, reason="this CPU has no bfloat16 instructions: the rewrite is not used here")
# the demo's pretrained small_cnn (params.yaml's size and seed) and the resnet50v2 export the benchmarks' smoke
# runs use, both from the suite's backbone cache
@pytest.mark.parametrize(
    ("handle", "size", "seed"), [("small_cnn", ModelParams().image_size, TrainParams().seed), ("resnet50v2", 64, 0)]
)
def test_backbone_features_in_bfloat16_match_float32(handle, size, seed):
    import tensorflow as tf

    layer = backbones.load_backbone(backbones.resolve(handle, size, seed, BACKBONES))
    images = np.random.default_rng(0).integers(0, 256, (32, size, size, 3)).astype("float32")

    def features() -> np.ndarray:
        return tf.function(lambda x: layer(x, training=False))(images).numpy()  # traced afresh: rewritten or not

    full = features()
    with precision.rewrite("bfloat16"):
        reduced = features()
    assert not np.array_equal(full, reduced)  # the rewrite did reach the restored backbone
    cosine = (full * reduced).sum(1) / np.linalg.norm(full, axis=1) / np.linalg.norm(reduced, axis=1)
    assert cosine.min() >= 0.999, cosine.min()
