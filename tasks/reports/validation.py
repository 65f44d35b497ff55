"""The validate stage's reports: ``data/validation/report.json`` (the suite, near-duplicates, the data's
profile) and ``drift.json``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Expectation:
    """One Great Expectations result: what was checked (and why), and the first offenders."""

    table: str  # files, groups or drift
    type: str
    column: str | None
    intent: str
    success: bool
    unexpected_count: int
    found: list[str]
    offenders: list[str]


@dataclass(frozen=True)
class Dropped:
    """An undecodable file left out (up to ``validate.max_dropped``)."""

    path: str
    error: str


@dataclass(frozen=True)
class NearDuplicate:
    """Two files in different splits that are the same picture after a small change."""

    a: str
    b: str
    distance: int
    correlation: float
    orientation: str = "as is"  # how b is turned relative to a (near_duplicates.ORIENTATIONS)
    check: str = "colour"  # the pixel check that matched (near_duplicates.THRESHOLDS)


@dataclass(frozen=True)
class NearDuplicates:
    pairs: int
    first: list[NearDuplicate]


@dataclass(frozen=True)
class FeatureProfile:
    """Decile cut points of one measured feature and the share of images between them."""

    cuts: list[float]
    shares: list[float]


@dataclass(frozen=True)
class DataProfile:
    """A dataset's summary: the reference of later drift checks."""

    images: int
    class_shares: dict[str, float]
    features: dict[str, FeatureProfile]


@dataclass(frozen=True)
class ValidationReport:
    """``data/validation/report.json``: what validate found (preprocess takes the label map from it)."""

    success: bool
    class_names: list[str]
    images: int
    kept: int
    skipped_junk_files: int
    dropped: list[Dropped]
    counts: dict[str, int]  # "<split>/<class>" -> images
    expectations: list[Expectation]
    failed: list[Expectation]
    data_docs: str  # the Data Docs' index.html, relative to the report's folder
    profile: DataProfile
    near_duplicates: NearDuplicates
    version: int = 1


@dataclass(frozen=True)
class DriftRow:
    """One compared quantity: its population stability index and the shares it came from."""

    feature: str
    psi: float
    reference: list[float]
    current: list[float]
    bins: list[str]


@dataclass(frozen=True)
class Drift:
    """``data/validation/drift.json``: the data against the production model's training data."""

    scope: str  # in words: against what, or why there is no reference
    max_psi: float
    passed: bool
    rows: list[DriftRow]
    version: int = 1
