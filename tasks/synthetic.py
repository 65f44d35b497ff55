"""The offline synthetic face set, in the exact Kaggle layout.

These are NOT real faces. Each image is a drawn head on a noisy background, 178x218 RGB JPEG,
with random pose, skin tone, hair colour, lighting and JPEG quality. The two classes differ by
cues that a small CNN can learn but no single pixel or colour gives away: "Male" heads have
short hair and, usually, a beard shadow and a squarer jaw; "Female" heads have long hair that
falls beside the face. Hair colour, skin tone and background are drawn from the same
distributions for both classes.
"""

from __future__ import annotations

import io
import multiprocessing
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

WIDTH, HEIGHT = 178, 218  # the CelebA aligned-crop size

_SKIN = np.array([[255, 224, 196], [241, 194, 160], [224, 172, 105], [198, 134, 66], [141, 85, 36], [92, 56, 30]])
_HAIR = np.array(
    [[20, 16, 12], [60, 40, 25], [110, 75, 40], [180, 140, 80], [220, 200, 150], [130, 40, 20], [90, 90, 90]]
)


def _jitter(rng: np.random.Generator, colour: np.ndarray, spread: float) -> tuple[int, int, int]:
    return tuple(int(c) for c in np.clip(colour + rng.normal(0, spread, 3), 0, 255))


def _body(draw: ImageDraw.ImageDraw, rng: np.random.Generator, face: _Face) -> None:
    """Long hair behind the face ("Female"), then neck, shoulders and shirt."""
    cx, cy, fw, fh = face.cx, face.cy, face.fw, face.fh
    if not face.male:  # long hair behind and beside the face, down to the shoulders
        hair_len = rng.uniform(0.9, 1.6) * fh
        draw.rounded_rectangle(
            [cx - fw - rng.uniform(10, 18), cy - fh - 10, cx + fw + rng.uniform(10, 18), cy + hair_len],
            radius=int(fw),
            fill=face.hair,
        )
    draw.rectangle([cx - fw * 0.45, cy + fh * 0.7, cx + fw * 0.45, HEIGHT], fill=face.skin)
    shirt = tuple(int(v) for v in rng.integers(0, 256, 3))
    draw.ellipse([cx - fw * 2.4, cy + fh * 1.35, cx + fw * 2.4, cy + fh * 3.2], fill=shirt)


def _head(draw: ImageDraw.ImageDraw, rng: np.random.Generator, face: _Face) -> None:
    """The face (a squarer jaw for "Male"), the hair on top, and a beard shadow for most "Male" faces."""
    cx, cy, fw, fh, male = face.cx, face.cy, face.fw, face.fh, face.male
    if male:
        draw.rounded_rectangle([cx - fw, cy - fh, cx + fw, cy + fh], radius=int(fw * 0.7), fill=face.skin)
    else:
        draw.ellipse([cx - fw, cy - fh, cx + fw, cy + fh], fill=face.skin)
    # a short crop for "Male", a fuller top for "Female"
    top = fh * (rng.uniform(0.25, 0.4) if male else rng.uniform(0.45, 0.6))
    draw.chord([cx - fw * 1.05, cy - fh - top * 0.8, cx + fw * 1.05, cy - fh + top * 2], 180, 360, fill=face.hair)
    if male and rng.random() < 0.85:  # beard shadow of random strength
        shade = rng.uniform(0.35, 0.8)
        beard = tuple(int(s * (1 - shade) + h * shade) for s, h in zip(face.skin, face.hair))
        draw.chord([cx - fw, cy - fh * 0.1, cx + fw, cy + fh * 1.0], 0, 180, fill=beard)


def _features(draw: ImageDraw.ImageDraw, rng: np.random.Generator, face: _Face) -> None:
    """Eyes, brows, nose and mouth."""
    cx, cy, fw, fh = face.cx, face.cy, face.fw, face.fh
    eye_y = cy - fh * 0.15
    for side in (-1, 1):
        ex = cx + side * fw * 0.42
        socket = tuple(int(c * 0.45) for c in face.skin)
        draw.ellipse([ex - 11, eye_y - 8, ex + 11, eye_y + 6], fill=socket)
        draw.ellipse([ex - 5, eye_y - 3, ex + 5, eye_y + 3], fill=(245, 245, 245))
        draw.ellipse([ex - 2.5, eye_y - 2.5, ex + 2.5, eye_y + 2.5], fill=(30, 30, 30))
        brow_tilt = side * rng.uniform(-1, 1)
        draw.line([ex - 7, eye_y - 9, ex + 7, eye_y - 9 - brow_tilt], fill=face.hair, width=4 if face.male else 3)
    nose = tuple(int(c * 0.75) for c in face.skin)
    draw.line([cx + 2, eye_y + 4, cx + 4, cy + fh * 0.22], fill=nose, width=2)
    draw.ellipse([cx - 7, cy + fh * 0.18, cx + 7, cy + fh * 0.3], fill=nose)
    lips = _jitter(rng, np.array([170, 70, 70]), 25)
    draw.line([cx - fw * 0.3, cy + fh * 0.45, cx + fw * 0.3, cy + fh * 0.45], fill=lips, width=int(rng.integers(2, 5)))


@dataclass(frozen=True)
class _Face:
    """Where a face is and its colours (half-widths ``fw``, ``fh`` around the centre ``cx``, ``cy``)."""

    male: bool
    skin: tuple[int, ...]
    hair: tuple[int, ...]
    cx: float
    cy: float
    fw: float
    fh: float


def draw_face(rng: np.random.Generator, male: bool) -> Image.Image:
    """Draw one synthetic face crop; ``rng`` fixes everything about it (its draws are in a fixed order)."""
    bg_a, bg_b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    ramp = np.linspace(0, 1, HEIGHT)[:, None, None]
    canvas = (bg_a * (1 - ramp) + bg_b * ramp).repeat(WIDTH, axis=1)
    img = Image.fromarray(canvas.astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    skin = _jitter(rng, _SKIN[rng.integers(len(_SKIN))], 12)
    hair = _jitter(rng, _HAIR[rng.integers(len(_HAIR))], 15)
    cx = WIDTH / 2 + rng.normal(0, 6)
    cy = HEIGHT * 0.47 + rng.normal(0, 6)
    fw = rng.uniform(30, 38) * (1.08 if male else 1.0)  # half-widths of the face
    face = _Face(male=male, skin=skin, hair=hair, cx=cx, cy=cy, fw=fw, fh=rng.uniform(44, 52))
    for part in (_body, _head, _features):
        part(draw, rng, face)
    # pose, lighting, blur and sensor noise
    img = img.rotate(rng.normal(0, 7), resample=Image.BILINEAR, center=(cx, cy), fillcolor=tuple(int(v) for v in bg_a))
    img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0, 1.2)))
    pixels = np.asarray(img, dtype=np.float32) * rng.uniform(0.7, 1.25) + rng.normal(
        0, rng.uniform(3, 12), (HEIGHT, WIDTH, 3)
    )
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


BLOCK = 5000  # images per random stream: blocks are drawn independently, so in parallel


def _block_seed(split_seed: np.random.SeedSequence, block: int) -> np.random.SeedSequence:
    """Block 0 draws from the split's own stream (the demo's splits are one block each); later
    blocks from its block-th child, so a block never depends on the ones before it."""
    if block == 0:
        return split_seed
    return np.random.SeedSequence(split_seed.entropy, spawn_key=(*split_seed.spawn_key, block))


def _draw_block(seed: np.random.SeedSequence, labels: list[str]) -> list[bytes]:
    rng = np.random.default_rng(seed)
    out = []
    for label in labels:
        img = draw_face(rng, male=label == "Male")
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=int(rng.integers(70, 96)))
        out.append(buf.getvalue())
    return out


def generate(
    counts: dict[str, int], male_share: float, seed: int | list[int], workers: int = 1
) -> Iterator[tuple[str, str, bytes]]:
    """Yield ``(split, label, jpeg_bytes)`` for the whole set, deterministically by ``seed``.

    Each split holds ``round(count * male_share)`` Male images, the rest Female. The images are
    drawn in blocks of ``BLOCK``, on ``workers`` processes when there is more than one block; the
    bytes do not depend on ``workers``.
    """
    jobs = []
    for (split, count), split_seed in zip(counts.items(), np.random.SeedSequence(seed).spawn(len(counts))):
        n_male = round(count * male_share)
        labels = ["Male"] * n_male + ["Female"] * (count - n_male)
        for block, start in enumerate(range(0, count, BLOCK)):
            jobs.append((split, _block_seed(split_seed, block), labels[start : start + BLOCK]))
    if workers > 1 and len(jobs) > 1:
        pool = ProcessPoolExecutor(min(workers, len(jobs)), mp_context=multiprocessing.get_context("spawn"))
        blocks = pool.map(_draw_block, *zip(*((block_seed, labels) for _, block_seed, labels in jobs)))
    else:
        pool, blocks = None, (_draw_block(block_seed, labels) for _, block_seed, labels in jobs)
    try:
        for (split, _, labels), images in zip(jobs, blocks):
            yield from ((split, label, data) for label, data in zip(labels, images))
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)


NOISE_STREAM = 0x6E6F6973  # mixed into the seed: the flips draw from their own stream, not the images'


def flipped(counts: dict[str, int], label_noise: float, seed: int) -> dict[str, set[int]]:
    """Per split, the positions (in :func:`generate`'s order) whose label is given wrong.

    ``round(count * label_noise)`` of each split, drawn from a stream of their own, so the images
    themselves are the same with noise as without.
    """
    rng = np.random.default_rng([seed, NOISE_STREAM])
    return {
        split: {int(i) for i in rng.choice(count, round(count * label_noise), replace=False)}
        for split, count in counts.items()
    }


def other(label: str) -> str:
    """The other class of the synthetic set."""
    return "Female" if label == "Male" else "Male"


def photos(
    count: int, seed: int, size: tuple[int, int] = (480, 640)
) -> list[tuple[Image.Image, tuple[int, int, int, int], bool]]:
    """Whole "photos" for face detection: face crops (from their own random streams, not the data
    sets') pasted at a random scale (0.8-1.6x) and place onto larger noisy backgrounds.

    Returns ``(photo, (x, y, w, h) of the pasted crop, male)`` per photo; every other one is male.
    """
    rng = np.random.default_rng(seed)
    scenes = []
    for i in range(count):
        background = rng.uniform(0, 255, (*size, 3)) * 0.3 + rng.integers(0, 256, 3) * 0.7
        photo = Image.fromarray(background.astype(np.uint8), "RGB")
        male = bool(i % 2)
        face = draw_face(np.random.default_rng(10_000_000 + seed * 1000 + i), male)
        scale = rng.uniform(0.8, 1.6)
        face = face.resize((int(face.width * scale), int(face.height * scale)))
        x, y = int(rng.integers(0, size[1] - face.width)), int(rng.integers(0, size[0] - face.height))
        photo.paste(face, (x, y))
        scenes.append((photo, (x, y, face.width, face.height), male))
    return scenes


def face_grid(n: int = 8, seed: int = 0) -> Image.Image:
    """A row of Male faces over a row of Female faces, to look at the set."""
    rng = np.random.default_rng(seed)
    grid = Image.new("RGB", (WIDTH * n, HEIGHT * 2))
    for row, male in enumerate((True, False)):
        for i in range(n):
            grid.paste(draw_face(rng, male), (i * WIDTH, row * HEIGHT))
    return grid


if __name__ == "__main__":  # python -m tasks.synthetic OUT.png: a preview of the set
    import sys

    face_grid().save(sys.argv[1] if len(sys.argv) > 1 else "synthetic_faces.png")
