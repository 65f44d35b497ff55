"""The train stage's record inside the exported model, ``models/model/training.json``: what it was trained with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, kw_only=True)
class TrainingInfo:
    """``training.json`` inside the exported model: what it was trained with (evaluate reads it)."""

    handle: str
    image_size: int
    model: dict[str, Any]  # the model params section, as trained
    train: dict[str, Any]  # the train params section, as trained
    train_images: int
    validation_images: int
    final_epoch: dict[str, Any]  # the last row of models/history.json
    # files.tree_hash of the backbone's SavedModel folder (a URL's download or a local folder); None for a
    # built-in, which is exported on each machine from its seed and is not byte-stable
    backbone_sha256: str | None = None
    version: int = 1
