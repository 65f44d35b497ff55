"""Section ``evaluate``: the Test pass and its quality measures."""

from __future__ import annotations

from dataclasses import dataclass

from tasks.params.fields import MAX_SEED, number


@dataclass(frozen=True)
class EvaluateParams:
    """Section ``evaluate``: the Test pass and its quality measures."""

    batch_size: int = number(64, lo=1, hi=4096)
    positive_class: str = "Male"  # ROC AUC, the ROC curve and the reliability diagram are for this class
    sample_images: int = number(16, lo=0, hi=64)  # in the sample-prediction grid
    bootstrap_samples: int = number(1000, lo=100, hi=100000)  # resamples for the 95% intervals
    calibration_bins: int = number(10, lo=2, hi=100)  # equal-width confidence bins for ECE
    temperature_scaling: bool = True  # fit a temperature on Validation and report its effect on Test
    slice_bins: int = number(4, lo=1, hi=20)  # quantile bins for the brightness and JPEG-size slices
    brightness_delta: float = number(0.05, lo=0.0, hi=0.5)  # behaviour check: +/- this share of 255
    mixed_precision: bool = False  # run the model as train.mixed_precision does (tasks/precision.py)
    seed: int = number(42, lo=0, hi=MAX_SEED)  # bootstrap resampling
