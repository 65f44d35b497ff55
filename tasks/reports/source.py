"""The download stage's report, ``data/raw/SOURCE.json``: where the data came from."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class Source:
    """``data/raw/SOURCE.json``: where the data came from (promote and the model card read it)."""

    source: str  # synthetic, local or kaggle
    archive: str
    sha256: str
    bytes: int
    images: int
    skipped_junk_files: int
    counts: dict[str, dict[str, int]]  # split -> class -> images
    slug: str | None = None  # kaggle: owner/dataset
    dataset_version: int | None = None  # kaggle: the dataset's version number
    last_updated: str | None = None  # kaggle
    path: str | None = None  # local: the zip or folder it was copied from
    seed: int | None = None  # synthetic
    note: str | None = None
    version: int = 1
