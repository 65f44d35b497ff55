"""Backbones: every ``model.handle`` is loaded through ``hub.KerasLayer``.

A handle is one of:
  * a TF Hub or Kaggle Models URL (the real default: ResNet50 v2 feature vector), downloaded by
    tensorflow_hub's own resolver with a timeout, retries and a checked cache (``tasks.hub``);
  * a local SavedModel folder;
  * a built-in name, for offline runs: ``small_cnn`` (learns the synthetic set on 2 CPU cores in
    minutes) or ``resnet50v2`` (random weights, for cost measurements). A built-in is built with
    ``tf_keras``, exported once as a SavedModel under ``data/backbones/`` and then loaded by the
    same ``hub.KerasLayer`` path as a downloaded one. Pretrained weights are never reachable offline.

Backbones take float images in [0, 1] (the TF Hub image convention) and return a feature vector.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tasks import hub
from tasks.params.model import handle_kind


def _build_builtin(name: str, image_size: int, seed: int) -> Any:
    import tf_keras

    tf_keras.utils.set_random_seed(seed)
    inputs = tf_keras.Input((image_size, image_size, 3))
    if name == "small_cnn":
        x = inputs
        for filters in (16, 32, 64, 128):
            x = tf_keras.layers.Conv2D(filters, 3, padding="same", activation="relu", kernel_initializer="he_normal")(x)
            x = tf_keras.layers.MaxPooling2D()(x)
        outputs = tf_keras.layers.GlobalAveragePooling2D()(x)
    else:  # resnet50v2: the architecture of the real backbone, random weights
        base = tf_keras.applications.ResNet50V2(include_top=False, weights=None, input_tensor=inputs, pooling="avg")
        outputs = base.output
    return tf_keras.Model(inputs, outputs, name=name)


def _export(name: str, image_size: int, seed: int, target: str) -> None:
    import tensorflow as tf

    tmp = Path(target).with_name(Path(target).name + ".tmp")
    tf.saved_model.save(_build_builtin(name, image_size, seed), str(tmp))
    tmp.replace(target)


def export_builtin(name: str, image_size: int, seed: int, cache_dir: Path) -> Path:
    """Export built-in ``name`` as a SavedModel (once per size and seed); return its folder.

    The export runs in a child process. TensorFlow names every traced function from one counter per
    process, and the trained model's own export carries those names: exporting the backbone in the
    training process first gave the model other bytes on a cold cache than on a warm one, so a forced
    rerun of train changed models/model and DVC reran everything after it.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    target = Path(cache_dir) / f"{name}-{image_size}px-seed{seed}"
    if not (target / "saved_model.pb").is_file():
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            pool.submit(_export, name, image_size, seed, str(target)).result()
    return target


def resolve(handle: str, image_size: int, seed: int, cache_dir: Path, timeout_s: float = 60.0) -> str:
    """The SavedModel folder to give ``hub.KerasLayer``: a folder as it is, a built-in exported, a URL
    downloaded by tensorflow_hub's resolver and a ``kaggle:`` handle by kagglehub (``tasks.hub.fetch``:
    every read bounded by ``timeout_s``).

    A URL's download is cached in ``cache_dir/tfhub`` (``data/backbones``, not TF Hub's default
    ``/tmp/tfhub_modules``) unless the user set ``TFHUB_CACHE_DIR``; a Kaggle one in ``cache_dir/kagglehub``
    (not ``~/.cache/kagglehub``) unless ``KAGGLEHUB_CACHE`` is set.
    """
    kind = handle_kind(handle)
    if kind == "builtin":
        return str(export_builtin(handle, image_size, seed, cache_dir))
    if kind in ("url", "kaggle"):
        os.environ.setdefault("TFHUB_CACHE_DIR", str(Path(cache_dir).resolve() / "tfhub"))
        os.environ.setdefault("KAGGLEHUB_CACHE", str(Path(cache_dir).resolve() / "kagglehub"))
        return str(hub.fetch(handle, timeout_s))
    return handle


def variable_groups(variables: list[Any]) -> list[list[Any]]:
    """Group variables by layer (their name up to the last '/'), in the backbone's order."""
    groups: dict[str, list[Any]] = {}
    for v in variables:
        groups.setdefault(v.name.rsplit("/", 1)[0], []).append(v)
    return list(groups.values())


def load_backbone(handle: str, trainable_top: int | None = None) -> Any:
    """``hub.KerasLayer`` on a resolved handle.

    Args:
        handle: a URL or SavedModel folder (see :func:`resolve`).
        trainable_top: None keeps the backbone frozen; 0 unfreezes all of it; N unfreezes
            the top N variable groups (layers), for phase-2 fine-tuning.
    """
    import tensorflow_hub as hub

    class Backbone(hub.KerasLayer):
        """A hub.KerasLayer whose trainable weights may be only its top layers."""

        def _setup_layer(self, trainable=False, **kwargs):
            groups = variable_groups(list(getattr(self._func, "trainable_variables", [])))
            top = groups if not trainable_top else groups[-trainable_top:]
            self._unfrozen = {id(v) for g in top for v in g}
            super()._setup_layer(trainable, **kwargs)

        def _add_existing_weight(self, weight, trainable=None):
            super()._add_existing_weight(weight, trainable=bool(trainable) and id(weight) in self._unfrozen)

    return Backbone(handle, trainable=trainable_top is not None, name="backbone")
