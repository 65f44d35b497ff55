"""Loading an exported model for evaluate and predict.

The model is read with ``tf.saved_model.load`` and called through its serving signature: no
Python code from the model folder runs and no pickles are read. ``class_names.json`` inside the
folder is the label map; a mismatch with the model's output size is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tasks import paths
from tasks.files import StageError, read_json


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
            "--model with an export of the train stage (models/model or models/blessed/model)"
        )
    model = LoadedModel(signature, class_names, int(loaded.image_size.numpy()))
    model._loaded = loaded  # type: ignore[attr-defined]  # the signature needs its object alive
    return model
