"""The near-duplicate search's candidate step keeps what it promises whatever the data."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tasks import near_duplicates


def _grey_prints(n: int, seed: int) -> list[bytes]:
    """The colour fingerprints of ``n`` greyscale photos: every pair of them is alike in colour."""
    rng = np.random.default_rng(seed)
    prints = []
    for _ in range(n):
        grey = np.clip(rng.normal(128, 40, (64, 64)), 0, 255).astype(np.uint8)
        prints.append(near_duplicates.fingerprints(Image.fromarray(grey).convert("RGB"))[1])
    return prints


def test_colour_alike_pairs_are_counted_all_and_only_the_most_alike_are_kept():
    a, b = _grey_prints(60, 1), _grey_prints(50, 2)
    alike = near_duplicates.close_colours(a, b, keep=40)
    # the whole matrix, computed directly: every pair is alike, and the kept ones are its 40 largest
    (_, fine_a), (_, fine_b) = near_duplicates.colour_shares(a), near_duplicates.colour_shares(b)
    similarity = fine_a @ fine_b.T
    assert alike.total == int((similarity >= near_duplicates.MIN_COLOURS).sum()) == 60 * 50
    assert len(alike.pairs) == 40
    assert sorted(s for _, _, s in alike.pairs) == pytest.approx(np.sort(similarity.ravel())[-40:].tolist(), abs=1e-6)


def test_colour_blocks_stay_small_for_a_long_second_split(monkeypatch):
    """A block holds at most ``_COLOUR_CELLS`` pairs, also where the second split alone is longer."""
    monkeypatch.setattr(near_duplicates, "_COLOUR_CELLS", 64)
    a, b = _grey_prints(30, 3), _grey_prints(100, 4)
    small = near_duplicates.close_colours(a, b, keep=7)
    monkeypatch.undo()
    whole = near_duplicates.close_colours(a, b, keep=7)
    assert small.total == whole.total == 30 * 100
    assert {(i, j) for i, j, _ in small.pairs} == {(i, j) for i, j, _ in whole.pairs}  # (BLAS' last digits differ)
