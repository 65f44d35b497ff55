"""Data drift: how far a new dataset has moved from the one the production model was trained on.

``profile`` summarises a validated dataset (the kept images of every split): each class's share,
and for each measured feature (image width and height, mean brightness, JPEG size) the decile cut
points and the share of images between them. The profile is part of validate's report, and
the registry's local copy keeps the production model's (``models/production/validation.json``, ``tasks.registry``).

``compare`` puts a new dataset into the reference's bins and computes the population stability
index per feature, PSI = sum((new - ref) * ln(new / ref)) over the bins (shares floored at
``FLOOR``). Rule of thumb: below 0.1 no real change, 0.1-0.25 a moderate one, above 0.25 a shift
worth a look before training on it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tasks.reports.validation import DataProfile, DriftRow, FeatureProfile

FEATURES = {  # feature -> unit, measured per image by validate (manifest columns)
    "width": "px",
    "height": "px",
    "brightness": "mean luma 0-255",
    "jpeg_kb": "KiB",
}
QUANTILES = np.linspace(0.1, 0.9, 9)  # decile cut points: 10 bins (fewer when values repeat)
FLOOR = 1e-4  # an empty bin counts as this share, so PSI stays finite


def feature_values(kept: Any, feature: str) -> np.ndarray:
    """One feature of the kept images (a manifest DataFrame)."""
    if feature == "jpeg_kb":
        return kept["bytes"].to_numpy(dtype=float) / 1024
    return kept[feature].to_numpy(dtype=float)


def _shares(values: np.ndarray, cuts: list[float]) -> list[float]:
    bins = np.searchsorted(np.asarray(cuts, dtype=float), values, side="left")
    counts = np.bincount(bins, minlength=len(cuts) + 1)
    return [round(float(c) / max(1, len(values)), 6) for c in counts]


def _class_shares(kept: Any, class_names: list[str]) -> dict[str, float]:
    counts = kept["label"].value_counts()
    return {c: round(float(counts.get(c, 0)) / max(1, len(kept)), 6) for c in class_names}


def profile(kept: Any, class_names: list[str]) -> DataProfile:
    """The reference summary of a dataset (deterministic: rounded, in a fixed order)."""
    features = {}
    for feature in FEATURES:
        values = feature_values(kept, feature)
        cuts = sorted({round(float(q), 3) for q in np.quantile(values, QUANTILES)}) if len(values) else []
        features[feature] = FeatureProfile(cuts=cuts, shares=_shares(values, cuts))
    return DataProfile(images=int(len(kept)), class_shares=_class_shares(kept, class_names), features=features)


def psi(reference: list[float], current: list[float]) -> float:
    """The population stability index of ``current`` shares against ``reference`` shares."""
    ref = np.maximum(np.asarray(reference, dtype=float), FLOOR)
    cur = np.maximum(np.asarray(current, dtype=float), FLOOR)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def compare(kept: Any, class_names: list[str], reference: DataProfile) -> list[DriftRow]:
    """One row per compared quantity: ``feature``, ``psi`` and the shares it came from."""
    names = sorted(set(class_names) | set(reference.class_shares))
    current = _class_shares(kept, names)
    before = [reference.class_shares.get(c, 0.0) for c in names]
    now = [current[c] for c in names]
    rows = [DriftRow(feature="class shares", psi=round(psi(before, now), 4), reference=before, current=now, bins=names)]
    for feature, ref in reference.features.items():
        shares = _shares(feature_values(kept, feature), ref.cuts)
        rows.append(
            DriftRow(
                feature=feature,
                psi=round(psi(ref.shares, shares), 4),
                reference=ref.shares,
                current=shares,
                bins=[f"<= {c:g}" for c in ref.cuts] + [f"> {ref.cuts[-1]:g}" if ref.cuts else "all"],
            )
        )
    return rows
