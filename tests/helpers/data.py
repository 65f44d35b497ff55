"""Tiny datasets made by the project's own generator, and running a stage through its contract."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

from PIL import Image

from tasks import paths, synthetic
from tasks.params.config import Params
from tasks.params.data import DataParams, SyntheticParams
from tasks.stages import BY_NAME

TINY = {"Train": 12, "Validation": 6, "Test": 6}


def run_stage(name: str, root: Path, **sections):
    """Run stage ``name`` through its contract on the layout under ``root``, with these params sections."""
    return BY_NAME[name].run(root, Params(**sections))


def digest(root: Path, rel: str) -> dict[str, str]:
    """sha256 of each file of the output ``rel`` (a file or a folder) under ``root``, keyed by path."""
    path = root / rel
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def contents(root: Path, rel: str) -> dict[str, str]:
    """:func:`digest` keyed by the path inside ``rel``: two copies of a folder in other places compare equal."""
    return {k.removeprefix(f"{rel}/"): v for k, v in digest(root, rel).items()}


def write_folder(root: Path, counts: dict[str, int] = TINY, seed: int = 7) -> Path:
    """A dataset folder in the Kaggle layout (``root/Dataset/<Split>/<Class>/*.jpg``)."""
    seq: dict[tuple[str, str], int] = {}
    for split, label, data in synthetic.generate(counts, 0.42, seed):
        seq[split, label] = seq.get((split, label), 0) + 1
        path = root / paths.DATASET_TOP / split / label / f"{seq[split, label]:06d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def jpeg(img: Image.Image, fmt: str = "JPEG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


def tiny_synthetic(
    train: int = 40, validation: int = 16, test: int = 16, seed: int = 3, label_noise: float = 0.0
) -> DataParams:
    return DataParams(
        source="synthetic",
        synthetic=SyntheticParams(train=train, validation=validation, test=test, seed=seed, label_noise=label_noise),
    )


def overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)
