"""Section ``validate``: the bounds of the Great Expectations suite (also read by ``flows.predict``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from tasks.errors import ParamsError
from tasks.params.fields import number


@dataclass(frozen=True)
class ValidateParams:
    """Section ``validate``: the bounds of the Great Expectations suite."""

    class_names: list[str] = field(default_factory=lambda: ["Female", "Male"])
    min_width: int = number(32, lo=1)
    max_width: int = number(4096, lo=1)
    min_height: int = number(32, lo=1)
    max_height: int = number(4096, lo=1)
    max_pixels: int = number(50_000_000, lo=1)  # larger images are refused before decoding
    max_file_mb: int = number(50, lo=1)  # a larger image file is not read (flows.predict)
    allowed_modes: list[str] = field(default_factory=lambda: ["RGB"])
    allowed_formats: list[str] = field(default_factory=lambda: ["JPEG"])
    min_per_class: int = number(10, lo=0)  # per split and class
    min_class_share: float = number(0.2, lo=0.0, hi=0.5)  # each class's share of each split
    max_dropped: int = number(0, lo=0)  # undecodable files dropped and reported, not fatal, up to this
    workers: int = number(0, lo=0)  # 0: one per core
    max_drift_psi: float = number(0.25, lo=0.0)  # per feature, against the production model's training data
    max_duplicates: int = number(0, lo=0)  # files with an identical copy in the same split
    max_near_duplicates: int = number(0, lo=0)  # files with a near-duplicate in another split

    def check(self, where: str) -> None:
        if len(set(self.class_names)) != len(self.class_names) or len(self.class_names) < 2:
            raise ParamsError(f"{where}.class_names: need two or more distinct names")
        for lo, hi in (("min_width", "max_width"), ("min_height", "max_height")):
            if getattr(self, lo) > getattr(self, hi):
                raise ParamsError(f"{where}.{lo}: greater than {where}.{hi}")
