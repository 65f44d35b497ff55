"""What the near-duplicate check costs at the real dataset's size (200,000 images), and what it catches.

What it catches: each of ``_transforms()`` applied to synthetic faces (200; 20 with --small), each
copy saved as JPEG (quality 90 unless the transform sets it); a copy is caught when the stage's two
tests both pass for it and its original (``near_duplicates.candidates``: a hash distance <=
``MAX_DISTANCE`` in either grey view, or alike colours; then ``near_duplicates.confirm``: one of the
pixel checks). What it must not catch: 1,000 other faces against 1,000 more (100 with --small),
different pictures of the same layout, as candidates and as confirmed pairs; and how close the aligned
check comes on the most colour-alike of those pairs, the only ones it is tried on.

What it costs, two parts, measured separately and added up:
  * fingerprints: ``near_duplicates.fingerprints`` per decoded 178x218 synthetic face (validate's workers
    do it while they decode each image anyway), extrapolated to 200,000 images on this machine's cores;
  * the pair search: ``near_duplicates.candidates`` between the Kaggle split sizes (160,000 Train,
    22,598 Validation, 20,001 Test) on random hashes (256 bits per grey view, two views) and the faces'
    colour histograms with their bins shuffled (alike in how many bins they fill, not in which). It is a
    brute force, so its cost barely depends on the pictures; the pixel checks of
    each candidate (two decodes, ~3 ms; ~30 ms more when the copy must be aligned) come on top, once per
    candidate pair, which is a handful on clean data.

    python -m benchmarks.near_duplicates [--small]
"""

from __future__ import annotations

import argparse
import io
import os
import time
from typing import Any

import numpy as np

from benchmarks.common import save
from tasks import near_duplicates, synthetic

KAGGLE_SPLITS = {"Train": 160_000, "Validation": 22_598, "Test": 20_001}
ALIKE_PAIRS = 20  # the most colour-alike pairs of different faces, aligned in each orientation


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
    found = near_duplicates.candidates([near_duplicates.fingerprints(a)], [near_duplicates.fingerprints(b)])
    views = near_duplicates.views(a), near_duplicates.views(b)
    return bool(found) and near_duplicates.confirm(*views, found[0].colours) is not None


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


def false_pairs(images: int) -> dict[str, Any]:
    """Candidates and confirmed near-duplicates among all pairs of ``images`` different faces, and how close
    the pixel checks come on pairs that are not candidates."""
    faces = _faces(images, 22)
    prints = [near_duplicates.fingerprints(f) for f in faces]
    half = images // 2  # the pairs between the two halves (as between two splits)
    pairs = near_duplicates.candidates(prints[:half], prints[half:])
    views = [near_duplicates.views(f) for f in faces]
    confirmed = sum(near_duplicates.confirm(views[c.i], views[half + c.j], c.colours) is not None for c in pairs)
    detail = max(  # the fixed-geometry detail checks on a grid of pairs
        near_duplicates.best_orientation(views[i][check], views[half + j][check])[1]
        for i in range(0, half, max(1, half // 100))
        for j in range(0, images - half, max(1, half // 100))
        for check in ("luma detail", "brightest-channel detail")
    )
    # the aligned check on the most colour-alike pairs (the only ones it is tried on)
    (_, a), (_, b) = (near_duplicates.colour_shares([c for _, c in side]) for side in (prints[:half], prints[half:]))
    alike = a @ b.T
    top = np.argsort(alike, axis=None)[::-1][:ALIKE_PAIRS]
    aligned = [
        near_duplicates.compare_aligned(views[i]["luma"], np.flip(views[half + j]["luma"], axes))
        for i, j in zip(*np.unravel_index(top, alike.shape))
        for axes in near_duplicates.ORIENTATIONS.values()
    ]
    return {
        "pairs_compared": half * (images - half),
        "candidates": len(pairs),
        "confirmed": confirmed,
        "max_detail_correlation_sampled": round(detail, 3),
        "most_colour_alike": {
            "pairs": len(top),
            "colours": [round(float(alike.flat[top[-1]]), 3), round(float(alike.flat[top[0]]), 3)],
            "max_aligned_detail": round(max(c for c, _ in aligned), 3),
            "min_aligned_difference": round(min(d for _, d in aligned), 2),
        },
    }


def fingerprint_seconds_per_image(images: int) -> tuple[float, list[bytes]]:
    """Seconds per decoded synthetic face, and the faces' colour histograms."""
    from PIL import Image

    decoded = []
    for _, _, data in synthetic.generate({"Train": images}, 0.5, 0):
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            decoded.append(img.copy())
    near_duplicates.fingerprints(decoded[0])  # imports scipy's DCT once, as a worker's first image does
    start = time.perf_counter()
    prints = [near_duplicates.fingerprints(img) for img in decoded]
    return (time.perf_counter() - start) / images, [colours for _, colours in prints]


def search_seconds(splits: dict[str, int], faces: list[bytes]) -> tuple[float, int]:
    """The pair search between ``splits`` on random hashes and realistic colour histograms that are not alike:
    those of ``faces`` with their bins shuffled (how many bins an image fills, not which)."""
    rng = np.random.default_rng(0)
    prints = {
        s: [(rng.bytes(64).hex(), rng.permutation(np.frombuffer(faces[k], np.uint8)).tobytes()) for k in picks]
        for s, picks in ((s, rng.integers(0, len(faces), n)) for s, n in splits.items())
    }
    names, pairs, start = list(splits), 0, time.perf_counter()
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            pairs += len(near_duplicates.candidates(prints[first], prints[second]))
    return time.perf_counter() - start, pairs


def greyscale_prints(n: int, seed: int) -> list[tuple[str, bytes]]:
    """Fingerprints of ``n`` greyscale photos (noise of one random tone each): every pair is alike in colour."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    tones = rng.normal(128, 6, n)  # alike tones: all alike in colour, as greyscale faces are
    return [
        near_duplicates.fingerprints(Image.fromarray(np.clip(rng.normal(t, 30, (64, 64)), 0, 255).astype(np.uint8)))
        for t in tones
    ]


def candidate_memory(sizes: list[tuple[int, int]]) -> list[dict]:
    """Peak memory (tracemalloc: NumPy's and Python's allocations) of the candidate search between two splits
    of greyscale photos, each size's: the colour-alike pairs grow with the product, the memory must not."""
    import tracemalloc

    rows = []
    for first, second in sizes:
        a, b = greyscale_prints(first, 1), greyscale_prints(second, 2)
        tracemalloc.start()
        start = time.perf_counter()
        found = near_duplicates.candidates(a, b)
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        alike = near_duplicates.close_colours([c for _, c in a], [c for _, c in b]).total
        rows.append(
            {
                "splits": [first, second],
                "colour_alike_pairs": alike,
                "candidates_kept": len(found),
                "peak_mib": round(peak / 2**20, 1),
                "seconds": round(seconds, 1),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="1/100 of the sizes (a smoke test)")
    parser.add_argument("--name", default="near_duplicates")
    args = parser.parse_args(argv)
    scale = 100 if args.small else 1
    splits = {s: n // scale for s, n in KAGGLE_SPLITS.items()}
    cores = os.cpu_count() or 1
    per_image, colours = fingerprint_seconds_per_image(2000 // scale)
    search, candidates = search_seconds(splits, colours)
    transforms, different = caught(200 // scale), false_pairs(2000 // scale)
    total_images = sum(splits.values())
    fingerprinting = per_image * total_images / cores
    result = {
        "params": {"splits": splits, "cores": cores, "max_distance_bits": near_duplicates.MAX_DISTANCE},
        "fingerprint_ms_per_image": round(per_image * 1000, 3),
        "fingerprint_seconds_on_all_cores": round(fingerprinting, 1),
        "pair_comparisons": splits["Train"] * (splits["Validation"] + splits["Test"])
        + splits["Validation"] * splits["Test"],
        "search_seconds": round(search, 1),
        "random_candidates": candidates,
        "total_seconds": round(fingerprinting + search, 1),
        "caught_share_by_transform": transforms,
        "different_faces": different,
        "candidate_memory": candidate_memory([(200, 50), (600, 150)] if args.small else [(2000, 500), (6000, 1500)]),
    }
    save(args.name, result, small=args.small)
    return result


if __name__ == "__main__":
    main()
