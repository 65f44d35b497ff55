"""What the near-duplicate check costs at the real dataset's size (200,000 images), and what it catches.

What it catches: each of ``_transforms()`` applied to synthetic faces (200; 20 with --small), each
copy saved as JPEG (quality 90 unless the transform sets it); a copy is caught when the stage's two
tests both pass for it and its original (``near_duplicates.candidates``: a hash distance <=
``MAX_DISTANCE`` in either grey view; then ``near_duplicates.confirm``: one of the pixel checks in the
best orientation). What it must not catch: 1,000 other faces against 1,000 more (100 with --small),
different pictures of the same layout, as candidates and as confirmed pairs.

What it costs, two parts, measured separately and added up:
  * hashing: ``near_duplicates.phash`` per decoded 178x218 synthetic face (validate's workers do it
    while they decode each image anyway), extrapolated to 200,000 images on this machine's cores;
  * the pair search: ``near_duplicates.candidates`` between the Kaggle split sizes (160,000 Train,
    22,598 Validation, 20,001 Test) on random hashes (256 bits per view, two views). It is a brute
    force, so its cost does not depend on the pictures; the pixel checks of each candidate (two
    decodes, ~3 ms) come on top, once per candidate pair, which is a handful on clean data.

    python -m benchmarks.near_duplicates [--small]
"""

from __future__ import annotations

import argparse
import io
import os
import time

import numpy as np

from benchmarks.common import save
from tasks import near_duplicates, synthetic

KAGGLE_SPLITS = {"Train": 160_000, "Validation": 22_598, "Test": 20_001}


def _crop(img, left: float, top: float, right: float, bottom: float):
    """Cut the given shares off each side, then resize back (a re-cropped copy of an aligned face)."""
    w, h = img.size
    box = (round(left * w), round(top * h), w - round(right * w), h - round(bottom * h))
    return img.crop(box).resize(img.size)


def _shift(img, dx: int, dy: int):
    """Move the picture right and down, repeating the edge into the gap."""
    from PIL import Image

    a = np.asarray(img)
    return Image.fromarray(np.pad(a, ((dy, 0), (dx, 0), (0, 0)), mode="edge")[: a.shape[0], : a.shape[1]])


def _hue(img, degrees: int):
    from PIL import Image

    h, s, v = img.convert("HSV").split()
    return Image.merge("HSV", (h.point(lambda x: (x + degrees * 256 // 360) % 256), s, v)).convert("RGB")


def _transforms() -> dict:
    """The small changes of issue 21, by name: each takes and returns a PIL RGB image (and a JPEG quality)."""
    from PIL import Image, ImageEnhance, ImageOps

    return {
        "mirror": (ImageOps.mirror, 90),
        "upside down": (ImageOps.flip, 90),
        "mirror, JPEG q30": (ImageOps.mirror, 30),
        "crop 5% per side": (lambda i: _crop(i, 0.05, 0.05, 0.05, 0.05), 90),
        "crop 10% per side": (lambda i: _crop(i, 0.1, 0.1, 0.1, 0.1), 90),
        "crop 10% on one side": (lambda i: _crop(i, 0.1, 0, 0, 0), 90),
        "shift 5 px": (lambda i: _shift(i, 5, 5), 90),
        "rotate 2°": (lambda i: i.rotate(2, Image.BILINEAR), 90),
        "rotate 5°": (lambda i: i.rotate(5, Image.BILINEAR), 90),
        "rotate 10°": (lambda i: i.rotate(10, Image.BILINEAR), 90),
        "greyscale (RGB)": (lambda i: i.convert("L").convert("RGB"), 90),
        "red-blue swap": (lambda i: Image.merge("RGB", i.split()[::-1]), 90),
        "hue +40°": (lambda i: _hue(i, 40), 90),
        "brightness +20%": (lambda i: ImageEnhance.Brightness(i).enhance(1.2), 90),
        "contrast -30%": (lambda i: ImageEnhance.Contrast(i).enhance(0.7), 90),
        "JPEG q10": (lambda i: i, 10),
    }


def _faces(count: int, seed: int) -> list:
    from PIL import Image

    out = []
    for _, _, data in synthetic.generate({"Train": count}, 0.5, seed):
        with Image.open(io.BytesIO(data)) as img:
            out.append(img.convert("RGB"))
    return out


def _matches(a, b) -> bool:
    """Whether two PIL images are a near-duplicate pair by the stage's two tests."""
    candidate = bool(near_duplicates.candidates([near_duplicates.phash(a)], [near_duplicates.phash(b)]))
    return candidate and near_duplicates.confirm(near_duplicates.views(a), near_duplicates.views(b)) is not None


def caught(images: int) -> dict[str, float]:
    """The share of ``images`` faces whose transformed copy the check finds, by transform."""
    from PIL import Image

    originals, shares = _faces(images, 21), {}
    for name, (change, quality) in _transforms().items():
        found = 0
        for img in originals:
            buf = io.BytesIO()
            change(img).save(buf, "JPEG", quality=quality)
            with Image.open(buf) as copy:
                found += _matches(img, copy.convert("RGB"))
        shares[name] = round(found / images, 3)
    return shares


def false_pairs(images: int) -> dict[str, int]:
    """Candidates and confirmed near-duplicates among all pairs of ``images`` different faces."""
    faces = _faces(images, 22)
    hashes = [near_duplicates.phash(f) for f in faces]
    half = images // 2  # the pairs between the two halves (as between two splits)
    pairs = near_duplicates.candidates(hashes[:half], hashes[half:])
    views = [near_duplicates.views(f) for f in faces]
    confirmed = sum(near_duplicates.confirm(views[i], views[half + j]) is not None for i, j, _ in pairs)
    # the pixel checks alone, on pairs that are not candidates too: how close different faces come
    detail = max(
        near_duplicates.best_orientation(views[i][check], views[half + j][check])[1]
        for i in range(0, half, max(1, half // 100))
        for j in range(0, images - half, max(1, half // 100))
        for check in ("luma detail", "brightest-channel detail")
    )
    return {
        "pairs_compared": half * (images - half),
        "candidates": len(pairs),
        "confirmed": confirmed,
        "max_detail_correlation_sampled": round(detail, 3),
    }


def hash_seconds_per_image(images: int) -> float:
    from PIL import Image

    decoded = []
    for _, _, data in synthetic.generate({"Train": images}, 0.5, 0):
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            decoded.append(img.copy())
    near_duplicates.phash(decoded[0])  # imports scipy's DCT once, as a worker's first image does
    start = time.perf_counter()
    for img in decoded:
        near_duplicates.phash(img)
    return (time.perf_counter() - start) / images


def search_seconds(splits: dict[str, int]) -> tuple[float, int]:
    rng = np.random.default_rng(0)
    hashes = {s: [rng.bytes(64).hex() for _ in range(n)] for s, n in splits.items()}  # two 256-bit views each
    names, pairs, start = list(splits), 0, time.perf_counter()
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            pairs += len(near_duplicates.candidates(hashes[first], hashes[second]))
    return time.perf_counter() - start, pairs


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="1/100 of the sizes (a smoke test)")
    parser.add_argument("--name", default="near_duplicates")
    args = parser.parse_args(argv)
    scale = 100 if args.small else 1
    splits = {s: n // scale for s, n in KAGGLE_SPLITS.items()}
    cores = os.cpu_count() or 1
    per_image = hash_seconds_per_image(2000 // scale)
    search, candidates = search_seconds(splits)
    transforms, different = caught(200 // scale), false_pairs(2000 // scale)
    total_images = sum(splits.values())
    hashing = per_image * total_images / cores
    result = {
        "params": {"splits": splits, "cores": cores, "max_distance_bits": near_duplicates.MAX_DISTANCE},
        "hash_ms_per_image": round(per_image * 1000, 3),
        "hashing_seconds_on_all_cores": round(hashing, 1),
        "pair_comparisons": splits["Train"] * (splits["Validation"] + splits["Test"])
        + splits["Validation"] * splits["Test"],
        "search_seconds": round(search, 1),
        "random_candidates": candidates,
        "total_seconds": round(hashing + search, 1),
        "caught_share_by_transform": transforms,
        "different_faces": different,
    }
    save(args.name, result)
    return result


if __name__ == "__main__":
    main()
