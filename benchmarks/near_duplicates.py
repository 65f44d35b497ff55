"""What the near-duplicate check costs at the real dataset's size (200,000 images).

Two parts, measured separately and added up:
  * hashing: ``near_duplicates.phash`` per decoded 178x218 synthetic face (validate's workers do it
    while they decode each image anyway), extrapolated to 200,000 images on this machine's cores;
  * the pair search: ``near_duplicates.close_pairs`` between the Kaggle split sizes (160,000 Train,
    22,598 Validation, 20,001 Test) on random 256-bit hashes. It is a brute force, so its cost does
    not depend on the pictures; the pixel check of each candidate (two decodes, ~2 ms) comes on top,
    once per candidate pair, which is a handful on clean data.

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
    hashes = {s: rng.integers(0, 2**63, (n, 4), dtype=np.int64).astype(np.uint64) for s, n in splits.items()}
    names, pairs, start = list(splits), 0, time.perf_counter()
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            pairs += len(near_duplicates.close_pairs(hashes[first], hashes[second]))
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
    }
    save(args.name, result)
    return result


if __name__ == "__main__":
    main()
