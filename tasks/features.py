"""Stage ``features``: every image through the frozen backbone once; train and the label audit read the result.

Phase 1 of training (the head on frozen features) and the label audit (K-fold cross-validation of
a light head, ``tasks/audit.py``) need the same numbers: the backbone's feature vector of each
image. They are computed here, once per image, with BatchNorm in inference mode (in reduced
precision when ``train.mixed_precision`` asks, by the rewrite training uses: ``tasks/precision.py``),
and written per split as ``<Split>.npy`` (one row per image) beside ``<Split>.csv`` (its path inside
the dataset and its label index, in the same order). Same shards, backbone, params and code, same bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tasks import backbones, dataset, paths, precision
from tasks.contract import Stage, StageResult
from tasks.errors import StageError, logger
from tasks.feature_files import SplitFeatures, save
from tasks.files import atomic_dir

log = logger("features")
BATCH = 64  # images per backbone call; the numbers do not depend on it (inference mode)


@dataclass(frozen=True)
class FeaturesResult(StageResult):
    """What the stage wrote: rows per split and the feature size."""

    rows: dict[str, int]
    size: int


def build_extractor(backbone: Any, image_size: int) -> Any:
    """uint8 images -> rescaled to [0, 1] -> backbone features (BatchNorm in inference mode).

    Raises:
        StageError: in one line, when the backbone takes images of one fixed size and it is not ``image_size``.
    """
    import tf_keras

    images = tf_keras.Input((image_size, image_size, 3), dtype="uint8", name="images")
    x = tf_keras.layers.Rescaling(1 / 255.0)(images)
    try:
        return tf_keras.Model(images, backbone(x, training=False), name="extractor")
    except (TypeError, ValueError) as exc:  # TensorFlow lists the input shapes the SavedModel was traced for
        fixed = re.search(r"TensorSpec\(shape=\(None, (\d+), (\d+), 3\)", str(exc))  # an expected input
        if fixed is None or "matching concrete function" not in str(exc):
            raise
        raise StageError(
            f"the backbone (model.handle) takes {fixed[2]}x{fixed[1]} images, not {image_size}x{image_size}; "
            f"set model.image_size: {fixed[1]}"
        ) from None


def extract(extractor: Any, ds: Any) -> SplitFeatures:
    """Run every image of ``ds`` (made ``with_meta``) through the backbone once."""
    feats, labels, names = [], [], []
    for images, y, path, _ in ds:
        feats.append(extractor(images, training=False).numpy().astype(np.float32))
        labels.append(y.numpy())
        names.extend(p.decode() for p in path.numpy())
    return SplitFeatures(np.concatenate(feats), np.concatenate(labels).astype(np.int64), names)


def features(
    processed: Path,
    features_dir: Path,
    backbone_cache: Path,
    handle: str,
    image_size: int,
    timeout_s: float,
    seed: int,
    mixed_precision: bool,
) -> FeaturesResult:
    """Write every split's backbone features into ``features_dir`` (replaced whole).

    Args:
        processed: the preprocess output (shards).
        features_dir: the output folder.
        backbone_cache: where built-in backbones are exported.
        handle, image_size, timeout_s: ``model.handle``, ``model.image_size``, ``model.download_timeout_s``
            (only these: a change to the head's params does not recompute the features).
        seed: ``train.seed``, which a built-in backbone is initialised (and pretrained) with.
        mixed_precision: ``train.mixed_precision``: the backbone's pass in float16 on a GPU, bfloat16 on a
            CPU that has it (the vectors are stored as float32 either way).
    """
    import tensorflow as tf

    resolved = backbones.resolve(handle, image_size, seed, backbone_cache, timeout_s)
    tf.config.experimental.enable_op_determinism()  # the same vectors on a rerun
    compute, why = precision.choose(mixed_precision)
    log.info("backbone %s (%s); precision %s (%s)", handle, resolved, compute, why)
    extractor = build_extractor(backbones.load_backbone(resolved), image_size)
    rows = {}
    with atomic_dir(features_dir) as tmp, precision.rewrite(compute):
        for split in paths.SPLITS:
            ds = dataset.make_dataset(dataset.shard_files(processed, split), image_size, BATCH, with_meta=True)
            split_features = extract(extractor, ds)
            save(split_features, tmp, split)
            rows[split] = len(split_features.paths)
            log.info("%s: %d feature vectors of size %d", split, rows[split], split_features.x.shape[1])
    return FeaturesResult(rows=rows, size=int(split_features.x.shape[1]))


STAGE = Stage(
    "features",
    features,
    deps={"processed": paths.PROCESSED_DIR},
    outs={"features_dir": paths.FEATURES_DIR},
    work={"backbone_cache": paths.BACKBONES_DIR},
    params={
        "handle": "model.handle",
        "image_size": "model.image_size",
        "timeout_s": "model.download_timeout_s",
        "seed": "train.seed",
        "mixed_precision": "train.mixed_precision",
    },
)
