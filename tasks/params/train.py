"""Section ``train``: phase 1 (frozen backbone, cached features) and phase 2 (fine-tuning)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tasks.params.fields import MAX_SEED, number


@dataclass(frozen=True)
class TrainParams:
    """Section ``train``: phase 1 (frozen backbone, cached features) and phase 2 (fine-tuning)."""

    batch_size: int = number(32, lo=1, hi=4096)
    epochs: int = number(3, lo=1)  # phase 1: the head on features computed once
    learning_rate: float = number(0.01, lo=1e-7, hi=1.0)
    fine_tune_epochs: int = number(4, lo=0)  # phase 2, off when 0
    fine_tune_layers: int = number(0, lo=0)  # the top N variable groups of the backbone; 0: all
    fine_tune_learning_rate: float = number(1e-3, lo=1e-8, hi=1.0)
    augment_flip: bool = True  # phase 2 only
    augment_brightness: float = number(0.1, lo=0.0, hi=1.0)
    exclude_label_issues: bool = False  # leave out the Train images that the audit flagged (reports/label_issues.csv)
    # graph rewrite that reaches the backbone: float16 on a GPU, bfloat16 on a CPU that has it, else float32
    mixed_precision: bool = False
    distribution: Literal["auto", "none", "mirrored", "multi_worker"] = "auto"  # batch_size is per replica
    seed: int = number(42, lo=0, hi=MAX_SEED)
