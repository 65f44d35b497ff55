"""Backbones: every ``model.handle`` is loaded through ``hub.KerasLayer``.

A handle is one of:
  * a TF Hub or Kaggle Models URL (the real default: ResNet50 v2 feature vector), downloaded by
    tensorflow_hub's own resolver with a timeout, retries and a checked cache (``tasks.hub``);
  * a local SavedModel folder;
  * a built-in name, for offline runs: ``small_cnn`` or ``resnet50v2`` (random weights, for cost
    measurements). A built-in is built with ``tf_keras``, exported once as a SavedModel under
    ``data/backbones/`` and then loaded by the same ``hub.KerasLayer`` path as a downloaded one.
    ``small_cnn`` is the demo's miniature of transfer learning: before its export it is pretrained
    (:func:`pretrain`) on synthetic faces drawn from a stream of their own, disjoint from any
    dataset the ``data`` section makes, so its frozen features already tell the classes apart, as
    ImageNet features do for the real ResNet. That is what makes the label audit work on the demo.

Backbones take float images in [0, 1] (the TF Hub image convention) and return a feature vector.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np

from tasks import hub
from tasks.errors import logger
from tasks.params.model import handle_kind

log = logger("backbones")

PRETRAINED = ("small_cnn",)  # the built-ins that are pretrained before export


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


PRETRAIN_IMAGES = 2000  # small_cnn's pretraining set: half Male, half Female
PRETRAIN_EPOCHS = 8
PRETRAIN_STREAM = 0x70726574  # mixed into the seed: a draw that no ``data.synthetic.seed`` gives


def pretrain(backbone: Any, image_size: int, seed: int) -> None:
    """Train ``backbone`` with a throw-away softmax head on ``PRETRAIN_IMAGES`` synthetic faces, in place.

    The faces come from ``synthetic.generate`` seeded with ``[seed, PRETRAIN_STREAM]``: a random stream
    that the data section's integer seeds never give, so no image of the dataset is among them. Op
    determinism and the seeds make the weights, and so the export, the same bytes every time.
    """
    import tensorflow as tf
    import tf_keras

    from tasks import dataset, synthetic

    tf.config.experimental.enable_op_determinism()
    faces = list(synthetic.generate({"pretrain": PRETRAIN_IMAGES}, 0.5, [seed, PRETRAIN_STREAM]))
    images = tf.stack([dataset.decode_and_resize(tf.constant(data), image_size) for _, _, data in faces])
    labels = np.array([label == "Male" for _, label, _ in faces], dtype="int32")
    model = tf_keras.Model(backbone.input, tf_keras.layers.Dense(2, activation="softmax")(backbone.output))
    model.compile(tf_keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    progress = tf_keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: log.info(
            "pretraining: epoch %d/%d, loss %.4f", epoch + 1, PRETRAIN_EPOCHS, logs["loss"]
        )
    )
    log.info("pretraining the built-in backbone on %d synthetic faces, %d epochs", PRETRAIN_IMAGES, PRETRAIN_EPOCHS)
    model.fit(
        tf.cast(images, tf.float32) / 255.0,
        labels,
        batch_size=32,
        epochs=PRETRAIN_EPOCHS,
        verbose=0,
        callbacks=[progress],
    )


def _export(name: str, image_size: int, seed: int, target: str) -> None:
    import tensorflow as tf

    backbone = _build_builtin(name, image_size, seed)
    if name in PRETRAINED:
        pretrain(backbone, image_size, seed)
    tmp = Path(target).with_name(f"{Path(target).name}.tmp")  # one exporter of it at a time (export_builtin's lock)
    shutil.rmtree(tmp, ignore_errors=True)  # left by a killed export
    tf.saved_model.save(backbone, str(tmp))
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

    target = Path(cache_dir) / f"{name}-{image_size}px-seed{seed}{'-pretrained' if name in PRETRAINED else ''}"
    if not (target / "saved_model.pb").is_file():
        # a second process wanting the same export waits, then finds it; other backbones export meanwhile
        with hub.one_at_a_time(target.with_name(f".{target.name}.lock")):
            if not (target / "saved_model.pb").is_file():
                log.info(
                    "exporting built-in %s at %d px, seed %d, to %s (once per size and seed)",
                    name,
                    image_size,
                    seed,
                    target,
                )
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

    # hub.KerasLayer first tries Keras 2's `keras.saving.legacy.saved_model`, which makes Python import all
    # of Keras 3 (about 2 s of CPU per process) only to fail, then falls back to TensorFlow's own loader.
    # Keras 3 has no such module, so marking it absent skips that import and changes nothing else.
    sys.modules.setdefault("keras.saving.legacy.saved_model", None)

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
