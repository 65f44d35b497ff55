"""Loading an exported model, and its pass over a split's TFRecord shards (evaluate, promote, predict).

The model is read with ``tf.saved_model.load`` and called through its serving signature: no
Python code from the model folder runs and no pickles are read. ``class_names.json`` inside the
folder is the label map; a mismatch with the model's output size is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tasks import dataset, paths
from tasks.errors import StageError
from tasks.files import read_json

LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601 weights of R, G, B


@dataclass
class LoadedModel:
    """An exported classifier: ``predict`` maps uint8 image batches to probabilities."""

    signature: Any
    class_names: list[str]
    image_size: int

    def predict(self, images: Any) -> np.ndarray:
        """Class probabilities, shape ``[batch, len(class_names)]``."""
        import tensorflow as tf

        probs = self.signature(images=tf.convert_to_tensor(images, tf.uint8))["probabilities"].numpy()
        if probs.shape[-1] != len(self.class_names):
            raise StageError(
                f"{paths.CLASS_NAMES_NAME} lists {len(self.class_names)} classes but the model outputs "
                f"{probs.shape[-1]}; export the model and its class_names.json together (dvc repro train)"
            )
        return probs


def load_model(model_dir: Path) -> LoadedModel:
    """Load the SavedModel in ``model_dir`` and its class names.

    Raises:
        StageError: when the folder is not an exported model of this pipeline.
    """
    import tensorflow as tf

    model_dir = Path(model_dir)
    if not (model_dir / "saved_model.pb").is_file():
        raise StageError(
            f"{model_dir}: not a SavedModel folder (no saved_model.pb); run the train stage "
            "(dvc repro train) or pass --model with an exported model folder"
        )
    class_names = read_json(model_dir / paths.CLASS_NAMES_NAME, "train")
    try:
        loaded = tf.saved_model.load(str(model_dir))
    except Exception as exc:  # protobuf, OpError, OSError...: whatever a damaged SavedModel raises
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise StageError(
            f"{model_dir}: cannot load this SavedModel, its files are truncated or corrupt ({type(exc).__name__}: "
            f"{first}); export it again (dvc repro train) or restore it (dvc checkout {model_dir})"
        ) from None
    signature = loaded.signatures.get("serving_default")
    inputs = set(signature.structured_input_signature[1]) if signature is not None else set()
    outputs = set(signature.structured_outputs) if signature is not None else set()
    if inputs != {"images"} or "probabilities" not in outputs or not hasattr(loaded, "image_size"):
        raise StageError(
            f"{model_dir}: not a model exported by this pipeline: its serving signature takes {sorted(inputs)} and "
            f"returns {sorted(outputs)}, where ours takes ['images'] (uint8) and returns ['probabilities']; pass "
            "--model with an export of the train stage (models/model or models/production/model)"
        )
    model = LoadedModel(signature, class_names, int(loaded.image_size.numpy()))
    model._loaded = loaded  # type: ignore[attr-defined]  # the signature needs its object alive
    return model


@dataclass(frozen=True)
class SplitPredictions:
    """A model's pass over one split: probabilities and what the slices and behaviour checks need."""

    probs: np.ndarray
    y_true: np.ndarray
    names: list[str]
    brightness: np.ndarray  # mean luma of each (resized) image, 0-255
    jpeg_kb: np.ndarray  # encoded size of each original image
    samples: np.ndarray  # the first images, for the sample grid
    flipped: np.ndarray | None = None  # probabilities on mirrored images
    shifted: tuple[np.ndarray, np.ndarray] | None = None  # on images brighter / darker by brightness_delta


def _concat(parts: list[np.ndarray]) -> np.ndarray | None:
    return np.concatenate(parts) if parts else None


def _brighter(images: np.ndarray, delta: float) -> np.ndarray:
    """``images`` with ``delta`` (a share of 255, negative for darker) added to every pixel."""
    return np.clip(images + delta * 255.0, 0, 255).astype(np.uint8)


def predict_split(
    model: LoadedModel, files: list[str], batch_size: int, brightness_delta: float | None = None, keep_images: int = 0
) -> SplitPredictions:
    """Predict every image of ``files``; with ``brightness_delta`` also on flipped and shifted copies."""
    probs, y_true, names, luma, jpeg_kb, samples, flipped, brighter, darker = ([] for _ in range(9))
    for batch, y, path, size in dataset.make_dataset(files, model.image_size, batch_size, with_meta=True):
        images = batch.numpy()
        probs.append(model.predict(images))
        y_true.append(y.numpy())
        names.extend(p.decode() for p in path.numpy())
        luma.append(images.astype(np.float32).mean(axis=(1, 2)) @ LUMA)
        jpeg_kb.append(size.numpy() / 1024)
        if sum(len(s) for s in samples) < keep_images:
            samples.append(images[:keep_images])
        if brightness_delta is not None:
            flipped.append(model.predict(images[:, :, ::-1]))
            brighter.append(model.predict(_brighter(images, brightness_delta)))
            darker.append(model.predict(_brighter(images, -brightness_delta)))
    return SplitPredictions(
        probs=_concat(probs),
        y_true=_concat(y_true),
        names=names,
        brightness=_concat(luma),
        jpeg_kb=_concat(jpeg_kb),
        samples=_concat(samples)[:keep_images] if keep_images else np.zeros((0,)),
        flipped=_concat(flipped),
        shifted=(_concat(brighter), _concat(darker)) if brightness_delta is not None else None,
    )
