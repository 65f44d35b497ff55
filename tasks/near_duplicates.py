"""Near-duplicate images across splits: the same photo re-encoded, resized, mirrored or flipped.

Exact copies are found by content hash; a re-encoded or resized copy has other bytes. Each image
gets a perceptual hash (computed by validate's workers while the image is decoded): the grey image
shrunk to 64x64, its 2-D DCT, and of the 16x16 lowest frequencies one bit each, set when the
coefficient's *magnitude* is above their median: 256 bits. Mirroring the image left-right or
flipping it upside down only changes the sign of some coefficients (those of odd index along that
direction), so the hash stays the same (``imagehash.phash``, which this replaced, compares the signed
coefficients: it found 0 of 200 mirrored copies, and this finds all of them; with JPEG quality 10 it
found 92%, this 88.5%: BENCHMARKS.md row 7). Every pair of images in two different splits whose
hashes differ in at most ``MAX_DISTANCE`` bits is a candidate (a brute-force XOR and popcount in
blocks: it needs no index and its cost is known); a candidate is a near-duplicate when the two
images, shrunk to 32x32 in colour, also correlate at ``MIN_CORRELATION`` or more, in the best of the
four orientations (as is, mirrored, upside down, turned 180 degrees), which the report names.

Measured with the earlier hash on the synthetic faces (which look much more alike than real photos): a copy resized to
3/4 and re-saved at JPEG quality 60 differs in 4 bits (median; at most 18) and its thumbnail
correlates at 0.9978 or more (300 images). In grey, two different faces with the same layout can
correlate above 0.99 too: 22 such pairs turned up among 200,000 images (aligned face crops are
like that); in colour none of them reaches 0.99 (the ten listed: 0.26-0.83), so the thumbnails
keep their colour.
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
HASHED = 64  # the grey image is shrunk to HASHED x HASHED before its DCT
MAX_DISTANCE = 24  # bits: candidates for the pixel check
MIN_CORRELATION = 0.99  # of the 32x32 colour thumbnails: a near-duplicate
THUMB = 32
_BLOCK = 32  # rows of one split compared with all of another at once (bounds memory: block x n x 32 bytes)


# thumbnail axes (height, width) to reverse for each orientation of the second image of a pair
ORIENTATIONS = {"as is": (), "mirrored": (1,), "upside down": (0,), "turned 180 degrees": (0, 1)}


def phash(image: Any) -> str:
    """The flip-invariant perceptual hash of a decoded PIL image (see above), as 64 hex digits."""
    from PIL import Image
    from scipy.fft import dctn

    pixels = np.asarray(image.convert("L").resize((HASHED, HASHED), Image.LANCZOS), dtype=np.float64)
    magnitude = np.abs(dctn(pixels, norm="ortho")[:HASH_SIZE, :HASH_SIZE])  # the same for a flipped image
    return np.packbits(magnitude.ravel() > np.median(magnitude)).tobytes().hex()


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


def thumbnail(image: Any) -> np.ndarray:
    """(THUMB, THUMB, 3) colour thumbnail of a PIL image, zero mean and unit norm."""
    from PIL import Image

    pixels = np.asarray(image.convert("RGB").resize((THUMB, THUMB), Image.BILINEAR), dtype=np.float64)
    pixels -= pixels.mean()
    return pixels / (np.linalg.norm(pixels) or 1.0)


def _thumbnail(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        return thumbnail(img)


def best_orientation(a: np.ndarray, b: np.ndarray) -> tuple[str, float]:
    """The orientation of thumbnail ``b`` that correlates best with ``a``, and that correlation."""
    scores = {name: float((a * np.flip(b, axes) if axes else a * b).sum()) for name, axes in ORIENTATIONS.items()}
    best = max(scores, key=scores.get)
    return best, scores[best]


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
                for i, j, distance in close_pairs(_bits(list(a["phash"])), _bits(list(b["phash"]))):
                    x, y = a.iloc[i], b.iloc[j]
                    if x["sha256"] == y["sha256"]:
                        continue
                    pixels = [_thumbnail(zf.read(archive.member_name(row["path"]))) for row in (x, y)]
                    orientation, correlation = best_orientation(*pixels)
                    if correlation >= MIN_CORRELATION:
                        found.append(
                            NearDuplicate(
                                a=x["path"],
                                b=y["path"],
                                distance=int(distance),
                                correlation=round(correlation, 4),
                                orientation=orientation,
                            )
                        )
    return sorted(found, key=lambda p: (p.a, p.b))
