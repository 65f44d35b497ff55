"""Backbone handles: local SavedModels and built-ins load (URLs: tests/code/test_hub.py)."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

from tasks import backbones
from tasks.errors import ParamsError
from tasks.params.config import parse
from tests.helpers.repo import REPO

URL = "https://tfhub.dev/google/imagenet/resnet_v2_50/feature_vector/5"


def test_handle_kinds(small_savedmodel, tmp_path):
    assert backbones.handle_kind(URL) == "url"
    assert (
        backbones.handle_kind("https://www.kaggle.com/models/google/resnet-v2/TensorFlow2/50-feature-vector/2") == "url"
    )
    assert backbones.handle_kind("small_cnn") == "builtin"
    assert backbones.handle_kind(str(small_savedmodel)) == "local"
    assert backbones.handle_kind("kaggle:google/resnet-v2/tensorFlow2/50-feature-vector/2") == "kaggle"
    with pytest.raises(ValueError, match="not a TF Hub URL, a Kaggle Models handle .*, a SavedModel folder"):
        backbones.handle_kind(str(tmp_path))  # a folder without saved_model.pb


def test_a_folder_that_is_not_a_savedmodel_is_a_params_error(tmp_path):
    with pytest.raises(ParamsError, match="model.handle: .* not a TF Hub URL, a Kaggle Models handle"):
        parse({"model": {"handle": str(tmp_path)}})


def test_hub_keras_layer_loads_a_local_savedmodel(small_savedmodel):
    layer = backbones.load_backbone(backbones.resolve(str(small_savedmodel), 32, 0, "unused"))
    assert type(layer).__mro__[1].__name__ == "KerasLayer"
    out = layer(np.random.rand(3, 32, 32, 3).astype("float32"), training=False)
    assert out.shape == (3, 128)
    assert not layer.trainable_weights  # frozen by default


def test_a_backbone_of_another_fixed_input_size_is_one_line_naming_the_size(small_savedmodel):
    from tasks.errors import StageError
    from tasks.features import build_extractor

    backbone = backbones.load_backbone(str(small_savedmodel))  # exported for 32x32 images
    with pytest.raises(StageError, match=r"^the backbone \(model.handle\) takes 32x32 images, not 48x48; set model"):
        build_extractor(backbone, 48)
    assert build_extractor(backbone, 32).output_shape[0] is None  # its own size builds


def test_loading_a_backbone_does_not_import_keras_3(small_savedmodel):
    """tensorflow_hub's probe for Keras 2 would import all of Keras 3 in every stage that loads a backbone."""
    code = (
        "import sys; from tasks.cli import setup; from tasks import backbones; setup(); "
        f"backbones.load_backbone({str(small_savedmodel)!r}); print(sorted(m for m in sys.modules if m == 'keras'))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert done.stdout.split()[-1] == "[]", done.stderr[-2000:]


EXPORT = """
import sys
from tasks.cli import setup
from tasks import backbones
setup()
print(backbones.export_builtin("small_cnn", 16, 0, sys.argv[1]))
"""


def test_two_processes_wanting_one_backbone_export_it_once(tmp_path):
    """The second waits for the first's export and finds it (as two pytest-xdist workers or two queued
    experiments sharing data/backbones do), instead of pretraining it again."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", EXPORT, str(tmp_path)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outs]
    target = tmp_path / "small_cnn-16px-seed0-pretrained"
    assert [out.strip() for out, _ in outs] == [str(target)] * 2
    assert (target / "saved_model.pb").is_file()
    exports = [line for _, err in outs for line in err.splitlines() if "exporting built-in small_cnn" in line]
    assert len(exports) == 1, exports


def test_fine_tuning_unfreezes_only_the_top_layers(small_savedmodel):
    all_layers = backbones.load_backbone(str(small_savedmodel), trainable_top=0)
    top_two = backbones.load_backbone(str(small_savedmodel), trainable_top=2)
    assert len(all_layers.trainable_weights) == 8  # 4 conv layers, kernel + bias
    names = [w.name for w in top_two.trainable_weights]
    assert len(names) == 4, names

    def layer_number(name):  # Keras numbers layers per process: conv2d, conv2d_1, ... or conv2d_8, conv2d_9, ...
        return int(re.match(r"conv2d(?:_(\d+))?/", name).group(1) or 0)

    all_numbers = sorted({layer_number(w.name) for w in all_layers.trainable_weights})
    assert {layer_number(n) for n in names} == set(all_numbers[-2:]), names
