"""Near-duplicate images across splits: the same photo re-encoded, resized, mirrored, flipped or recoloured.

Exact copies are found by content hash; a changed copy has other bytes. Each image gets two
perceptual hashes (computed by validate's workers while the image is decoded), of two grey views of
it: its luma (ITU-R 601 grey) and its brightest channel (HSV's value, max(R, G, B)). Each view is
shrunk to 64x64, and of the 16x16 lowest frequencies of its 2-D DCT one bit each is set when the
coefficient's *magnitude* is above their median: 256 bits per view. Mirroring the image left-right
or flipping it upside down only changes the sign of some coefficients (those of odd index along that
direction), so neither hash changes (``imagehash.phash``, which this replaced, compares signed
coefficients: it found 0 of 200 mirrored copies). A greyscale copy keeps the luma; swapping colour
channels or turning the hue keeps the brightest channel. Every pair of images in two different splits
whose hashes of either view differ in at most ``MAX_DISTANCE`` bits is a candidate (a brute-force XOR
and popcount in blocks: it needs no index and its cost is known).

A candidate is a near-duplicate when one of three pixel checks passes, in the best of four
orientations (as is, mirrored, upside down, turned 180 degrees), which the report names with the
check: the 32x32 colour thumbnails correlate at ``MIN_CORRELATION`` or more ("colour"), or the fine
detail of either grey view (the view at 178x218 minus its Gaussian blur, sigma 1 px: texture, noise and
JPEG grain rather than shapes) correlates at ``MIN_DETAIL`` or more ("luma detail",
"brightest-channel detail"). Aligned face crops look alike at low resolution: in grey, 22 pairs of
different synthetic faces among 200,000 correlated above 0.99 as 32x32 thumbnails, and two different
faces of the same pose and hair (tiny model set, seed 11: Train/Female/000186.jpg, Validation/Female/000005.jpg)
correlated at 0.84 in the brightest channel's detail at 64x78 with sigma 2 px. At full size and sigma 1 px
that pair correlates at 0.22, and greyscale, channel-swapped, hue-turned and 20% brighter copies at 0.80
or more (60 faces each). At 0.6 one pair of different faces among 200,000 passed (0.647), hence 0.7.
BENCHMARKS.md row 7 measures the share of each kind of copy that is found, row 9 the false pairs among
200,000 different faces.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from tasks import archive, paths
from tasks.reports import NearDuplicate

HASH_SIZE = 16  # 16x16 DCT coefficients: 256-bit hashes
HASHED = 64  # each grey view is shrunk to HASHED x HASHED before its DCT
HEX = HASH_SIZE * HASH_SIZE // 4  # hex digits of one view's hash; the manifest's phash holds both views
MAX_DISTANCE = 24  # bits, in either view: candidates for the pixel checks
MIN_CORRELATION = 0.99  # of the 32x32 colour thumbnails: a near-duplicate
MIN_DETAIL = 0.7  # of the fine detail of a grey view: a near-duplicate (0.647 for a false pair at 200K)
THUMB = 32
DETAIL = (178, 218)  # (width, height) of the grey views whose detail is compared: the CelebA crop's size
DETAIL_SIGMA = 1.0  # px: what the Gaussian blur removes from a view leaves its detail
_BLOCK = 32  # rows of one split compared with all of another at once (bounds memory: block x n x 32 bytes)


# thumbnail axes (height, width) to reverse for each orientation of the second image of a pair
ORIENTATIONS = {"as is": (), "mirrored": (1,), "upside down": (0,), "turned 180 degrees": (0, 1)}


def grey_views(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two grey views of an (h, w, 3) RGB array: luma (ITU-R 601) and the brightest channel."""
    return rgb @ np.array([0.299, 0.587, 0.114]), rgb.max(axis=2)


def phash(image: Any) -> str:
    """The flip-invariant perceptual hashes of a decoded PIL image's two grey views (see above): 2 x 64 hex digits."""
    from PIL import Image
    from scipy.fft import dctn

    rgb = np.asarray(image.convert("RGB").resize((HASHED, HASHED), Image.LANCZOS), dtype=np.float64)
    bits = []
    for view in grey_views(rgb):
        magnitude = np.abs(dctn(view, norm="ortho")[:HASH_SIZE, :HASH_SIZE])  # the same for a flipped image
        bits.append(np.packbits(magnitude.ravel() > np.median(magnitude)).tobytes().hex())
    return "".join(bits)


def _bits(hexes: list[str]) -> np.ndarray:
    """(n, 4) uint64 words of 256-bit hex hashes."""
    raw = np.frombuffer(b"".join(bytes.fromhex(h) for h in hexes), dtype=">u8")
    return raw.astype(np.uint64).reshape(len(hexes), -1)


def _most_telling_first(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``a`` and ``b`` with the same permutation of their bits: first the bits set in closest to half
    of these hashes. Distances do not change; the first word filters best. (On faces the lowest
    frequencies are large in nearly every image, so in hash order the first word of two different
    faces passed the filter for 49% of pairs, and the search took 4x as long; in this order 5%.)"""
    unpacked = [np.unpackbits(x.astype(">u8").view(np.uint8), axis=1) for x in (a, b)]
    share = np.concatenate(unpacked).mean(axis=0)
    order = np.argsort(-np.minimum(share, 1 - share), kind="stable")
    return tuple(np.ascontiguousarray(np.packbits(u[:, order], axis=1)).view(">u8").astype(np.uint64) for u in unpacked)


def close_pairs(a: np.ndarray, b: np.ndarray, max_distance: int = MAX_DISTANCE) -> list[tuple[int, int, int]]:
    """Every (i, j, distance) with Hamming distance(a[i], b[j]) <= ``max_distance``.

    The first 64-bit word alone already differs in more than ``max_distance`` bits for most pairs,
    so the other words are compared only for the pairs that pass it.
    """
    if len(a) == 0 or len(b) == 0:
        return []
    a, b = _most_telling_first(a, b)
    pairs = []
    for start in range(0, len(a), _BLOCK):
        block = a[start : start + _BLOCK]
        i, j = np.nonzero(np.bitwise_count(block[:, None, 0] ^ b[None, :, 0]) <= max_distance)
        distance = np.bitwise_count(block[i] ^ b[j]).sum(axis=-1, dtype=np.int32)
        keep = distance <= max_distance
        pairs += [(start + int(x), int(y), int(d)) for x, y, d in zip(i[keep], j[keep], distance[keep])]
    return pairs


def _unit(x: np.ndarray) -> np.ndarray:
    x = x - x.mean()
    return x / (np.linalg.norm(x) or 1.0)


def views(image: Any) -> dict[str, np.ndarray]:
    """What the pixel checks compare, by check: the colour thumbnail and each grey view's fine detail (unit norm)."""
    from PIL import Image
    from scipy.ndimage import gaussian_filter

    rgb = image.convert("RGB")
    out = {"colour": _unit(np.asarray(rgb.resize((THUMB, THUMB), Image.BILINEAR), dtype=np.float64))}
    grey = grey_views(np.asarray(rgb.resize(DETAIL, Image.BILINEAR), dtype=np.float64))
    for name, view in zip(("luma detail", "brightest-channel detail"), grey):
        out[name] = _unit(view - gaussian_filter(view, DETAIL_SIGMA))
    return out


def _views(data: bytes) -> dict[str, np.ndarray]:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        return views(img)


def best_orientation(a: np.ndarray, b: np.ndarray) -> tuple[str, float]:
    """The orientation of ``b`` (an image-shaped array) that correlates best with ``a``, and that correlation."""
    scores = {name: float((a * np.flip(b, axes) if axes else a * b).sum()) for name, axes in ORIENTATIONS.items()}
    best = max(scores, key=scores.get)
    return best, scores[best]


THRESHOLDS = {"colour": MIN_CORRELATION, "luma detail": MIN_DETAIL, "brightest-channel detail": MIN_DETAIL}


def confirm(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> tuple[str, str, float] | None:
    """``(check, orientation, correlation)`` of the first pixel check that the two images' :func:`views` pass."""
    for check, threshold in THRESHOLDS.items():
        orientation, correlation = best_orientation(a[check], b[check])
        if correlation >= threshold:
            return check, orientation, correlation
    return None


def find(kept: Any, archive_path: Path) -> list[NearDuplicate]:
    """Near-duplicate pairs across splits among the ``kept`` manifest rows (with ``phash``), sorted.

    Exact copies (the same sha256) are left out: validate reports them already.
    """
    rows = kept[kept["phash"].notna() & (kept["phash"] != "")]
    splits = {s: rows[rows["split"] == s] for s in paths.SPLITS}
    found = []
    with zipfile.ZipFile(archive_path) as zf:
        for n, first in enumerate(paths.SPLITS):
            for second in paths.SPLITS[n + 1 :]:
                a, b = splits[first], splits[second]
                if a.empty or b.empty:
                    continue
                for i, j, distance in candidates(list(a["phash"]), list(b["phash"])):
                    x, y = a.iloc[i], b.iloc[j]
                    if x["sha256"] == y["sha256"]:
                        continue
                    passed = confirm(*(_views(zf.read(archive.member_name(row["path"]))) for row in (x, y)))
                    if passed:
                        check, orientation, correlation = passed
                        found.append(
                            NearDuplicate(
                                a=x["path"],
                                b=y["path"],
                                distance=distance,
                                correlation=round(correlation, 4),
                                orientation=orientation,
                                check=check,
                            )
                        )
    return sorted(found, key=lambda p: (p.a, p.b))


def candidates(a: list[str], b: list[str]) -> list[tuple[int, int, int]]:
    """Every (i, j, distance) whose hashes (manifest ``phash`` strings) are close in either view, with the
    smaller of the two distances."""
    best: dict[tuple[int, int], int] = {}
    for view in range(2):
        part = slice(view * HEX, (view + 1) * HEX)
        for i, j, distance in close_pairs(_bits([h[part] for h in a]), _bits([h[part] for h in b])):
            best[i, j] = min(distance, best.get((i, j), distance))
    return sorted((i, j, d) for (i, j), d in best.items())
