"""Section ``preprocess``: how the TFRecord shards are laid out."""

from __future__ import annotations

from dataclasses import dataclass

from tasks.params.fields import number


@dataclass(frozen=True)
class PreprocessParams:
    """Section ``preprocess``: how the TFRecord shards are laid out."""

    shards_per_split: int = number(2, lo=1, hi=1024)
