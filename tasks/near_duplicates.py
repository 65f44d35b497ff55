"""Near-duplicate images across splits: the same photo re-encoded, resized, mirrored, flipped, recoloured,
cropped, shifted or slightly rotated.

Each image gets two fingerprints from its 64x64 thumbnail while validate decodes it:

* ``phash``: a flip-invariant perceptual hash of two grey views (luma and the brightest channel): one
  bit per low DCT frequency whose *magnitude* is above the median, so mirroring or flipping (which only
  changes signs) keeps it, a greyscale copy keeps the luma, a hue turn keeps the brightest channel.
  Pairs within ``MAX_DISTANCE`` bits in either view are candidates.
* ``colours``: a colour histogram of the thumbnail's centre, which crops, shifts and rotations barely
  change. Pairs whose histograms are alike are candidates too, at most ``MAX_ALIGNED_PAIRS`` of them per
  two splits (the most alike), since greyscale photos are all alike in colour.

A candidate is a near-duplicate when a pixel check passes (the report names it and the orientation):
"colour" (32x32 thumbnails correlate), "luma detail" or "brightest-channel detail" (the fine detail of a
grey view correlates), or, for colour-alike pairs, "aligned detail" (after an affine alignment, a band of
detail correlates and the grey levels agree). Thresholds and what each kind of copy and of look-alike
face measures: BENCHMARKS.md rows 7 and 9.
"""

from __future__ import annotations

import io
import zipfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from tasks import archive, paths
from tasks.errors import logger
from tasks.reports.validation import NearDuplicate

log = logger("validate")

THUMBNAIL = 64  # both fingerprints come from a THUMBNAIL x THUMBNAIL area-averaged copy
HASH_SIZE = 16  # 16x16 DCT coefficients: 256-bit hashes
HEX = HASH_SIZE * HASH_SIZE // 4  # hex digits of one view's hash; the manifest's phash holds both views
MAX_DISTANCE = 24  # bits, in either view: candidates for the pixel checks
COLOUR_LEVELS = 8  # per channel: 512 colour bins
COLOUR_MARGIN = 6  # thumbnail pixels left out on each side (what crops and rotated corners change)
MIN_COARSE_COLOURS = 0.9  # Bhattacharyya coefficient over 4x4x4 bins: compared over 8x8x8
MIN_COLOURS = 0.85  # ... over 8x8x8 bins: a candidate
MAX_ALIGNED_PAIRS = 5000  # colour-alike pairs per two splits that are aligned and checked, the most alike first
MIN_CORRELATION = 0.985  # of the 32x32 colour thumbnails: a near-duplicate
MIN_DETAIL = 0.7  # of the fine detail of a grey view: a near-duplicate (0.647 for a false pair at 200K)
MIN_ALIGNED_DETAIL = 0.8  # of the detail band after alignment: a near-duplicate, if also ...
MAX_ALIGNED_DIFFERENCE = 6.0  # ... the grey levels differ by at most this median (of 255) after alignment
ALIGNED_ORIENTATIONS = 2  # the likeliest by colour (a face and its mirror image look alike): both are aligned
ALIGNED_BAND = (0.7, 2.0)  # px: the Gaussian blurs whose difference is the band compared after alignment
THUMB = 32
DETAIL = (178, 218)  # (width, height) of the grey views whose detail is compared: the CelebA crop's size
DETAIL_SIGMA = 1.0  # px: what the Gaussian blur removes from a view leaves its detail
_BLOCK = 32  # rows of one split compared with all of another at once (bounds memory: block x n x 32 bytes)
_COLOUR_CELLS = 1 << 20  # pairs per matrix product of colour shares (4 MiB of float32), whatever the sizes


# thumbnail axes (height, width) to reverse for each orientation of the second image of a pair
ORIENTATIONS = {"as is": (), "mirrored": (1,), "upside down": (0,), "turned 180 degrees": (0, 1)}


def grey_views(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two grey views of an (h, w, 3) RGB array: luma (ITU-R 601) and the brightest channel."""
    red, green, blue = (rgb[..., c].astype(np.float32) for c in range(3))  # (a reduction over axis 2 is slow)
    return red * 0.299 + green * 0.587 + blue * 0.114, np.maximum(np.maximum(red, green), blue)


def fingerprints(image: Any) -> tuple[str, bytes]:
    """A decoded PIL image's ``phash`` (2 x 64 hex digits, flip-invariant) and ``colours`` (512 bytes)."""
    from PIL import Image
    from scipy.fft import dctn

    thumb = np.asarray(image.convert("RGB").resize((THUMBNAIL, THUMBNAIL), Image.BOX))
    bits = []
    for view in grey_views(thumb):
        magnitude = np.abs(dctn(view, norm="ortho")[:HASH_SIZE, :HASH_SIZE])  # the same for a flipped image
        bits.append(np.packbits(magnitude.ravel() > np.median(magnitude)).tobytes().hex())
    m = COLOUR_MARGIN
    q = (thumb[m:-m, m:-m].astype(np.int32) * COLOUR_LEVELS) >> 8
    counts = np.bincount(((q[..., 0] * COLOUR_LEVELS + q[..., 1]) * COLOUR_LEVELS + q[..., 2]).ravel(), minlength=512)
    colours = np.rint(255 * np.sqrt(counts / counts.sum())).astype(np.uint8)  # square-rooted shares
    return "".join(bits), colours.tobytes()


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
    first = np.ascontiguousarray(b[:, 0])
    pairs = []
    for start in range(0, len(a), _BLOCK):
        block = a[start : start + _BLOCK]
        i, j = np.nonzero(np.bitwise_count(block[:, None, 0] ^ first[None, :]) <= max_distance)
        distance = np.bitwise_count(block[i] ^ b[j]).sum(axis=-1, dtype=np.int32)
        keep = distance <= max_distance
        pairs += [(start + int(x), int(y), int(d)) for x, y, d in zip(i[keep], j[keep], distance[keep])]
    return pairs


def colour_shares(colours: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors of square-rooted colour shares, (n, 64) over 4x4x4 bins and (n, 512) over 8x8x8."""
    fine = np.frombuffer(b"".join(colours), dtype=np.uint8).reshape(len(colours), -1).astype(np.float32)
    fine /= np.maximum(np.linalg.norm(fine, axis=1, keepdims=True), 1e-9)
    levels = np.arange(COLOUR_LEVELS**3)
    red, green, blue = levels // COLOUR_LEVELS**2, levels // COLOUR_LEVELS % COLOUR_LEVELS, levels % COLOUR_LEVELS
    coarse_bin = ((red // 2) * 4 + green // 2) * 4 + blue // 2  # each 2x2x2 block of fine bins is one coarse bin
    merge = (coarse_bin[:, None] == np.arange(64)).astype(np.float32)
    return np.sqrt(np.square(fine) @ merge), fine  # shares add up; a matrix product is the fast way here


class Alike(NamedTuple):
    """The most colour-alike pairs of two splits (at most ``MAX_ALIGNED_PAIRS``, in no order) and how many
    pairs were alike in all."""

    pairs: list[tuple[int, int, float]]
    total: int


def _most_alike(kept: tuple[np.ndarray, ...], found: tuple[np.ndarray, ...], keep: int) -> tuple[np.ndarray, ...]:
    """The ``keep`` most alike of the pairs kept so far and those just found, as (i, j, similarity) arrays."""
    i, j, similarity = (np.concatenate(pair) for pair in zip(kept, found))
    if len(similarity) > keep:
        top = np.argpartition(-similarity, keep - 1)[:keep]
        i, j, similarity = i[top], j[top], similarity[top]
    return i, j, similarity


def close_colours(a: list[bytes], b: list[bytes], keep: int = MAX_ALIGNED_PAIRS) -> Alike:
    """The ``keep`` most alike pairs (i, j, similarity) whose ``colours`` are at ``MIN_COARSE_COLOURS`` over
    4x4x4 bins, then ``MIN_COLOURS`` over 8x8x8 (computed for the rows with a coarse match only), and how many
    pairs were alike. Memory is bounded whatever the data: blocks of at most ``_COLOUR_CELLS`` pairs, and
    a running top ``keep`` (greyscale photos are all alike in colour)."""
    if not a or not b:
        return Alike([], 0)
    (coarse_a, fine_a), (coarse_b, fine_b) = colour_shares(a), colour_shares(b)
    rows_per_block = max(1, _COLOUR_CELLS // len(b))
    kept = (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32))
    total = 0
    for start in range(0, len(a), rows_per_block):
        coarse = coarse_a[start : start + rows_per_block] @ coarse_b.T >= MIN_COARSE_COLOURS
        rows = np.flatnonzero(coarse.any(axis=1))
        if rows.size:
            fine = fine_a[start + rows] @ fine_b.T
            x, y = np.nonzero(coarse[rows] & (fine >= MIN_COLOURS))
            total += len(x)
            kept = _most_alike(kept, (start + rows[x], y, fine[x, y]), keep)
    return Alike([(int(i), int(j), float(s)) for i, j, s in zip(*kept)], total)


class Candidate(NamedTuple):
    """A pair whose fingerprints are close: its hash distance in the closer view (-1 when neither view's is
    close), and whether its colours are alike (only then is the aligned check tried)."""

    i: int
    j: int
    distance: int
    colours: bool


def candidates(a: list[tuple[str, bytes]], b: list[tuple[str, bytes]]) -> list[Candidate]:
    """Every pair (index in ``a``, index in ``b``) whose :func:`fingerprints` are close, in hashes or colours."""

    def view(side: list[tuple[str, bytes]], v: int) -> np.ndarray:
        return _bits([h[v * HEX : (v + 1) * HEX] for h, _ in side])

    with ThreadPoolExecutor(2) as pool:  # NumPy's loops release the GIL: the two views run on two cores
        views = list(pool.map(lambda v: close_pairs(view(a, v), view(b, v)), range(2)))
    best: dict[tuple[int, int], int] = {}
    for i, j, distance in (pair for pairs in views for pair in pairs):
        best[i, j] = min(distance, best.get((i, j), distance))
    alike = close_colours([c for _, c in a], [c for _, c in b])
    if alike.total > MAX_ALIGNED_PAIRS:  # each costs an alignment (~30 ms): many alike images, e.g. greyscale ones
        log.warning(
            "near-duplicates: %d pairs of images have alike colours; only the %d most alike are aligned and checked",
            alike.total,
            MAX_ALIGNED_PAIRS,
        )
    alike = {(i, j) for i, j, _ in alike.pairs}
    return [Candidate(i, j, best.get((i, j), -1), (i, j) in alike) for i, j in sorted(best.keys() | alike)]


def _unit(x: np.ndarray) -> np.ndarray:
    x = x - x.mean()
    return x / (np.linalg.norm(x) or 1.0)


def views(image: Any) -> dict[str, np.ndarray]:
    """What the pixel checks compare: the colour thumbnail, each grey view's fine detail (unit norm), and the
    luma at 178x218 ("luma")."""
    from PIL import Image
    from scipy.ndimage import gaussian_filter

    rgb = image.convert("RGB")
    out = {"colour": _unit(np.asarray(rgb.resize((THUMB, THUMB), Image.BILINEAR), dtype=np.float64))}
    grey = grey_views(np.asarray(rgb.resize(DETAIL, Image.BILINEAR)))
    for name, view in zip(("luma detail", "brightest-channel detail"), grey):
        out[name] = _unit(view - gaussian_filter(view, DETAIL_SIGMA))
    out["luma"] = grey[0]
    return out


def _views(data: bytes) -> dict[str, np.ndarray]:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        return views(img)


def ranked_orientations(a: np.ndarray, b: np.ndarray) -> list[tuple[str, float]]:
    """Each orientation of ``b`` (an image-shaped array) with its correlation with ``a``, the best first."""
    scores = {name: float((a * np.flip(b, axes) if axes else a * b).sum()) for name, axes in ORIENTATIONS.items()}
    return sorted(scores.items(), key=lambda item: -item[1])


def best_orientation(a: np.ndarray, b: np.ndarray) -> tuple[str, float]:
    """The orientation of ``b`` that correlates best with ``a``, and that correlation."""
    return ranked_orientations(a, b)[0]


THRESHOLDS = {
    "colour": MIN_CORRELATION,
    "luma detail": MIN_DETAIL,
    "brightest-channel detail": MIN_DETAIL,
    "aligned detail": MIN_ALIGNED_DETAIL,  # with MAX_ALIGNED_DIFFERENCE
}


def compare_aligned(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Grey image ``b`` aligned onto ``a`` by an affine map (ECC, coarse to fine), compared where they overlap:
    how their detail bands correlate, and the median absolute difference of their grey levels
    (``(0, 255)`` when the alignment does not converge)."""
    import cv2

    pyramid = [(a.astype(np.float32), b.astype(np.float32))]
    for _ in range(2):
        pyramid.append(tuple(cv2.pyrDown(x) for x in pyramid[-1]))
    warp = np.eye(2, 3, dtype=np.float32)
    stop = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 1e-3)
    for level, (x, y) in reversed(list(enumerate(pyramid))):
        try:
            _, warp = cv2.findTransformECC(x, y, warp, cv2.MOTION_AFFINE, stop, None, 5)
        except cv2.error:  # no convergence: not the same picture
            return 0.0, 255.0
        if level:
            warp[:, 2] *= 2
    (original, copy), (h, w) = pyramid[0], a.shape
    moved = cv2.warpAffine(copy, warp, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    inside = cv2.warpAffine(np.ones_like(copy), warp, (w, h), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP)
    inside = cv2.erode(inside, np.ones((9, 9), np.uint8)) > 0  # away from the edges the blurs smear
    if inside.sum() < h * w // 4:
        return 0.0, 255.0

    def band(x: np.ndarray) -> np.ndarray:
        fine, coarse = (cv2.GaussianBlur(x, (0, 0), s) for s in ALIGNED_BAND)
        return _unit((fine - coarse)[inside])

    return float(band(original) @ band(moved)), float(np.median(np.abs(original - moved)[inside]))


def confirm(a: dict[str, np.ndarray], b: dict[str, np.ndarray], aligned: bool) -> tuple[str, str, float] | None:
    """``(check, orientation, correlation)`` of the first pixel check that the two images' :func:`views` pass;
    the aligned check only when ``aligned`` (the pair's colours are alike: see the module's text)."""
    for check in ("colour", "luma detail", "brightest-channel detail"):
        orientation, correlation = best_orientation(a[check], b[check])
        if correlation >= THRESHOLDS[check]:
            return check, orientation, correlation
    if not aligned:
        return None
    for orientation, _ in ranked_orientations(a["colour"], b["colour"])[:ALIGNED_ORIENTATIONS]:
        correlation, difference = compare_aligned(a["luma"], np.flip(b["luma"], ORIENTATIONS[orientation]))
        if correlation >= MIN_ALIGNED_DETAIL and difference <= MAX_ALIGNED_DIFFERENCE:
            return "aligned detail", orientation, correlation
    return None


def describe(pair: NearDuplicate) -> str:
    """One pair as a person checks it: "Train/Male/1.jpg ≈ Test/Male/9.jpg (mirrored, aligned detail 0.99)"."""
    return f"{pair.a} ≈ {pair.b} ({pair.orientation}, {pair.check} {pair.correlation:.2f})"


def kinds(pairs: list[NearDuplicate]) -> str:
    """How many ``pairs`` each pixel check found, in each orientation: "aligned detail, as is 1; colour, mirrored 2"."""
    counts = Counter(f"{pair.check}, {pair.orientation}" for pair in pairs)
    return "; ".join(f"{kind} {n}" for kind, n in sorted(counts.items()))


def find(kept: Any, archive_path: Path) -> list[NearDuplicate]:
    """Near-duplicate pairs across splits among the ``kept`` manifest rows (with ``phash`` and ``colours``),
    sorted. Exact copies (the same sha256) are left out: validate reports them already. A pair's ``distance``
    is -1 when only its colours made it a candidate.
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
                pairs = candidates(list(zip(a["phash"], a["colours"])), list(zip(b["phash"], b["colours"])))
                log.info("near-duplicates %s x %s: %d candidate pairs to check", first, second, len(pairs))
                for i, j, distance, colours in pairs:
                    x, y = a.iloc[i], b.iloc[j]
                    if x["sha256"] == y["sha256"]:
                        continue
                    passed = confirm(*(_views(zf.read(archive.member_name(row["path"]))) for row in (x, y)), colours)
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
