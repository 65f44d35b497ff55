"""The gate stage's report: the verdict (``reports/gate.json``), with what makes two models comparable."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetIdentity:
    source: str
    slug: str | None
    dataset_version: int | None
    sha256: str


@dataclass(frozen=True)
class ConfigIdentity:
    handle: str | None
    image_size: int | None
    class_names: list[str]
    backbone_sha256: str | None = None  # the same URL may serve other weights later (see TrainingInfo)


@dataclass(frozen=True)
class Identity:
    """What makes two models comparable: the dataset they were trained on and the configuration that matters."""

    dataset: DatasetIdentity
    config: ConfigIdentity


@dataclass(frozen=True)
class Check:
    """One check of the gate: ``value op threshold``; a comparison with the production model also has its difference."""

    name: str
    value: float
    op: str
    threshold: float
    passed: bool
    difference: float | None = None
    interval: list[float] | None = None
    gating: bool = True  # False: shown, but the verdict does not depend on it


@dataclass(frozen=True)
class Baseline:
    """The production model the candidate was compared with."""

    model: str  # its registry name and version, model@vX.Y.Z
    fingerprint: str
    promoted_at: str | None
    trained_on: Identity | None
    gating: bool
    reason: str | None = None  # why it is not comparable, in words
    accuracy: float | None = None  # on the same Test images
    commit: str | None = None  # the commit whose dvc.lock names it


@dataclass(frozen=True)
class Verdict:
    """``reports/gate.json``: the quality gate's verdict, each check, and the baseline."""

    passed: bool
    checks: list[Check]
    baseline: Baseline | None = None
    version: int = 1

    def failed(self) -> list[Check]:
        """The failed checks that decide the verdict."""
        return [c for c in self.checks if not c.passed and c.gating]
