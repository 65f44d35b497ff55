"""The one input function: TFRecord shards -> decoded, resized uint8 image batches.

Train, evaluate, predict and the benchmarks all use it, so that images are prepared the same
way everywhere. Pixel rescaling is not here: it lives inside the model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tasks import paths


def encode_example(data: bytes, label: int, path: str) -> bytes:
    """One TFRecord record: the image's original bytes, its label index and its path (the schema)."""
    import tensorflow as tf

    feature = {
        "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[data])),
        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
        "path": tf.train.Feature(bytes_list=tf.train.BytesList(value=[path.encode()])),
    }
    # deterministic=True: the features map is otherwise serialized in an order that varies between
    # processes, so the same images would give different shard bytes and rerun training for nothing
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString(deterministic=True)


def shard_files(processed: Path, split: str) -> list[str]:
    """The TFRecord shards of ``split``, sorted."""
    from tasks.errors import StageError

    files = sorted(str(p) for p in Path(processed).glob(paths.SHARD_GLOB.format(split=split)))
    if not files:
        raise StageError(f"{processed}: no {split} shards; run the preprocess stage first (dvc repro preprocess)")
    return files


def decode_and_resize(image_bytes: Any, image_size: int) -> Any:
    """JPEG/PNG bytes -> uint8 [size, size, 3] (greyscale and RGBA become RGB)."""
    import tensorflow as tf

    image = tf.io.decode_image(image_bytes, channels=3, expand_animations=False)
    return resize(image, image_size)


def resize(images: Any, image_size: int) -> Any:
    """Resize uint8 images (one or a batch) to ``image_size`` square, as uint8; a no-op at that size."""
    import tensorflow as tf

    size = (image_size, image_size)
    shape = tf.shape(images)
    shrinking = tf.logical_or(shape[-3] > image_size, shape[-2] > image_size)
    # Antialiasing matters only when shrinking, and costs about 3x the time of the whole input step.
    resized = tf.cond(
        shrinking,
        lambda: tf.image.resize(images, size, method="bilinear", antialias=True),
        lambda: tf.image.resize(images, size, method="bilinear"),
    )
    return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)


def augment(images: Any, flip: bool, brightness: float, seed: int) -> Any:
    """Random flips and brightness on a uint8 batch (training only)."""
    import tensorflow as tf

    x = tf.cast(images, tf.float32)
    if flip:
        x = tf.where(tf.random.uniform([tf.shape(x)[0], 1, 1, 1], seed=seed) < 0.5, tf.reverse(x, axis=[2]), x)
    if brightness:
        x = x + tf.random.uniform([tf.shape(x)[0], 1, 1, 1], -brightness * 255, brightness * 255, seed=seed + 1)
    return tf.cast(tf.clip_by_value(x, 0, 255), tf.uint8)


def _records(files: list[str], shuffle_seed: int | None) -> Any:
    """The serialized examples of ``files``, in order, or shuffled (files, then records) with ``shuffle_seed``."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices(files)
    if shuffle_seed is not None:
        ds = ds.shuffle(len(files), seed=shuffle_seed)
    ds = ds.interleave(
        tf.data.TFRecordDataset,
        cycle_length=min(len(files), 4),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    return ds.shuffle(4096, seed=shuffle_seed) if shuffle_seed is not None else ds


def _parser(image_size: int, with_meta: bool) -> Any:
    """A function from one serialized example to ``(image, label)``, or with ``(path, encoded size)`` too."""
    import tensorflow as tf

    spec = {
        "image": tf.io.FixedLenFeature([], tf.string),
        "label": tf.io.FixedLenFeature([], tf.int64),
        "path": tf.io.FixedLenFeature([], tf.string),
    }

    def parse(record: Any) -> tuple[Any, ...]:
        ex = tf.io.parse_single_example(record, spec)
        image = decode_and_resize(ex["image"], image_size)
        if with_meta:
            return image, ex["label"], ex["path"], tf.strings.length(ex["image"])
        return image, ex["label"]

    return parse


def make_dataset(
    files: list[str],
    image_size: int,
    batch_size: int,
    *,
    shuffle_seed: int | None = None,
    augmentation: dict[str, Any] | None = None,
    with_meta: bool = False,
    drop_remainder: bool = False,
    exclude: frozenset[str] = frozenset(),
) -> Any:
    """A batched ``tf.data.Dataset`` of ``(uint8 images, labels)`` (and metadata when asked).

    Args:
        files: TFRecord shards.
        image_size: square side in pixels.
        batch_size: images per batch (the last batch may be smaller).
        shuffle_seed: shuffle files and records with this seed (training); None keeps the order.
        augmentation: ``{"flip": bool, "brightness": float, "seed": int}`` for training, or None.
        with_meta: also yield each image's path inside the dataset and its encoded size in bytes.
        drop_remainder: drop the last partial batch (needed by MirroredStrategy with Hub layers).
        exclude: dataset paths of images to leave out (``train.exclude_label_issues``).
    """
    import tensorflow as tf

    ds = _records(files, shuffle_seed)
    if exclude:
        left_out = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(sorted(exclude), [True] * len(exclude)), default_value=False
        )
        path_spec = {"path": tf.io.FixedLenFeature([], tf.string)}
        ds = ds.filter(
            lambda record: tf.logical_not(left_out.lookup(tf.io.parse_single_example(record, path_spec)["path"]))
        )
    ds = ds.map(_parser(image_size, with_meta), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.batch(batch_size, drop_remainder)
    if augmentation:
        aug = augmentation
        ds = ds.map(
            lambda x, *rest: (augment(x, aug["flip"], aug["brightness"], aug["seed"]), *rest),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    return ds.prefetch(tf.data.AUTOTUNE)
